"""The portal's navigation for its layout: the pages registered in portal.registry, the current one
marked, for a request that customer_required let in (no queries: the customer is loaded); and
whether the page is a portal page at all."""

from django.urls import NoReverseMatch, reverse

from portal.registry import portal_pages


def portal(request):
    # Error pages (404) under /portal/ take the portal's layout, not the staff one.
    context = {"portal_page": request.path.startswith(reverse("portal:home"))}
    customer = getattr(request, "portal_customer", None)
    if customer is None:
        return context
    links = []
    for page in portal_pages():
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        links.append({"key": page.key, "label": page.label, "url": url, "current": False})
    # The link whose URL is the longest prefix of this page's is current (a message marks "Your e-mails").
    matching = [link for link in links if request.path.startswith(link["url"])]
    if matching:
        max(matching, key=lambda link: len(link["url"]))["current"] = True
    return {**context, "portal_nav": links}
