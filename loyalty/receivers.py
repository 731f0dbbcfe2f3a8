"""Loyalty's listeners to other apps' signals (connected in LoyaltyConfig.ready): a submitted survey
response earns the survey bonus. The feedback app knows nothing of loyalty; the signal is sent after
the response commits, and the award runs as a task so a loyalty problem never fails a survey."""

from feedback.signals import response_submitted


def survey_bonus_on_response(sender, response, **kwargs) -> None:
    from loyalty.tasks import loyalty_survey_bonus

    loyalty_survey_bonus.delay(response.pk)


def connect() -> None:
    response_submitted.connect(survey_bonus_on_response, dispatch_uid="loyalty.survey_bonus")
