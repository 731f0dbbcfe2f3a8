"""How the product names a person: one rule, used by every page, form and message.

Staff were named three ways ("agent1", "Alex Agent", "manager" next to "Maya Manager"). The rule:
the full name when the user has one, else the username; None (a deleted user) is "—" at display."""

from __future__ import annotations

from django import forms


def display_name(user) -> str:
    if user is None:
        return ""
    full = (user.get_full_name() if hasattr(user, "get_full_name") else "").strip()
    return full or user.get_username()


class PersonChoiceField(forms.ModelChoiceField):
    """A choice of user that shows each by display_name."""

    def label_from_instance(self, obj) -> str:
        return display_name(obj)
