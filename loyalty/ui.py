"""What the loyalty app adds to the shared pages: the Loyalty link (the programme dashboard) and the
customer page's loyalty panel (core.registry), its pages and home card in the customer portal
(portal.registry), and its e-mail template in the outbox (messaging.defaults)."""

from django.utils.translation import gettext_lazy as _

from core.registry import register_customer_panel, register_nav_item
from core.roles import Role, role_at_least
from loyalty.forms import AdjustForm, LedgerFilterForm, TierHoldForm
from loyalty.selectors import account_summary, ledger_entries
from portal.registry import register_portal_home_section, register_portal_page, register_portal_urls

PANEL_ENTRIES = 10


def customer_loyalty_panel(*, customer, user) -> dict:
    """Balance, pending, tier and progress, next expiry and the latest entries (a fixed handful
    of queries); managers also get the adjustment form."""
    summary = account_summary(customer_id=customer.pk, with_progress=True)
    entries = list(ledger_entries(customer_id=customer.pk)[: PANEL_ENTRIES + 1]) if summary else []
    may_manage = role_at_least(user, Role.MANAGER)
    return {
        "summary": summary,
        "entries": entries[:PANEL_ENTRIES],
        "more": entries[-1].pk if len(entries) > PANEL_ENTRIES else None,
        "filter_form": LedgerFilterForm(),
        "adjust_form": AdjustForm.fresh() if may_manage else None,
        "tier_form": TierHoldForm(auto_id="tier_%s") if may_manage else None,
    }


def register() -> None:
    register_nav_item(
        key="loyalty", label=_("Loyalty"), url_name="loyalty:dashboard", role=Role.AGENT, order=40, section="loyalty"
    )
    register_customer_panel(
        key="loyalty", template="loyalty/_customer_panel.html", load=customer_loyalty_panel, order=20
    )
    from loyalty.portal_views import points_home_section
    from loyalty.services.warnings import register_templates

    register_portal_urls(prefix="points/", urlconf="loyalty.portal_urls")
    register_portal_page(key="points", label=_("Points"), url_name="portal:loyalty:points", order=20)
    register_portal_page(
        key="rewards", label=_("Rewards"), url_name="portal:loyalty:rewards", order=21,
        current=("portal:loyalty:reward_redeem",),
    )
    register_portal_home_section(
        key="points", template="loyalty/portal/_home_points.html", load=points_home_section, order=20
    )
    register_templates()
