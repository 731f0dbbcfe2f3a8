"""Referral codes: one per customer, created on first use, unguessable and unique.

Twelve characters of Crockford's base32 (no I, L, O, U, so a code read aloud or typed is not
misread): 60 random bits, so guessing a live code among a million takes about 10^12 tries."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction

from referrals.models import ReferralCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12


def code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def code_normalise(text: str) -> str:
    """What a person typed, as stored: upper case, without spaces or dashes, the look-alike letters
    read as the digits they resemble."""
    cleaned = "".join(text.split()).replace("-", "").upper()
    return cleaned.translate(str.maketrans({"I": "1", "L": "1", "O": "0"}))


def referral_code_for(*, customer_id: int) -> ReferralCode:
    """The customer's code, created on first use (race-safe: two first uses give one code)."""
    existing = ReferralCode.objects.filter(customer_id=customer_id).first()
    if existing is not None:
        return existing
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(customer_id=customer_id, code=code_new())
        except IntegrityError:
            existing = ReferralCode.objects.filter(customer_id=customer_id).first()
            if existing is not None:
                return existing  # another request created it first
            # else the random code collided with another customer's: draw again
    raise RuntimeError("could not draw a unique referral code")
