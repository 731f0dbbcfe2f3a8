"""Anti-fraud for referrals: a risk score that states its reasons.

Three steps, so one referral (the API, the sign-up page) and many (the import) share the rules:
1. `fraud_rules_load()`: the FraudRule rows (the admin site edits them), one query per request or
   import chunk, never per signal.
2. `facts_for_attempt()` / `facts_for_attempts()`: what the rules look at, gathered with a fixed
   number of indexed queries (one attempt: ~5; many: the same few, set-based).
3. `fraud_assess()`: pure Python over the facts: the signals that tripped, each with its weight and
   details, the score (the sum of the weights of the "flag" signals) and the verdict: rejected when a "reject" rule tripped, review when the
   score reaches the programme's review_score, else ok.

Definitions the rules use (documented in the README too):
- self referral: the referee is the referrer's own customer record. The database forbids storing
  such a referral (referrer <> referee), so it is refused without a row.
- same e-mail: both e-mail keys (customers.email_keys: case, Gmail dots, plus-tags of the providers
  that ignore them) are equal.
- existing customer: the referee had a paid order before the referral, or an older customer record
  (created before the referee's) has the referee's e-mail key, or -- for the sign-up page and the
  import, which create the referee -- the referee's record existed before that sign-up or import
  (someone typing a known customer's address must not attribute them). The API names an existing
  record by design, so there the first two tests decide.
- already referred: the referee already has a referral that is not rejected (the first valid
  referrer wins; the database's partial unique index settles a race).
- circular: the referee is somewhere up the referrer's chain of referrers (A refers B, B refers A;
  also A -> B -> C -> A), followed for up to CHAIN_DEPTH links in one recursive query.
- same device: the referrer was seen with the same IP together with the same user agent, or the
  same IP together with the same device id. The IP alone never counts (offices, dorms, mobile NAT).
- IP burst: more than `threshold` referrals from one IP within `window_minutes` (this one included).
- velocity: more than `threshold` referrals by the referrer within the hour / day (this one included).
- same phone / payment / address: a fingerprint of the referee equals one of the referrer's (their
  customer record's phone counts as a phone fingerprint).
- similar name / e-mail: difflib's ratio of the two names / e-mail local parts, in percent, at or
  above `threshold`; only the two records are compared.
- disposable e-mail: the referee's domain is in the `disposable-email-domains` package's list.
- fast order: the referee's first order came less than `threshold` minutes after their sign-up
  (checked at qualification: fraud_check_order_timing)."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from django.db import connection
from django.db.models import Exists, OuterRef

from customers.email_keys import email_domain
from customers.models import Customer, Order
from referrals.models import Fingerprint, FraudRule, Referral

Code = FraudRule.Code
CHAIN_DEPTH = 20
_NON_DIGITS = re.compile(r"\D+")
_ADDRESS_NOISE = re.compile(r"[\W_]+", re.UNICODE)


# --- normalised, hashed traits ---------------------------------------------------------------------


def phone_normalise(phone: str | None) -> str:
    """Digits only, without leading zeros ("+44 (0)20 7946-0000" and "0044 20 79460000" differ; a
    national and an international form of one number do too: we do not guess countries)."""
    return _NON_DIGITS.sub("", phone or "").lstrip("0")


def address_normalise(address: str | None) -> str:
    """Lower case, punctuation and runs of spaces collapsed to one space."""
    return " ".join(_ADDRESS_NOISE.sub(" ", (address or "").lower()).split())


def trait_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Traits:
    """What a person was seen with, normalised and hashed, by Fingerprint.Kind value."""

    hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, *, ip: str | None = None, user_agent: str = "", device_id: str = "", phone: str | None = None,
        payment_fingerprint: str = "", address: str = "",
    ) -> Traits:
        hashes = {}
        user_agent, device_id = (user_agent or "").strip(), (device_id or "").strip()
        if ip:
            hashes["ip"] = trait_hash(ip)
            if user_agent:
                hashes["ip_agent"] = trait_hash(f"{ip}\n{user_agent}")
        if device_id:
            hashes["device"] = trait_hash(device_id)
        if phone_normalise(phone):
            hashes["phone"] = trait_hash(phone_normalise(phone))
        if (payment_fingerprint or "").strip():
            hashes["payment"] = trait_hash(payment_fingerprint.strip())
        if address_normalise(address):
            hashes["address"] = trait_hash(address_normalise(address))
        return cls(hashes)


# --- rules -----------------------------------------------------------------------------------------


def fraud_rules_load() -> dict[str, FraudRule]:
    """The enabled rules by code: load once per request (or import chunk) and pass them on."""
    return {rule.code: rule for rule in FraudRule.objects.filter(enabled=True)}


@dataclass
class Signal:
    code: str
    weight: int
    action: str
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"code": self.code, "weight": self.weight, "action": self.action, "detail": self.detail}


@dataclass
class Assessment:
    signals: list[Signal]
    score: int
    verdict: str

    @property
    def rejecting(self) -> list[Signal]:
        return [signal for signal in self.signals if signal.action == FraudRule.Action.REJECT]

    def signals_json(self) -> list[dict]:
        return [signal.as_dict() for signal in self.signals]


# --- facts -----------------------------------------------------------------------------------------


@dataclass
class Person:
    """The parts of a customer record the rules compare."""

    id: int
    email: str | None
    email_key: str | None
    first_name: str
    last_name: str
    phone: str
    created_at: dt.datetime | None = None

    @classmethod
    def of(cls, customer: Customer) -> Person:
        return cls(
            id=customer.pk, email=customer.email, email_key=customer.email_key, first_name=customer.first_name,
            last_name=customer.last_name, phone=customer.phone, created_at=customer.created_at,
        )

    @property
    def name(self) -> str:
        return " ".join(f"{self.first_name} {self.last_name}".lower().split())


@dataclass
class Facts:
    """Everything the rules need about one attempt; gathered by the facts_* functions."""

    referrer: Person
    referee: Person
    traits: Traits  # the referee's, as seen with this attempt (and their record's phone)
    live_referral_id: int | None = None  # the referee's referral that is not rejected
    in_referrer_chain: bool = False  # the referee is up the referrer's chain of referrers
    paid_order_before: bool = False
    older_record: bool = False  # an older customer record has the referee's e-mail key
    record_existed: bool = False  # a sign-up or import found the referee's record already there
    referrer_kinds: set[str] = field(default_factory=set)  # kinds of the referrer's matching fingerprints
    ip_count: int = 0  # referrals from this IP in the rule's window, this one included
    referrer_hour: int = 0  # the referrer's referrals in the velocity windows, this one included
    referrer_day: int = 0


def customer_person_fields() -> list[str]:
    return ["id", "email", "email_key", "first_name", "last_name", "phone", "created_at"]


def _window_start(rules: Mapping[str, FraudRule], code: str, now: dt.datetime, default_minutes: int) -> dt.datetime:
    rule = rules.get(code)
    minutes = rule.window_minutes if rule is not None and rule.window_minutes else default_minutes
    return now - dt.timedelta(minutes=minutes)


def _chain_cte() -> str:
    """The chain of referrers of the customer %s (live referrals), at most CHAIN_DEPTH links up."""
    table = connection.ops.quote_name(Referral._meta.db_table)
    return (
        f"WITH RECURSIVE up(customer_id, depth) AS ("
        f" SELECT r.referrer_id, 1 FROM {table} r WHERE r.referee_id = %s AND r.state <> 'rejected'"
        f" UNION"
        f" SELECT r.referrer_id, up.depth + 1 FROM {table} r JOIN up ON r.referee_id = up.customer_id"
        f" WHERE r.state <> 'rejected' AND up.depth < {CHAIN_DEPTH})"
    )


def referee_queryset():
    """Customers with what the "already a customer" rule needs, annotated in the same query."""
    older_twin = Customer.objects.filter(
        email_key=OuterRef("email_key"), created_at__lt=OuterRef("created_at")
    ).exclude(pk=OuterRef("pk"))
    paid_before = Order.objects.filter(customer=OuterRef("pk"), status=Order.Status.PAID)
    return Customer.objects.only(*customer_person_fields()).annotate(
        fraud_older_twin=Exists(older_twin), fraud_paid_before=Exists(paid_before)
    )


def facts_for_attempt(
    *, referrer: Customer, referee: Customer, traits: Traits, rules: Mapping[str, FraudRule], now: dt.datetime,
    ip: str | None,
) -> Facts:
    """The facts of one attempt. `referee` comes from referee_queryset() (its annotations)."""
    facts = Facts(
        referrer=Person.of(referrer), referee=Person.of(referee), traits=traits,
        paid_order_before=bool(getattr(referee, "fraud_paid_before", False)),
        older_record=bool(getattr(referee, "fraud_older_twin", False)),
    )
    # Every look-up in one statement: each is an index probe, and on a busy server the round trips,
    # not the probes, are what a request waits for.
    referral, fingerprint = (connection.ops.quote_name(m._meta.db_table) for m in (Referral, Fingerprint))
    moment = connection.ops.adapt_datetimefield_value
    columns = [
        f"(SELECT r.id FROM {referral} r WHERE r.referee_id = %s AND r.state <> 'rejected' LIMIT 1)",
        "EXISTS (SELECT 1 FROM up WHERE up.customer_id = %s)",
    ]
    params: list = [referrer.pk, referee.pk, referee.pk]
    if ip and Code.IP_BURST in rules:
        columns.append(f"(SELECT COUNT(*) FROM {referral} r WHERE r.ip = %s AND r.created_at >= %s)")
        params += [ip, moment(_window_start(rules, Code.IP_BURST, now, 60))]
    else:
        columns.append("0")
    for code, default in ((Code.VELOCITY_HOUR, 60), (Code.VELOCITY_DAY, 1440)):
        columns.append(f"(SELECT COUNT(*) FROM {referral} r WHERE r.referrer_id = %s AND r.created_at >= %s)")
        params += [referrer.pk, moment(_window_start(rules, code, now, default))]
    kinds = sorted(traits.hashes)
    for kind in kinds:
        columns.append(f"EXISTS (SELECT 1 FROM {fingerprint} f WHERE f.kind = %s AND f.value = %s AND f.customer_id = %s)")
        params += [kind, traits.hashes[kind], referrer.pk]
    with connection.cursor() as cursor:
        cursor.execute(f"{_chain_cte()} SELECT {', '.join(columns)}", params)
        row = cursor.fetchone()
    facts.live_referral_id, facts.in_referrer_chain = row[0], bool(row[1])
    facts.ip_count = 1 + row[2] if ip and Code.IP_BURST in rules else 0
    facts.referrer_hour, facts.referrer_day = 1 + row[3], 1 + row[4]
    facts.referrer_kinds = {kind for kind, matched in zip(kinds, row[5:]) if matched}
    return facts


# --- the rules themselves --------------------------------------------------------------------------


def similarity(a: str, b: str) -> int:
    """How alike two texts are, 0-100 (difflib's ratio)."""
    if not a or not b:
        return 0
    return round(100 * difflib.SequenceMatcher(None, a, b).ratio())


def _local_part(email: str | None) -> str:
    return (email or "").lower().partition("@")[0]


def fraud_assess(*, facts: Facts, rules: Mapping[str, FraudRule], review_score: int) -> Assessment:
    """The signals that trip for these facts, the score and the verdict. No queries."""
    signals: list[Signal] = []
    referrer, referee = facts.referrer, facts.referee

    def trip(code: str, **detail) -> None:
        rule = rules.get(code)
        if rule is not None:
            signals.append(Signal(code=code, weight=rule.weight, action=rule.action, detail=detail))

    def threshold(code: str, default: int) -> int:
        rule = rules.get(code)
        return rule.threshold if rule is not None and rule.threshold is not None else default

    if referrer.id == referee.id:
        trip(Code.SELF_REFERRAL, customer=referee.id)
    elif referrer.email_key and referrer.email_key == referee.email_key:
        trip(Code.SAME_EMAIL, email_key=referee.email_key)
    if facts.paid_order_before or facts.older_record or facts.record_existed:
        trip(Code.EXISTING_CUSTOMER, paid_order=facts.paid_order_before, older_record=facts.older_record,
             record_existed=facts.record_existed)
    if facts.live_referral_id is not None:
        trip(Code.ALREADY_REFERRED, referral=facts.live_referral_id)
    if facts.in_referrer_chain:
        trip(Code.CIRCULAR, referrer=referrer.id, referee=referee.id)

    name_score = similarity(referrer.name, referee.name)
    if name_score >= threshold(Code.SIMILAR_NAME, 85):
        trip(Code.SIMILAR_NAME, similarity=name_score)
    if referrer.email_key != referee.email_key or not referee.email_key:
        email_score = similarity(_local_part(referrer.email_key), _local_part(referee.email_key))
        if email_score >= threshold(Code.SIMILAR_EMAIL, 85):
            trip(Code.SIMILAR_EMAIL, similarity=email_score)

    kinds = facts.referrer_kinds
    if "ip_agent" in kinds:
        trip(Code.SAME_DEVICE, matched="ip_user_agent")
    elif "ip" in kinds and "device" in kinds:
        trip(Code.SAME_DEVICE, matched="ip_device")
    referee_phone = facts.traits.hashes.get("phone")
    if "phone" in kinds or (referee_phone and referee_phone == _phone_hash(referrer.phone)):
        trip(Code.SAME_PHONE)
    if "payment" in kinds:
        trip(Code.SAME_PAYMENT)
    if "address" in kinds:
        trip(Code.SAME_ADDRESS)

    domain = email_domain(referee.email)
    if domain and domain in DISPOSABLE_DOMAINS:
        trip(Code.DISPOSABLE_EMAIL, domain=domain)

    limit = threshold(Code.IP_BURST, 5)
    if facts.ip_count > limit:
        trip(Code.IP_BURST, count=facts.ip_count, threshold=limit, window_minutes=_minutes(rules, Code.IP_BURST, 60))
    limit = threshold(Code.VELOCITY_HOUR, 5)
    if facts.referrer_hour > limit:
        trip(Code.VELOCITY_HOUR, count=facts.referrer_hour, threshold=limit)
    limit = threshold(Code.VELOCITY_DAY, 20)
    if facts.referrer_day > limit:
        trip(Code.VELOCITY_DAY, count=facts.referrer_day, threshold=limit)
    return assessment_of(signals, review_score=review_score)


def assessment_of(signals: list[Signal], *, review_score: int) -> Assessment:
    score = min(sum(s.weight for s in signals if s.action == FraudRule.Action.FLAG), 32767)
    if any(s.action == FraudRule.Action.REJECT for s in signals):
        verdict = Referral.Verdict.REJECTED
    elif signals and score >= review_score:
        verdict = Referral.Verdict.REVIEW
    else:
        verdict = Referral.Verdict.OK
    return Assessment(signals=signals, score=score, verdict=verdict)


def _minutes(rules, code, default):
    rule = rules.get(code)
    return rule.window_minutes if rule is not None and rule.window_minutes else default


def _phone_hash(phone: str | None) -> str | None:
    normalised = phone_normalise(phone)
    return trait_hash(normalised) if normalised else None


# --- at qualification ------------------------------------------------------------------------------


def fraud_check_order_timing(*, referral: Referral, ordered_at: dt.datetime, signed_up_at: dt.datetime | None = None,
                             rules: Mapping[str, FraudRule] | None = None) -> Signal | None:
    """The fast-order signal for the referee's first order, or None: the order came less than the
    rule's threshold (minutes) after the referee signed up (their signed_up_at, else the referral's
    creation). For the qualification step (refcore) to add to the referral's signals and score."""
    rules = rules if rules is not None else fraud_rules_load()
    rule = rules.get(Code.FAST_ORDER)
    if rule is None or rule.threshold is None:
        return None
    start = signed_up_at or referral.created_at
    if start is None:
        return None
    minutes = (ordered_at - start).total_seconds() / 60
    if minutes >= rule.threshold:
        return None
    return Signal(
        code=Code.FAST_ORDER, weight=rule.weight, action=rule.action,
        detail={"minutes": round(max(minutes, 0), 1), "threshold": rule.threshold},
    )


def is_disposable(email: str | None) -> bool:
    return email_domain(email) in DISPOSABLE_DOMAINS

