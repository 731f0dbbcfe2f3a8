import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import CustomerFactory

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    # Throttle counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


def _token(client, username, password):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json")


def test_token_url_name():
    assert reverse("api-auth-token") == TOKEN_URL


def test_token_for_right_credentials_authenticates_api_calls(agent):
    client = APIClient()
    response = _token(client, "agent", PASSWORD)
    assert response.status_code == 200
    key = response.json()["token"]
    assert key == Token.objects.get(user=agent).key

    # Asking again gives the same token.
    assert _token(client, "agent", PASSWORD).json()["token"] == key

    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/customers/").status_code == 200


def test_token_login_updates_last_login(agent):
    assert agent.last_login is None
    assert _token(APIClient(), "agent", PASSWORD).status_code == 200
    agent.refresh_from_db()
    assert agent.last_login is not None


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"username": "agent", "password": "wrong"}, "non_field_errors"),
        ({"username": "nobody", "password": PASSWORD}, "non_field_errors"),
        ({"username": "agent"}, "password"),
        ({"password": PASSWORD}, "username"),
        ({"username": ["agent"], "password": {"x": 1}}, "username"),
        ({}, "username"),
    ],
)
def test_bad_credentials_are_400_with_an_error(agent, payload, field):
    response = APIClient().post(TOKEN_URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Token.objects.exists()


def test_inactive_user_gets_no_token(agent):
    agent.is_active = False
    agent.save()
    assert _token(APIClient(), "agent", PASSWORD).status_code == 400


def test_malformed_json_is_400(db):
    response = APIClient().post(TOKEN_URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_lockout_after_repeated_failures_even_with_the_right_password(agent, settings):
    client = APIClient()
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _token(client, "agent", "wrong").status_code == 400
    locked = _token(client, "agent", "wrong")
    assert locked.status_code in (403, 429)
    assert "locked" in locked.json()["detail"]

    response = _token(client, "agent", PASSWORD)
    assert response.status_code == locked.status_code
    assert "token" not in response.json()
    assert not Token.objects.exists()


def test_success_resets_the_failure_count(agent, settings):
    client = APIClient()
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _token(client, "agent", "wrong").status_code == 400
    assert _token(client, "agent", PASSWORD).status_code == 200
    for _ in range(limit - 1):
        assert _token(client, "agent", "wrong").status_code == 400


def test_token_endpoint_is_throttled(agent, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth", "2/min")
    client = APIClient()
    assert _token(client, "agent", PASSWORD).status_code == 200
    assert _token(client, "agent", PASSWORD).status_code == 200
    response = _token(client, "agent", PASSWORD)
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_a_forged_forwarded_for_header_does_not_dodge_the_throttle(agent, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth", "2/min")
    client = APIClient()
    statuses = [
        client.post(
            TOKEN_URL, {"username": "agent", "password": PASSWORD}, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_anonymous_gets_401_with_token_challenge(db):
    response = APIClient().get("/api/v1/customers/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_unknown_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/v1/customers/").status_code == 401


def test_session_auth_reads_and_enforces_csrf_on_writes(agent):
    customer = CustomerFactory(owner=agent)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get("/api/v1/customers/").status_code == 200

    url = f"/api/v1/customers/{customer.pk}/notes/"
    refused = client.post(url, {"body": "Hello"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    csrf = "a" * 32  # the cookie and the header must match; any well-formed secret does
    client.cookies["csrftoken"] = csrf
    accepted = client.post(url, {"body": "Hello"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 201


def _token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_token_of_an_inactive_user_is_401_with_drf_message(agent):
    client = _token_client(agent)
    agent.is_active = False
    agent.save()
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."


def test_unknown_token_message_is_drf_s(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "1" * 40)
    assert client.get("/api/v1/customers/").json()["detail"] == "Invalid token."


@pytest.mark.parametrize("role, allowed", [("agent", False), ("manager", True), ("no_role_user", False), ("admin_user", True)])
def test_token_request_reads_the_user_and_role_in_one_query(request, role, allowed):
    # core.authentication.TokenAuthentication: the token, its user and the highest role together;
    # the permission check asks nothing more. Agents and users without a role may not adjust
    # points; Managers and Admins may.
    user = request.getfixturevalue(role)
    client = _token_client(user)
    url = f"/api/v1/loyalty/accounts/{CustomerFactory().pk}/adjust/"
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, {"points": 5, "reason": "goodwill", "idempotency_key": "k"}, format="json")
    assert response.status_code == (201 if allowed else 403)
    auth_queries = [q["sql"] for q in queries.captured_queries if "auth_group" in q["sql"] or "authtoken" in q["sql"]]
    assert len(auth_queries) == 1 and "authtoken_token" in auth_queries[0]


def test_a_changed_role_counts_from_the_next_request(agent):
    client = _token_client(agent)
    url = f"/api/v1/loyalty/accounts/{CustomerFactory().pk}/adjust/"
    body = {"points": 5, "reason": "goodwill", "idempotency_key": "k"}
    assert client.post(url, body, format="json").status_code == 403
    agent.groups.add(Group.objects.get(name="Manager"))
    assert client.post(url, body, format="json").status_code == 201
