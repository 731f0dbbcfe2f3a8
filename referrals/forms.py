"""Staff forms of the referral pages: the list filters, the review decision and marking a payout paid."""

from django import forms
from django.utils.translation import gettext_lazy as _

from referrals.models import Payout, Referral


class ReferralFilterForm(forms.Form):
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("All states")), *Referral.State.choices])
    verdict = forms.ChoiceField(
        label=_("Fraud verdict"), required=False, choices=[("", _("All verdicts")), *Referral.Verdict.choices]
    )
    referrer = forms.IntegerField(label=_("Referrer"), required=False, min_value=1, max_value=2**63 - 1,
                                  widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {"state": data["state"], "verdict": data["verdict"], "referrer_id": data["referrer"], "before": data["before"]}


class PayoutFilterForm(forms.Form):
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("All states")), *Payout.State.choices])
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {"state": self.cleaned_data["state"], "before": self.cleaned_data["before"]}


class ReviewDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    # Required to reject, optional to approve: the review service says which.
    note = forms.CharField(label=_("Note"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PayoutPaidForm(forms.Form):
    reference = forms.CharField(label=_("Payment reference"), max_length=100)
