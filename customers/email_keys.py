"""The normalised e-mail ("e-mail key") that tells whether two addresses reach the same mailbox,
for the referral fraud checks (same person under two addresses) and anything else that needs it.

Rules, written once here, in Python (email_key) and as a database expression (email_key_expression,
the stored generated column Customer.email_key, so every write path -- forms, API, import, admin,
raw SQL -- sets it without knowing it exists):
- the whole address in lower case;
- for providers that ignore dots in the local part (Gmail): the dots removed;
- for providers known to deliver "name+tag@" to "name@" (Gmail, Microsoft, Apple, Fastmail,
  Proton): the "+tag" removed;
- googlemail.com is gmail.com.
Other providers keep the address as it is (lower case): elsewhere a dot or a plus may be a real part
of a different mailbox. Changing the lists needs a migration that re-creates the generated column."""

from __future__ import annotations

from django.db.models import Case, F, Value, When
from django.db.models.functions import Concat, Left, Lower, Replace, StrIndex, Substr
from django.db.models.lookups import GreaterThan, In, LessThanOrEqual

DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
DOTS_IGNORED = ("gmail.com", "googlemail.com")
PLUS_TAGS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "fastmail.com",
    "fastmail.fm",
    "protonmail.com",
    "proton.me",
    "pm.me",
)


def email_key(email: str | None) -> str | None:
    """"Alice.Smith+promo@GoogleMail.com" -> "alicesmith@gmail.com"; None for no e-mail."""
    if not email:
        return None
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at:
        return email
    if domain in PLUS_TAGS:
        local = local.partition("+")[0]
    if domain in DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{DOMAIN_ALIASES.get(domain, domain)}"


def email_domain(email: str | None) -> str:
    """The domain of an address, lower case ("" when there is none)."""
    return (email or "").strip().lower().partition("@")[2]


def email_key_expression(field: str = "email"):
    """email_key() in SQL (immutable functions only, so PostgreSQL can store it as a generated
    column; the same on SQLite)."""
    address = Lower(F(field))
    at = StrIndex(address, Value("@"))
    local = Left(address, at - 1)
    domain = Substr(address, at + 1)
    plus = StrIndex(local, Value("+"))
    untagged = Case(When(GreaterThan(plus, 0), then=Left(local, plus - 1)), default=local)
    return Case(
        When(LessThanOrEqual(at, 0), then=address),
        When(In(domain, DOTS_IGNORED), then=Concat(Replace(untagged, Value("."), Value("")), Value("@gmail.com"))),
        When(In(domain, PLUS_TAGS), then=Concat(untagged, Value("@"), domain)),
        default=address,
    )
