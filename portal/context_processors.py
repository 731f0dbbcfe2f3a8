"""The portal's navigation for its layout: the pages registered in portal.registry, the current one
marked. Only for a request that customer_required let in (no queries: the customer is loaded)."""

from django.urls import NoReverseMatch, reverse

from portal.registry import portal_pages


def portal(request):
    customer = getattr(request, "portal_customer", None)
    if customer is None:
        return {}
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
    return {"portal_nav": links}
