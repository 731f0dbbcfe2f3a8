"""The customers CSV import's optional `referral_code` column (registered through
customers.import_hooks): a row naming a code makes its customer the referee of the code's owner.

Per chunk, in the chunk's transaction, a fixed number of queries whatever its size:
- before the customers are written, rows whose code is unknown, suspended or the customer's own are
  refused with their line and reason (the rest of the file goes on);
- after, the referrals are assessed by the same rules as the API's (services/fraud.py, facts
  gathered set-based) and inserted in one statement, with their events and the referees' phone
  fingerprints. A referee that already has a referral from the same referrer is left alone, so
  importing a file again creates nothing twice. A referee someone else referred (the API, the
  sign-up page) between the facts being read and the insert is a lost race: its row is handed back
  to the import, which refuses it with its line and reason and writes the chunk again without it
  (customers.import_hooks); importing that row again records the referral as rejected (already
  referred), as for any referee referred before the file."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.import_hooks import CustomerImportHook
from customers.models import Customer
from referrals.models import Fingerprint, Referral, ReferralCode, ReferralEvent
from referrals.services.codes import code_normalise
from referrals.services.fraud import (
    CHAIN_DEPTH,
    Facts,
    Person,
    Traits,
    fraud_assess,
    fraud_rules_load,
    referee_queryset,
)
from referrals.services.intake import created_reason, referral_fields_set, referral_store
from referrals.services.program import program_get


def _staged(cursor, sql: str, params=None) -> list[tuple]:
    cursor.execute(sql, params)
    return cursor.fetchall()


def _codes(texts) -> dict[str, ReferralCode]:
    wanted = {code_normalise(text) for text in texts}
    return {code.code: code for code in ReferralCode.objects.select_related("customer").filter(code__in=wanted)}


def referral_rows_reject(cursor, stage: str) -> list[tuple[int, str]]:
    rows = _staged(cursor, f"SELECT line, external_id, referral_code FROM {stage} WHERE referral_code IS NOT NULL")
    if not rows:
        return []
    codes = _codes(text for _line, _ext, text in rows)
    refused = []
    for line, external_id, text in rows:
        code = codes.get(code_normalise(text))
        if code is None:
            refused.append((line, _("referral_code: there is no referral code %(code)s.") % {"code": text[:32]}))
        elif code.suspended_at is not None:
            refused.append((line, _("referral_code: %(code)s is suspended.") % {"code": code.code}))
        elif code.customer.external_id is not None and code.customer.external_id == external_id:
            refused.append((line, _("referral_code: %(code)s is the customer's own code.") % {"code": code.code}))
    return refused


def _chains(referrer_ids: list[int]) -> dict[int, set[int]]:
    """Each referrer's chain of referrers (live referrals), in one recursive query."""
    if not referrer_ids:
        return {}
    table = connection.ops.quote_name(Referral._meta.db_table)
    starts = " UNION ALL ".join(["SELECT %s AS start_id"] * len(referrer_ids))
    sql = (
        f"WITH RECURSIVE up(start_id, customer_id, depth) AS ("
        f" SELECT s.start_id, r.referrer_id, 1 FROM ({starts}) s JOIN {table} r ON r.referee_id = s.start_id"
        f" WHERE r.state <> 'rejected'"
        f" UNION"
        f" SELECT up.start_id, r.referrer_id, up.depth + 1 FROM {table} r JOIN up ON r.referee_id = up.customer_id"
        f" WHERE r.state <> 'rejected' AND up.depth < {CHAIN_DEPTH}"
        f") SELECT start_id, customer_id FROM up"
    )
    chains: dict[int, set[int]] = defaultdict(set)
    with connection.cursor() as cursor:
        cursor.execute(sql, referrer_ids)
        for start_id, customer_id in cursor.fetchall():
            chains[start_id].add(customer_id)
    return chains


def referral_rows_merged(cursor, stage: str, now) -> list[tuple[int, str]]:
    """The referrals of the chunk's rows; the rows whose referee another referral took meanwhile, as
    [(line, reason)] for the import to refuse."""
    customer = connection.ops.quote_name(Customer._meta.db_table)
    rows = _staged(
        cursor,
        # created_at < the import's stamp: the customer existed before this import (see fraud.py).
        f"SELECT s.line, c.id, s.referral_code, c.created_at < %s FROM {stage} s"
        f" JOIN {customer} c ON c.external_id = s.external_id WHERE s.referral_code IS NOT NULL ORDER BY s.line",
        [now],
    )
    if not rows:
        return []
    lost: dict[int, int | None] = {}
    referrals_import_rows(rows=[(customer_id, text) for _line, customer_id, text, _existed in rows],
                          existed={customer_id for _line, customer_id, _text, existed in rows if existed}, lost=lost)
    return [
        (line, _("referral_code: the customer was referred by someone else (referral #%(referral)s) while this "
                 "file was being imported.") % {"referral": lost[customer_id]})
        for line, customer_id, _text, _existed in rows if customer_id in lost
    ]


