"""The referrals app's advocate source for the lifecycle stages (lifecycle.health_hooks): a customer
with at least one approved (or rewarded) referral is a successful referrer, so the evaluation makes
them loyal. The SQL answers from the partial index referral_referrer_approved_idx (referrer,
approved_at) of those states, by id range."""

from django.db import connection

from lifecycle.health_hooks import register_advocate_source
from referrals.models import Referral

SUCCESSFUL = (Referral.State.APPROVED, Referral.State.REWARDED)


def successful_referrers_source() -> tuple[str, dict]:
    table = connection.ops.quote_name(Referral._meta.db_table)
    return (
        f"SELECT r.referrer_id AS customer_id FROM {table} r"
        " WHERE r.state IN (%(referrals_approved)s, %(referrals_rewarded)s)"
        " AND r.referrer_id >= %(lo)s AND r.referrer_id < %(hi)s",
        {"referrals_approved": SUCCESSFUL[0].value, "referrals_rewarded": SUCCESSFUL[1].value},
    )


def register() -> None:
    register_advocate_source("referrals", successful_referrers_source)
