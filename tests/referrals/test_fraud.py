"""The anti-fraud rules: the e-mail normalisation table, and each rule with an attempt that passes
and one that trips it (through the one intake service)."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.email_keys import email_key
from customers.models import Customer
from referrals.models import Fingerprint, FraudRule, Referral, ReferralCode
from referrals.services.codes import referral_code_for
from referrals.services.fraud import Traits, fraud_check_order_timing, similarity
from referrals.services.intake import ReferralRefused, fingerprints_record, referral_intake
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

NORMALISED = [
    ("alice.smith@gmail.com", "alicesmith@gmail.com"),
    ("alicesmith+promo@gmail.com", "alicesmith@gmail.com"),
    ("Alice.Smith+x@GoogleMail.com", "alicesmith@gmail.com"),
    ("bob+news@outlook.com", "bob@outlook.com"),
    ("b.o.b@outlook.com", "b.o.b@outlook.com"),  # Microsoft keeps dots
    ("x+tag@icloud.com", "x@icloud.com"),
    ("a.b+c@yahoo.com", "a.b+c@yahoo.com"),  # unknown habits: kept as it is
    ("John.Doe@Example.COM", "john.doe@example.com"),
    ("no-at-sign", "no-at-sign"),
]


@pytest.mark.parametrize(("address", "key"), NORMALISED)
def test_email_key_in_python(address, key):
    assert email_key(address) == key


def test_the_database_column_computes_the_same_keys():
    for i, (address, _key) in enumerate(NORMALISED):
        Customer.objects.create(external_id=f"n{i}", email=address)
    # A plain save keeps the case it is given: the column lower-cases by itself.
    stored = dict(Customer.objects.filter(external_id__startswith="n").values_list("email", "email_key"))
    assert stored == dict(NORMALISED)
    Customer.objects.create(external_id="none")
    assert Customer.objects.filter(external_id="none").values_list("email_key", flat=True).get() is None


def _people(referrer_kw=None, referee_kw=None):
    referrer = CustomerFactory(**{"first_name": "Ann", "last_name": "Archer", "email": "ann.archer@example.org",
                                  "phone": "", **(referrer_kw or {})})
    referee = CustomerFactory(**{"first_name": "Zed", "last_name": "Quinn", "email": "zq77@mailbox.net", "phone": "",
                                 **(referee_kw or {})})
    return referrer, referee


def _intake(referrer, referee, **kwargs):
    code = referral_code_for(customer_id=referrer.pk)
    return referral_intake(code=code.code, referee_id=referee.pk, source="api", actor="api", **kwargs)


def _codes(result) -> set[str]:
    return {signal["code"] for signal in result.referral.signals}


def _refused(referrer, referee, **kwargs) -> ReferralRefused:
    with pytest.raises(ReferralRefused) as caught:
        _intake(referrer, referee, **kwargs)
    return caught.value


def test_a_clean_referral_is_pending_with_no_signals():
    result = _intake(*_people(), ip="10.0.0.1", user_agent="UA", device_id="d1")
    assert result.referral.state == "pending" and result.assessment.verdict == "ok"
    assert result.referral.signals == [] and result.referral.risk_score == 0
    assert result.referral.events.get().to_state == "pending"


def test_self_referral_is_refused_without_a_row():
    referrer, _ = _people()
    refused = _refused(referrer, referrer)
    assert refused.referral is None and {s.code for s in refused.assessment.signals} >= {"self_referral"}
    assert not Referral.objects.exists()


def test_same_normalised_email_is_rejected_and_stored():
    referrer, referee = _people({"email": "alice.smith@gmail.com"}, {"email": "alicesmith+promo@gmail.com"})
    refused = _refused(referrer, referee)
    assert refused.referral.state == "rejected" and refused.referral.verdict == "rejected"
    assert "same_email" in {s["code"] for s in refused.referral.signals}
    assert refused.referral.events.get().to_state == "rejected"


def test_existing_customer_by_paid_order_before_is_rejected():
    referrer, referee = _people()
    OrderFactory(customer=referee, status="paid")
    assert "existing_customer" in {s.code for s in _refused(referrer, referee).assessment.signals}


def test_existing_customer_by_an_older_record_with_the_same_mailbox():
    referrer, _ = _people()
    CustomerFactory(email="z.q.77@gmail.com")
    referee = CustomerFactory(email="zq77+new@gmail.com", first_name="Zed", last_name="Quinn")
    assert "existing_customer" in {s.code for s in _refused(referrer, referee).assessment.signals}


def test_a_refunded_order_only_does_not_make_an_existing_customer():
    referrer, referee = _people()
    OrderFactory(customer=referee, status="refunded")
    assert _intake(referrer, referee).referral.state == "pending"


def test_already_referred_the_first_referrer_wins():
    referrer, referee = _people()
    first = _intake(referrer, referee).referral
    other = CustomerFactory(first_name="Olga", last_name="Brandt", email="olga@shop.example")
    refused = _refused(other, referee)
    assert {"code": "already_referred", "referral": first.pk} == {
        "code": refused.assessment.rejecting[0].code, "referral": refused.assessment.rejecting[0].detail["referral"]
    }
    assert Referral.objects.filter(referee=referee).exclude(state="rejected").get().pk == first.pk


def test_circular_referrals_are_rejected_also_over_three_links():
    a, b = _people()
    c = CustomerFactory(first_name="Cy", last_name="Young", email="cy@else.example")
    _intake(a, b)  # A refers B
    assert "circular" in {s.code for s in _refused(b, a).assessment.signals}  # B refers A
    _intake(b, c)  # B refers C
    d = CustomerFactory(first_name="Dee", last_name="Ray", email="dee@other.example")
    assert "circular" not in _codes(_intake(c, d))  # C refers D: no cycle


def test_circular_over_three_links():
    a, b = _people()
    c = CustomerFactory(first_name="Cy", last_name="Young", email="cy@else.example")
    _intake(a, b)
    _intake(b, c)
    # C refers A, but A is not yet referred by anyone: A -> B -> C -> A closes the cycle
    assert "circular" in {s.code for s in _refused(c, a).assessment.signals}


def test_similar_names_and_emails_flag():
    referrer, referee = _people(
        {"first_name": "Jonathan", "last_name": "Miller", "email": "jonathan.miller@example.org"},
        {"first_name": "Jonathon", "last_name": "Miller", "email": "jonathon.miller@example.net"},
    )
    codes = _codes(_intake(referrer, referee))
    assert {"similar_name", "similar_email"} <= codes
    assert similarity("ann archer", "zed quinn") < 85


def test_same_ip_with_user_agent_flags_but_ip_alone_does_not():
    referrer, referee = _people()
    fingerprints_record(customer_id=referrer.pk, traits=Traits.of(ip="192.0.2.7", user_agent="Firefox 1", device_id="dev-a"))
    alone = _intake(referrer, referee, ip="192.0.2.7", user_agent="Safari 2", device_id="dev-b")
    assert "same_device" not in _codes(alone)
    referee2 = CustomerFactory(first_name="Uma", last_name="Vance", email="uma@x.example")
    same_agent = _intake(referrer, referee2, ip="192.0.2.7", user_agent="Firefox 1")
    assert "same_device" in _codes(same_agent)
    referee3 = CustomerFactory(first_name="Ivo", last_name="Wolf", email="ivo@y.example")
    same_device = _intake(referrer, referee3, ip="192.0.2.7", user_agent="Other", device_id="dev-a")
    assert same_device.referral.signals[0]["detail"]["matched"] == "ip_device"


def test_many_signups_from_one_ip_flag():
    rule = FraudRule.objects.get(code="ip_burst")
    rule.threshold = 2
    rule.save()
    referrer = CustomerFactory(first_name="Ann", last_name="Archer", email="ann@example.org")
    results = [
        _intake(referrer, CustomerFactory(first_name=f"P{i}", last_name=f"Q{i}", email=f"person{i}x@z{i}.example"),
                ip="198.51.100.9")
        for i in range(3)
    ]
    assert ["ip_burst" in _codes(r) for r in results] == [False, False, True]


def test_same_phone_payment_and_address_flag():
    referrer, referee = _people({"phone": "+49 30 1234567"})
    fingerprints_record(customer_id=referrer.pk, traits=Traits.of(payment_fingerprint="card-fp-1", address="1 Main St., Berlin"))
    result = _intake(referrer, referee, phone="0049-30-123 4567", payment_fingerprint="card-fp-1", address="1 main st berlin")
    assert {"same_phone", "same_payment", "same_address"} <= _codes(result)
    assert result.referral.state == "flagged" and result.referral.review_deadline is not None
    other = CustomerFactory(first_name="Kim", last_name="Lee", email="kim@k.example")
    assert not {"same_phone", "same_payment", "same_address"} & _codes(
        _intake(referrer, other, phone="030 7654321", payment_fingerprint="card-fp-2", address="2 Side St")
    )


def test_disposable_email_domain_flags():
    referrer, referee = _people(None, {"email": "someone@mailinator.com"})
    assert "disposable_email" in _codes(_intake(referrer, referee))


def test_velocity_per_hour_flags_above_the_threshold():
    FraudRule.objects.filter(code="velocity_hour").update(threshold=2)
    referrer = CustomerFactory(first_name="Ann", last_name="Archer", email="ann@example.org")
    results = [
        _intake(referrer, CustomerFactory(first_name=f"V{i}", last_name=f"W{i}", email=f"v{i}a@w{i}.example"))
        for i in range(3)
    ]
    assert ["velocity_hour" in _codes(r) for r in results] == [False, False, True]


def test_velocity_per_day_counts_the_day_window():
    FraudRule.objects.filter(code="velocity_day").update(threshold=1)
    referrer = CustomerFactory(first_name="Ann", last_name="Archer", email="ann@example.org")
    first = _intake(referrer, CustomerFactory(first_name="Eve", last_name="Fox", email="eve@f.example"))
    Referral.objects.filter(pk=first.referral.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert "velocity_day" not in _codes(_intake(referrer, CustomerFactory(first_name="Gil", last_name="Ho", email="g@h.example")))
    assert "velocity_day" in _codes(_intake(referrer, CustomerFactory(first_name="Ida", last_name="Jo", email="i@j.example")))


def test_fast_order_fires_below_the_threshold_minutes():
    referral = _intake(*_people()).referral
    assert fraud_check_order_timing(referral=referral, ordered_at=referral.created_at + dt.timedelta(minutes=2)).code == "fast_order"
    assert fraud_check_order_timing(referral=referral, ordered_at=referral.created_at + dt.timedelta(minutes=30)) is None


def test_a_disabled_rule_does_not_fire_and_weights_come_from_the_rules():
    FraudRule.objects.filter(code="disposable_email").update(enabled=False)
    referrer, referee = _people(None, {"email": "someone@mailinator.com"})
    assert "disposable_email" not in _codes(_intake(referrer, referee))
    FraudRule.objects.filter(code="similar_name").update(weight=35)
    a, b = _people({"first_name": "Maria", "last_name": "Lopez", "email": "m1@a.example"},
                   {"first_name": "Mariah", "last_name": "Lopez", "email": "zz@b.example"})
    result = _intake(a, b)
    assert result.referral.risk_score == 35 and result.referral.state == "flagged"


def test_a_suspended_code_attributes_nothing():
    referrer, referee = _people()
    code = referral_code_for(customer_id=referrer.pk)
    ReferralCode.objects.filter(pk=code.pk).update(suspended_at=timezone.now())
    from core.exceptions import DomainError

    with pytest.raises(DomainError) as caught:
        _intake(referrer, referee)
    assert caught.value.field == "code" and not Referral.objects.exists()


def test_the_referees_traits_are_remembered():
    referrer, referee = _people()
    _intake(referrer, referee, ip="203.0.113.5", user_agent="UA", device_id="dev", phone="123")
    assert set(Fingerprint.objects.filter(customer=referee).values_list("kind", flat=True)) == {
        "ip", "ip_agent", "device", "phone"
    }


def test_a_portal_login_records_the_referrers_device(rf, django_capture_on_commit_callbacks):
    from django.contrib.sessions.middleware import SessionMiddleware

    from portal.services import portal_login
    from referrals.views_signup import DEVICE_COOKIE

    referrer, referee = _people()
    request = rf.get("/portal/", HTTP_USER_AGENT="Firefox 9", REMOTE_ADDR="192.0.2.44")
    request.COOKIES[DEVICE_COOKIE] = "a" * 32
    SessionMiddleware(lambda r: None).process_request(request)
    with django_capture_on_commit_callbacks(execute=True):
        portal_login(request, customer=referrer)
    assert set(Fingerprint.objects.filter(customer=referrer).values_list("kind", flat=True)) == {"ip", "ip_agent", "device"}
    assert "same_device" in _codes(_intake(referrer, referee, ip="192.0.2.44", user_agent="Firefox 9"))
