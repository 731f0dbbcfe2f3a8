"""How an activity event's name reads on a page. Events arrive with machine names (`cart_add`,
`page_view`) from the shop, the API or an import; the pages show a translatable label for the
names we know and a humanised form ("Wishlist add") of any other, in every language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

EVENT_LABELS = {
    "signup": pgettext_lazy("activity event", "Signed up"),
    "login": pgettext_lazy("activity event", "Logged in"),
    "logout": pgettext_lazy("activity event", "Logged out"),
    "page_view": pgettext_lazy("activity event", "Viewed a page"),
    "product_view": pgettext_lazy("activity event", "Viewed a product"),
    "search": pgettext_lazy("activity event", "Searched"),
    "cart_add": pgettext_lazy("activity event", "Added to cart"),
    "cart_remove": pgettext_lazy("activity event", "Removed from cart"),
    "checkout_start": pgettext_lazy("activity event", "Started checkout"),
    "purchase": pgettext_lazy("activity event", "Purchased"),
    "email_open": pgettext_lazy("activity event", "Opened an e-mail"),
    "email_click": pgettext_lazy("activity event", "Clicked a link in an e-mail"),
    "unsubscribe": pgettext_lazy("activity event", "Unsubscribed"),
    "support_ticket": pgettext_lazy("activity event", "Opened a support ticket"),
    "review": pgettext_lazy("activity event", "Wrote a review"),
}


def event_label(name: str) -> str:
    """The label of a known event name, else the name humanised ("wishlist_add" -> "Wishlist add")."""
    known = EVENT_LABELS.get(name)
    if known is not None:
        return str(known)
    words = name.replace("_", " ").replace("-", " ").replace(".", " ").split()
    return " ".join(words).capitalize() if words else str(_("(unnamed event)"))
