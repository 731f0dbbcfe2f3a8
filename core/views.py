"""The home dashboard: the sections every app registered (core.registry.register_home_section).

A section whose data is slow to compute offers what it has cached; when it has nothing, the page
comes at once with a loading card whose htmx request (?section=<key>) fetches that section alone,
so only that fragment waits for the queries."""

from django.http import Http404
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from core.auth import role_required
from core.registry import home_section, home_sections
from core.roles import Role


def _section_entry(section, context) -> dict:
    return {"key": section.key, "template": section.template, "title": section.title, "panel": context}


@role_required(Role.AGENT)
def home(request):
    key = request.GET.get("section")
    if request.htmx and key:
        section = home_section(key)
        if section is None:
            raise Http404
        context = section.load(user=request.user)
        entries = [] if context is None else [_section_entry(section, context)]
        response = render(request, "core/home.html#sections", {"sections": entries})
    else:
        entries = []
        for section in home_sections():
            if section.cached is not None:
                context = section.cached(user=request.user)
                entries.append({**_section_entry(section, context), "pending": context is None})
                continue
            context = section.load(user=request.user)
            if context is not None:
                entries.append(_section_entry(section, context))
        response = render(request, "core/home.html", {"sections": entries})
    patch_vary_headers(response, ("HX-Request",))
    return response
