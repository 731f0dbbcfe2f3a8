"""The client's address, one rule for everything that counts requests per client: the staff login
lockout (django-axes calls client_ip through AXES_CLIENT_IP_CALLABLE), the portal's login-link
limits, and the API throttles (DRF's NUM_PROXIES applies the same rule with the same count).

Each of our own proxies appends the address it saw to X-Forwarded-For, so behind CLIENT_IP_PROXY_COUNT
of them the client is that many entries from the right; anything further left came from the client
and can be forged. With none (0), the header is ignored and the connection's address counts.
django-axes would need django-ipware for its own proxy settings; without it, it silently keyed
every lockout on the proxy's address."""

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address, or None when the request has none (a test request, a unix socket).
    A forwarded entry that is not an address (a misconfigured count) falls back to the connection's:
    axes stores the result in an address column, where junk would be a server error."""
    proxies = settings.CLIENT_IP_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
        reported = addresses[-min(proxies, len(addresses))] if addresses else ""
        if _is_address(reported):
            return reported
    return request.META.get("REMOTE_ADDR") or None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
