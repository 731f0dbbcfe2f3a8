"""What the referrals app adds to the shared pages: the Referrals link (the programme dashboard),
the customer page's referral panel, the home dashboard's referrals panel and its part of the demo
data (core.registry), and its pages and home card in the customer portal (portal.registry)."""

from django.utils.translation import gettext_lazy as _

from core.registry import register_customer_panel, register_demo_step, register_home_section, register_nav_item
from core.roles import Role, role_at_least
from portal.registry import register_portal_home_section, register_portal_page, register_portal_urls


def customer_referrals_panel(*, customer, user) -> dict:
    """The code, referrals made (counts by state and the latest), who referred the customer and
    their rewards: five queries whatever the numbers."""
    from referrals.selectors import customer_referral_summary

    return customer_referral_summary(customer_id=customer.pk)


def home_referrals_section(*, user) -> dict | None:
    """The home dashboard's referrals panel: every staff member sees the review queue's size and the
    month's rewards; managers, who decide reviews, pay payouts and own the budget, also get the
    budget spent and the payouts to pay. Three or four queries; hidden before the first referral."""
    from referrals.selectors import home_figures

    may_manage = role_at_least(user, Role.MANAGER)
    figures = home_figures(with_money=may_manage)
    return None if figures is None else {"figures": figures, "may_manage": may_manage}


def register() -> None:
    register_nav_item(
        key="referrals", label=_("Referrals"), url_name="referrals:dashboard", role=Role.AGENT, order=45,
        section="referrals",
    )
    register_customer_panel(
        key="referrals", template="referrals/_customer_panel.html", load=customer_referrals_panel, order=25
    )
    register_home_section(
        key="referrals", template="referrals/_home_section.html", load=home_referrals_section, order=50
    )
    from referrals.portal_views import referrals_home_section
    from referrals.services.demo import referrals_demo

    register_demo_step(key="referrals", run=referrals_demo, order=30)

    register_portal_urls(prefix="referrals/", urlconf="referrals.portal_urls")
    register_portal_urls(prefix="rewards/", urlconf="referrals.portal_reward_urls")
    register_portal_page(
        key="referrals", label=_("Refer a friend"), url_name="portal:referrals:overview", order=30,
        current=("portal:referrals", "portal:referral_rewards"),  # a reward's page is under /portal/rewards/
    )
    register_portal_home_section(
        key="referrals", template="referrals/portal/_home_referrals.html", load=referrals_home_section, order=30
    )
