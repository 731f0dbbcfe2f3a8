"""The public sign-up form of a share link."""

from django import forms
from django.utils.translation import gettext_lazy as _


class ReferralSignupForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    # Consent is given, never assumed: unticked unless the visitor ticks it.
    marketing_opt_in = forms.BooleanField(
        label=_("Send me news and offers by e-mail"), required=False, initial=False
    )
