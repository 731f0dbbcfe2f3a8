"""Loyalty's listeners to other apps' signals (connected in LoyaltyConfig.ready): a submitted survey
response earns the survey bonus. The feedback app knows nothing of loyalty; the signal is sent after
the response commits, and the award runs as a task so a loyalty problem never fails a survey."""

from contextlib import suppress

from core.enqueue import QueueUnavailable, enqueue
from feedback.signals import response_submitted


def survey_bonus_on_response(sender, response, **kwargs) -> None:
    # The answer is committed: a broker that is down must not turn it into an error page. enqueue
    # logs it (the bonus is then not awarded for this response).
    with suppress(QueueUnavailable):
        enqueue("loyalty.tasks.loyalty_survey_bonus", response.pk)


def connect() -> None:
    response_submitted.connect(survey_bonus_on_response, dispatch_uid="loyalty.survey_bonus")
