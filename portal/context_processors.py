"""The portal's navigation for its layout: the pages registered in portal.registry, the current one
marked, for a request that customer_required let in (no queries: the customer is loaded); and
whether the page is a portal page at all.

The current link is the one whose page this is (by the resolved view name or URL namespace, as the
page registered it), never a guess from the path: a prefix match made every page under /portal/
that no other link's URL prefixed (a referral reward's page) mark "Overview"."""

from django.urls import NoReverseMatch, reverse

from portal.registry import portal_pages


def portal(request):
    # Error pages (404) under /portal/ take the portal's layout, not the staff one.
    context = {"portal_page": request.path.startswith(reverse("portal:home"))}
    customer = getattr(request, "portal_customer", None)
    if customer is None:
        return context
    match = request.resolver_match
    here = {match.view_name, match.namespace} if match is not None else set()
    links = []
    for page in portal_pages():
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        current = bool(here & {page.url_name, *page.current})
        links.append({"key": page.key, "label": page.label, "url": url, "current": current})
    return {**context, "portal_nav": links}
