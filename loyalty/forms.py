"""Forms of the staff loyalty screens: the manual adjustment and the ledger's filters."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from loyalty.models import LedgerEntry, Tier
from loyalty.serializers import MAX_POINTS


class AdjustForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points"), min_value=-MAX_POINTS, max_value=MAX_POINTS, help_text=_("Negative to take points away.")
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)
    # Rendered once with the form: a double click or a resubmitted form posts the same key, which
    # the ledger answers with the first entry instead of a second adjustment.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    @classmethod
    def fresh(cls):
        return cls(initial={"idempotency_key": f"staff-{uuid.uuid4()}"}, auto_id="adjust_%s")

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("An adjustment must change the balance."))
        return points


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All kinds")), *LedgerEntry.Kind.choices])
    source = forms.ChoiceField(
        label=_("Source"), required=False, choices=[("", _("All sources")), *LedgerEntry.Source.choices]
    )

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {key: value for key, value in self.cleaned_data.items() if value}


class TierHoldForm(forms.Form):
    """A manager's manual tier, held until a date (the nightly downgrade leaves it alone until then)."""

    tier = forms.ModelChoiceField(label=_("Tier"), queryset=Tier.objects.order_by("threshold"), required=False,
                                  empty_label=_("No tier"))
    held_until = forms.DateField(label=_("Held until"), widget=forms.DateInput(attrs={"type": "date"}))
