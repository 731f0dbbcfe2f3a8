"""Forms of the stage screens: a manual stage change and finishing a task."""

from django import forms
from django.utils.translation import gettext_lazy as _

from lifecycle.models_stages import Stage


class StageChangeForm(forms.Form):
    stage = forms.ChoiceField(label=_("New stage"), choices=Stage.choices)
    reason = forms.CharField(label=_("Reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class TaskDoneForm(forms.Form):
    note = forms.CharField(label=_("What was done"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
