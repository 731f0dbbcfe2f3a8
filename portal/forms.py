"""Forms of the customer portal."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class LoginLinkRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("Your e-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True, "inputmode": "email"}),
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class EmailPreferencesForm(forms.Form):
    marketing_opt_in = forms.BooleanField(
        label=_("Send me news and offers by e-mail"),
        required=False,
        help_text=_("E-mails about your account, such as login links, come either way."),
    )
    language = forms.ChoiceField(label=_("Language of our e-mails"), choices=settings.LANGUAGES)
