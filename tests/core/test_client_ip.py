"""core.client_ip: the one rule for the client's address behind our own proxies."""

import pytest
from django.test import RequestFactory

from core.client_ip import client_ip


def _request(**meta):
    request = RequestFactory().get("/")
    request.META.pop("REMOTE_ADDR", None)
    request.META.update(meta)
    return request


@pytest.mark.parametrize(
    ("proxies", "meta", "expected"),
    [
        (0, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}, "10.0.0.2"),  # header ignored
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.5"}, "203.0.113.5"),
        (2, {"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.5, 10.0.0.2"}, "203.0.113.5"),
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "2001:db8::7"}, "2001:db8::7"),
        (2, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "junk, 203.0.113.5"}, "10.0.0.2"),  # not an address
        (1, {"REMOTE_ADDR": "10.0.0.2"}, "10.0.0.2"),  # no header
        (0, {}, None),  # no address at all (axes stores None, never a made-up string)
    ],
)
def test_client_ip(settings, proxies, meta, expected):
    settings.CLIENT_IP_PROXY_COUNT = proxies
    assert client_ip(_request(**meta)) == expected
