"""What each feature app adds to the pages every app shares, registered from the app's own folder.

`core` never imports a feature app: an app calls these functions from its AppConfig.ready() (by
importing its own `ui.py`), and the shared pages (the home dashboard, the customer page, the job
page, the main navigation) ask the registry what to show. A panel's or a section's data comes from a
`load` function the view calls, never from a template tag, so the page's query count is tested.

Registering the same key twice replaces the first entry (autoreload and tests import apps again)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Loader = Callable[..., Mapping[str, Any] | None]


@dataclass(frozen=True)
class CustomerPanel:
    """A panel of the customer page: `load(customer=..., user=...)` returns the template's `panel`
    context, or None to leave the panel out (e.g. for a role that may not see it)."""

    key: str
    template: str
    load: Loader
    order: int = 100


@dataclass(frozen=True)
class HomeSection:
    """A part of the home dashboard. `load(user=...)` returns its context (None hides it).

    A section whose data is slow gives `cached(user=...)`: what is at hand without the slow work,
    or None. Then the page comes at once with a loading card (`title`), and htmx fetches the
    section alone (?section=<key>), which calls `load`."""

    key: str
    template: str
    load: Loader
    order: int = 100
    cached: Loader | None = None
    title: str = ""


@dataclass(frozen=True)
class JobKind:
    """How the job page names a kind of background job and the counters in its result."""

    kind: str
    label: str
    result_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NavItem:
    """A link of the main navigation, shown to users with `role` (core.roles.Role) or above.
    `section` is the app label whose pages mark the link as current."""

    key: str
    label: str
    url_name: str
    role: str
    order: int = 100
    section: str = ""
    current_url_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoStep:
    """What an app adds to the demo data after the customers, orders and events are in (its own
    settings, its state computed from them). `run(seed=)` returns a line for the person watching."""

    key: str
    run: Callable[..., str]
    order: int = 100


_customer_panels: dict[str, CustomerPanel] = {}
_home_sections: dict[str, HomeSection] = {}
_job_kinds: dict[str, JobKind] = {}
_nav_items: dict[str, NavItem] = {}
_demo_steps: dict[str, DemoStep] = {}


def register_customer_panel(*, key: str, template: str, load: Loader, order: int = 100) -> None:
    _customer_panels[key] = CustomerPanel(key=key, template=template, load=load, order=order)


def register_home_section(
    *, key: str, template: str, load: Loader, order: int = 100, cached: Loader | None = None, title: str = ""
) -> None:
    _home_sections[key] = HomeSection(key=key, template=template, load=load, order=order, cached=cached, title=title)


def register_job_kind(*, kind: str, label: str, result_labels: Mapping[str, str] | None = None) -> None:
    _job_kinds[kind] = JobKind(kind=kind, label=label, result_labels=dict(result_labels or {}))


def register_nav_item(
    *,
    key: str,
    label: str,
    url_name: str,
    role: str,
    order: int = 100,
    section: str = "",
    current_url_names: tuple[str, ...] = (),
) -> None:
    _nav_items[key] = NavItem(
        key=key,
        label=label,
        url_name=url_name,
        role=role,
        order=order,
        section=section,
        current_url_names=tuple(current_url_names),
    )


def register_demo_step(*, key: str, run: Callable[..., str], order: int = 100) -> None:
    _demo_steps[key] = DemoStep(key=key, run=run, order=order)


def demo_steps() -> list[DemoStep]:
    return sorted(_demo_steps.values(), key=lambda step: (step.order, step.key))


def customer_panels() -> list[CustomerPanel]:
    return sorted(_customer_panels.values(), key=lambda panel: (panel.order, panel.key))


def home_sections() -> list[HomeSection]:
    return sorted(_home_sections.values(), key=lambda section: (section.order, section.key))


def home_section(key: str) -> HomeSection | None:
    return _home_sections.get(key)


def job_kind(kind: str) -> JobKind | None:
    return _job_kinds.get(kind)


def nav_items() -> list[NavItem]:
    return sorted(_nav_items.values(), key=lambda item: (item.order, item.key))


def customer_panels_load(*, customer, user) -> list[dict]:
    """Each registered panel's template and its `panel` context for this customer and user, in
    order; panels whose loader returns None are left out."""
    loaded = []
    for panel in customer_panels():
        context = panel.load(customer=customer, user=user)
        if context is not None:
            loaded.append({"key": panel.key, "template": panel.template, "panel": context})
    return loaded