def referrals_import_rows(*, rows: list[tuple[int, str]], existed: set[int] = frozenset(),
                          lost: dict[int, int | None] | None = None) -> list[Referral]:
    """Referrals for (referee id, code text) pairs whose codes were checked (referral_rows_reject);
    `existed`: referees whose record was there before the import. The new referrals, rejected ones
    included; the referees another referral took between the facts being read and the insert (a
    race) get none, and go into `lost` with the winning referral's id."""
    program = program_get()
    if not program.active:
        return []
    now = timezone.now()
    rules = fraud_rules_load()
    codes = _codes(text for _id, text in rows)
    pairs = [(referee_id, codes[code_normalise(text)]) for referee_id, text in rows if code_normalise(text) in codes]
    referees = {c.pk: c for c in referee_queryset().filter(pk__in={referee_id for referee_id, _code in pairs})}
    referrer_ids = sorted({code.customer_id for _id, code in pairs})
    existing: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for pk, referee_id, referrer_id, state in Referral.objects.filter(referee_id__in=referees).values_list(
        "pk", "referee_id", "referrer_id", "state"
    ):
        existing[referee_id].append((pk, referrer_id, state))
    chains = _chains(referrer_ids)
    phones = {c.pk: Traits.of(phone=c.phone).hashes.get("phone") for c in referees.values()}
    referrer_phones = set(
        Fingerprint.objects.filter(customer_id__in=referrer_ids, kind="phone", value__in=[p for p in phones.values() if p])
        .values_list("customer_id", "value")
    )
    hour_start, day_start = now - dt.timedelta(minutes=_window(rules, "velocity_hour", 60)), now - dt.timedelta(
        minutes=_window(rules, "velocity_day", 1440)
    )
    hour, day = Counter(), Counter()
    for referrer_id, created_at in Referral.objects.filter(
        referrer_id__in=referrer_ids, created_at__gte=min(hour_start, day_start)
    ).values_list("referrer_id", "created_at"):
        hour[referrer_id] += created_at >= hour_start
        day[referrer_id] += created_at >= day_start

    new_rows, assessments, traits_of = [], [], {}
    for referee_id, code in pairs:
        referee = referees.get(referee_id)
        if referee is None or any(referrer == code.customer_id for _pk, referrer, _s in existing[referee_id]):
            continue  # imported before (a re-run), or vanished
        hour[code.customer_id] += 1
        day[code.customer_id] += 1
        live = next((pk for pk, _referrer, state in existing[referee_id] if state != Referral.State.REJECTED), None)
        traits = Traits.of(phone=referee.phone)
        facts = Facts(
            referrer=Person.of(code.customer), referee=Person.of(referee), traits=traits,
            live_referral_id=live, in_referrer_chain=referee_id in chains.get(code.customer_id, ()),
            paid_order_before=referee.fraud_paid_before, older_record=referee.fraud_older_twin,
            record_existed=referee_id in existed,
            referrer_kinds={"phone"} if (code.customer_id, phones.get(referee_id)) in referrer_phones else set(),
            referrer_hour=hour[code.customer_id], referrer_day=day[code.customer_id],
        )
        assessment = fraud_assess(facts=facts, rules=rules, review_score=program.review_score)
        row = Referral(
            referrer_id=code.customer_id, referee_id=referee_id, code=code, source=Referral.Source.IMPORT
        )
        referral_fields_set(row, assessment=assessment, program=program, now=now)
        if row.state != Referral.State.REJECTED:
            existing[referee_id].append((-1, code.customer_id, row.state))  # a second code in the file loses
        new_rows.append(row)
        assessments.append(assessment)
        traits_of[referee_id] = traits
    if not new_rows:
        return []
    try:
        with transaction.atomic():
            Referral.objects.bulk_create(new_rows)
        ReferralEvent.objects.bulk_create([
            ReferralEvent(
                referral=row, from_state="", to_state=row.state, actor=ReferralEvent.Actor.SYSTEM,
                reason=created_reason(assessment, row.source)[:500],
                data={"risk_score": assessment.score, "verdict": assessment.verdict, "signals": assessment.signals_json()},
            )
            for row, assessment in zip(new_rows, assessments)
        ])
    except IntegrityError:
        # A referee was attributed by someone else (the API, the sign-up page) meanwhile: one by one,
        # and the referees that were taken are reported to the caller (the import refuses their rows).
        stored, taken = [], []
        for row, assessment in zip(new_rows, assessments):
            referral = referral_store(row, assessment=assessment, program=program, now=now,
                                       actor=ReferralEvent.Actor.SYSTEM, staff=None)
            if referral is not None:
                stored.append(referral)
            else:
                taken.append(row.referee_id)
        new_rows = stored
        if taken and lost is not None:
            winners = dict(Referral.objects.filter(referee_id__in=taken).exclude(state=Referral.State.REJECTED)
                           .values_list("referee_id", "pk"))
            lost.update({referee_id: winners.get(referee_id) for referee_id in taken})
    hashed = [(referee_id, traits) for referee_id, traits in traits_of.items() if traits.hashes]
    Fingerprint.objects.bulk_create(
        [Fingerprint(customer_id=referee_id, kind=kind, value=value, last_seen_at=now)
         for referee_id, traits in hashed for kind, value in traits.hashes.items()],
        update_conflicts=True, unique_fields=["kind", "value", "customer"], update_fields=["last_seen_at"],
    )
    return new_rows


def _window(rules, code: str, default: int) -> int:
    rule = rules.get(code)
    return rule.window_minutes if rule is not None and rule.window_minutes else default


REFERRAL_CODE_IMPORT_HOOK = CustomerImportHook(
    column="referral_code", max_length=32, reject=referral_rows_reject, merged=referral_rows_merged
)
