"""The customers import's referral_code column: good rows become referrals, bad codes are refused
per row with line and reason, a re-run creates nothing twice, and the queries do not grow per row."""

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from customers.services.imports import import_csv
from referrals.models import Referral, ReferralCode, ReferralEvent
from referrals.services.codes import referral_code_for
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
HEADER = "customer_id,email,first_name,last_name,referral_code\n"


def _file(lines) -> io.BytesIO:
    return io.BytesIO((HEADER + "".join(line + "\n" for line in lines)).encode())


def _referrer(external_id="R1", email="ann@example.org"):
    referrer = CustomerFactory(external_id=external_id, first_name="Ann", last_name="Archer", email=email)
    return referrer, referral_code_for(customer_id=referrer.pk).code


def test_rows_with_a_code_become_referrals_and_bad_codes_are_refused_per_row():
    referrer, code = _referrer()
    _other, suspended = _referrer("R2", "olga@example.org")
    ReferralCode.objects.filter(code=suspended).update(suspended_at=timezone.now())
    result = import_csv(kind="customers", file=_file([
        f"N1,zed@mailbox.net,Zed,Quinn,{code.lower()}",
        "N2,yan@other.example,Yan,Po,NOSUCHCODE00",
        f"N3,xia@third.example,Xia,Li,{suspended}",
        f"R1,ann@example.org,Ann,Archer,{code}",
        "N4,wu@fourth.example,Wu,Ma,",
    ]))
    reasons = {row.line: row.reason for row in result.rejected}
    assert sorted(reasons) == [3, 4, 5]
    assert "NOSUCHCODE00" in reasons[3] and "suspended" in reasons[4] and "own code" in reasons[5]
    assert result.created == 2 and not Customer.objects.filter(external_id__in=["N2", "N3"]).exists()
    referral = Referral.objects.get()
    assert (referral.referrer_id, referral.referee.external_id, referral.source, referral.state) == (
        referrer.pk, "N1", "import", "pending"
    )
    assert ReferralEvent.objects.get(referral=referral).actor == "system"


def test_fraud_rules_apply_and_a_rerun_creates_nothing_twice():
    _referrer_row, code = _referrer(email="alice.smith@gmail.com")
    lines = [f"N1,alicesmith+promo@gmail.com,Zed,Quinn,{code}", f"N2,new@mailbox.net,New,Person,{code}"]
    import_csv(kind="customers", file=_file(lines))
    states = dict(Referral.objects.values_list("referee__external_id", "state"))
    assert states == {"N1": "rejected", "N2": "pending"}
    assert "same_email" in {s["code"] for s in Referral.objects.get(referee__external_id="N1").signals}
    import_csv(kind="customers", file=_file(lines))
    assert Referral.objects.count() == 2


def test_an_already_referred_customer_is_not_taken_over():
    _r, code = _referrer()
    _o, other = _referrer("R2", "olga@example.org")
    import_csv(kind="customers", file=_file([f"N1,zed@mailbox.net,Zed,Quinn,{code}"]))
    import_csv(kind="customers", file=_file([f"N1,zed@mailbox.net,Zed,Quinn,{other}"]))
    assert sorted(Referral.objects.values_list("state", flat=True)) == ["pending", "rejected"]


def test_queries_do_not_grow_with_the_rows():
    _r, code = _referrer()

    def run(count, start):
        lines = [f"N{start + i},p{start + i}@m{start + i}.example,P{i},Q{i},{code}" for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            import_csv(kind="customers", file=_file(lines))
        return len(queries)

    run(3, 200)  # the first import also creates the programme's settings row
    assert run(40, 0) == run(5, 100)
    assert Referral.objects.count() == 48


def test_a_customer_who_existed_before_the_import_is_rejected_as_existing():
    _r, code = _referrer()
    CustomerFactory(external_id="OLD1", email="old@customer.example", first_name="Old", last_name="Timer")
    result = import_csv(kind="customers", file=_file([f"OLD1,old@customer.example,Old,Timer,{code}"]))
    assert not result.rejected
    referral = Referral.objects.get()
    assert referral.state == "rejected" and referral.signals[0]["detail"]["record_existed"] is True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_that_loses_the_referee_to_the_api_meanwhile_is_rejected_with_its_line(monkeypatch):
    """The API attributes the referee (committed, on its own connection) after the import read its
    facts and before it inserted: the row is refused whole with its line and reason (its customer
    update rolled back), every other row of the chunk is kept."""
    import referrals.services.import_column as import_column
    from referrals.models import FraudRule
    from referrals.services.intake import referral_intake
    from referrals.services.program import program_get
    from tests.races import race

    _a, code_a = _referrer()
    _b, code_b = _referrer("R2", "olga@example.org")
    # Staff turned the existing-customer rule off, so an existing customer can be referred by the file.
    FraudRule.objects.update_or_create(code="existing_customer", defaults={"enabled": False})
    program_get()  # the settings row, committed (else the API's get_or_create waits for the import)
    eve = CustomerFactory(external_id="E1", email="eve@example.net", first_name="Eve", last_name="Old")
    fields_set = import_column.referral_fields_set
    api_won = []

    def meanwhile(row, **kwargs):
        if row.referee_id == eve.pk and not api_won:
            results, errors = race(lambda: referral_intake(code=code_b, referee_id=eve.pk, source="api", actor="api"))
            assert errors == []
            api_won.append(results[0].referral)
        return fields_set(row, **kwargs)

    monkeypatch.setattr(import_column, "referral_fields_set", meanwhile)
    result = import_csv(kind="customers", file=_file([
        f"E1,eve@example.net,Evelyn,Old,{code_a}",
        f"N1,new@mailbox.net,New,One,{code_a}",
    ]))
    [winner] = api_won
    [rejected] = result.rejected
    assert rejected.line == 2 and f"referral #{winner.pk}" in rejected.reason and "E1" in rejected.raw
    assert (result.rows, result.created, result.updated, result.unchanged) == (2, 1, 0, 0)
    eve.refresh_from_db()
    assert eve.first_name == "Eve"  # the refused row wrote nothing
    assert list(Referral.objects.filter(referee=eve).values_list("pk", "source")) == [(winner.pk, "api")]
    assert Referral.objects.get(referee__external_id="N1").state == "pending"
