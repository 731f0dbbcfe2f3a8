"""The htmx fragment choice, in one place.

One view serves the whole page and, for an htmx request, only a named partial of the same template
("customers/list.html#customer-table"). A history restore (the back button after htmx's cache
missed) asks for the whole page although it is an htmx request. Because the same URL answers two
ways, every such response says `Vary: HX-Request`, or a browser or proxy cache could hand the
fragment to a full-page load."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_fragment(request: HttpRequest) -> bool:
    """An htmx request that may be answered with a fragment (not a history restore)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    patch_vary_headers(response, ("HX-Request",))
    return response


def render_fragment(
    request: HttpRequest, template: str, fragment: str, context: dict, *, status: int = 200, fragment_when: bool = True
) -> HttpResponse:
    """`template`, or only its partial `fragment` when the request wants a fragment (and
    `fragment_when` holds, for views that answer some htmx requests with the page); always with
    `Vary: HX-Request`."""
    name = f"{template}#{fragment}" if fragment_when and wants_fragment(request) else template
    return vary_on_htmx(render(request, name, context, status=status))
