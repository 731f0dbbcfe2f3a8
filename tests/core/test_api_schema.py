import re

import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

ASSET = re.compile(r'(?:src|href)="([^"]*)"')


def test_schema_generates_without_errors_or_warnings(db, tmp_path):
    target = tmp_path / "schema.yml"
    # --fail-on-warn turns every warning (an unannotated view, an enum clash) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    for path in [
        "/api/v1/auth/token/",
        "/api/v1/customers/",
        "/api/v1/customers/{id}/",
        "/api/v1/customers/{customer_id}/notes/",
        "/api/v1/customers/{customer_id}/tasks/",
        "/api/v1/tasks/{id}/complete/",
        "/api/v1/orders/",
        "/api/v1/events/",
        "/api/v1/channels/",
        "/api/v1/channel-spend/",
    ]:
        assert path in schema["paths"], path
    # Bulk bodies: one object or a list of them.
    order_body = schema["components"]["schemas"]["OrderInputOrListRequest"]
    kinds = {option.get("type", "object") if "$ref" not in option else "object" for option in order_body["oneOf"]}
    assert kinds == {"object", "array"}
    assert "delete" not in schema["paths"]["/api/v1/customers/{id}/"]


def test_schema_is_served(db):
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert b"Lifecycle CRM API" in response.content


def test_docs_use_local_static_files_and_no_inline_script_or_style(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = ASSET.findall(html)
    assert urls, "the docs page loads its assets"
    for url in urls:
        assert url.startswith(("/static/", "/api/docs/?")), url
        assert "//" not in url, url
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in urls
    # CSP: script-src / style-src 'self' forbid inline code.
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert "<style" not in html
    assert "style=" not in html


def test_docs_init_script_is_a_separate_file(db):
    response = APIClient().get("/api/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in response.content.decode()
