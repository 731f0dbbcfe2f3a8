"""Staff forms of the feedback app: the survey builder (a survey and its questions, one row a
question, works without JavaScript), inviting a filtered list, replying to a response."""

from django import forms
from django.utils.translation import gettext_lazy as _

from feedback.models import Question, Survey
from lifecycle.models_stages import Stage


class SurveyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=Survey.Kind.choices)
    intro = forms.CharField(label=_("Introduction"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    thank_you = forms.CharField(label=_("Thank-you text"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    invitation_valid_days = forms.IntegerField(label=_("Invitation valid (days)"), min_value=1, max_value=365, initial=30)
    reminder_after_days = forms.IntegerField(
        label=_("Reminder after (days)"), min_value=1, max_value=365, required=False, initial=3,
        help_text=_("Empty: no reminder."),
    )
    invite_days_after_order = forms.IntegerField(
        label=_("Invite N days after a paid order"), min_value=0, max_value=365, required=False,
        help_text=_("Empty: no automatic invitations after orders."),
    )
    invite_on_stage = forms.ChoiceField(
        label=_("Invite on entering the stage"), required=False, choices=[("", "—"), *Stage.choices],
        help_text=_("Customers who entered this lifecycle stage since the last daily run are invited."),
    )


class QuestionForm(forms.Form):
    type = forms.ChoiceField(label=_("Type"), choices=[("", "—"), *Question.Type.choices], required=False)
    text = forms.CharField(label=_("Question"), max_length=500, required=False)
    required = forms.BooleanField(label=_("Required"), required=False, initial=True)
    choices = forms.CharField(
        label=_("Choices"), required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=_("One per line.")
    )
    show_if_number = forms.IntegerField(
        label=_("Follows question no."), required=False, min_value=1, help_text=_("Shown only for a score in the range below.")
    )
    show_if_min = forms.IntegerField(label=_("From score"), required=False)
    show_if_max = forms.IntegerField(label=_("Up to score"), required=False)

    def spec(self) -> dict | None:
        """The question as survey_create takes it; None for an empty row."""
        data = self.cleaned_data
        if not data.get("type") and not data.get("text"):
            return None
        show_if = None
        if data.get("show_if_number"):
            show_if = {"question": data["show_if_number"] - 1, "min": data.get("show_if_min"), "max": data.get("show_if_max")}
        return {
            "type": data.get("type"),
            "text": data.get("text", ""),
            "required": data.get("required", False),
            "choices": [line.strip() for line in (data.get("choices") or "").splitlines() if line.strip()],
            "show_if": show_if,
        }


QuestionFormSet = forms.formset_factory(QuestionForm, extra=6, max_num=50)


class SurveyImportForm(forms.Form):
    file = forms.FileField(label=_("Survey file (JSON)"))


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Reply"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    outcome = forms.CharField(label=_("Outcome"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
