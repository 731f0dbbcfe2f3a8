"""What the feature apps add to the customer portal, registered from their own folders.

The portal is one app; loyalty and referrals (and later ones) bring their pages to it without the
portal importing them: in their AppConfig.ready() they call

    register_portal_urls(prefix="points/", urlconf="loyalty.portal_urls")
    register_portal_page(key="points", label=_("Points"), url_name="portal:loyalty:points", order=20)
    register_portal_home_section(key="points", template="loyalty/portal/_home_points.html",
                                 load=points_home_section, order=20)

`load(customer=...)` returns the section's template context (under `section`) or None to leave it
out, and runs a bounded number of queries (the home page's query count is tested).

Their views use portal.access (customer_required, customer_object_or_404), so the URL-walking test
in tests/portal/test_access_matrix.py covers them the day they are mounted. Registering a key again
replaces the first entry (autoreload and tests import apps again)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Loader = Callable[..., Mapping[str, Any] | None]


@dataclass(frozen=True)
class PortalPage:
    """A link of the portal's navigation. It is the current one on its own page (`url_name`) and on
    the pages `current` names: view names ("portal:message_detail") or whole URL namespaces
    ("portal:referral_rewards"), so a page under another prefix still marks the right link."""

    key: str
    label: str
    url_name: str
    order: int = 100
    current: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortalUrls:
    """An app's portal URLconf, mounted under /portal/<prefix>."""

    prefix: str
    urlconf: str


@dataclass(frozen=True)
class PortalHomeSection:
    key: str
    template: str
    load: Loader
    order: int = 100


_pages: dict[str, PortalPage] = {}
_urls: dict[str, PortalUrls] = {}
_home_sections: dict[str, PortalHomeSection] = {}


def register_portal_page(
    *, key: str, label: str, url_name: str, order: int = 100, current: tuple[str, ...] = ()
) -> None:
    _pages[key] = PortalPage(key=key, label=label, url_name=url_name, order=order, current=tuple(current))


def register_portal_urls(*, prefix: str, urlconf: str) -> None:
    """Mount `urlconf` (a module path; give it an `app_name`) at /portal/<prefix>. Call it from
    AppConfig.ready(): the portal's URLconf is built when Django first resolves a URL, after every
    app is ready."""
    if not prefix.endswith("/") or prefix.startswith("/"):
        raise ValueError("prefix is a relative path ending in '/', e.g. 'points/'")
    _urls[prefix] = PortalUrls(prefix=prefix, urlconf=urlconf)


def register_portal_home_section(*, key: str, template: str, load: Loader, order: int = 100) -> None:
    _home_sections[key] = PortalHomeSection(key=key, template=template, load=load, order=order)


def portal_pages() -> list[PortalPage]:
    return sorted(_pages.values(), key=lambda page: (page.order, page.key))


def portal_urls() -> list[PortalUrls]:
    return sorted(_urls.values(), key=lambda urls: urls.prefix)


def portal_home_sections_load(*, customer) -> list[dict]:
    """Each registered home section's template and context for this customer, in order; sections
    whose loader returns None are left out."""
    loaded = []
    for section in sorted(_home_sections.values(), key=lambda s: (s.order, s.key)):
        context = section.load(customer=customer)
        if context is not None:
            loaded.append({"key": section.key, "template": section.template, "section": context})
    return loaded
