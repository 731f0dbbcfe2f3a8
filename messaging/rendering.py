"""Render message templates with Django's template engine, sandboxed: a private Engine with no
template loaders (no {% include %} / {% extends %} of files), no extra tag libraries, and a context
of plain strings only (never a model object, so a placeholder cannot reach a method or a relation).
HTML bodies autoescape; subjects and text bodies do not.

A placeholder that names nothing we provide is an error when the template is saved
(`template_errors`), not an empty string in a customer's inbox."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, Variable
from django.template.defaulttags import DebugNode, ForNode, IfNode, TemplateLiteral, URLNode
from django.template.loader_tags import ExtendsNode, IncludeNode
from django.template.smartif import TokenBase
from django.utils.translation import gettext as _

ENGINE = Engine(dirs=[], app_dirs=False, libraries={}, loaders=[("django.template.loaders.locmem.Loader", {})])

# What every template may use about the customer, and the names the outbox itself provides.
CUSTOMER_FIELDS = ("first_name", "last_name", "full_name", "email")
BUILTIN_NAMES = ("customer", "site_url", "unsubscribe_url")
SAMPLE_CUSTOMER = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
}


@lru_cache(maxsize=256)
def compiled(source: str):
    """A template compiled once per process and source text (an edited template is a new source)."""
    return ENGINE.from_string(source)


def customer_context(customer) -> dict[str, str]:
    """The customer as the template sees it: four strings (from a model or a values() row)."""
    get = customer.get if isinstance(customer, dict) else lambda name: getattr(customer, name, "")
    first, last = get("first_name") or "", get("last_name") or ""
    return {"first_name": first, "last_name": last, "full_name": f"{first} {last}".strip(), "email": get("email") or ""}


def _plain(value):
    """Only strings, numbers and lists/dicts of them reach a template."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def render_parts(template, *, language: str, customer: dict, context: dict, unsubscribe_url: str = "") -> tuple:
    """(subject, text, html) rendered; html is "" when the template has none."""
    subject, text, html = template.parts(language)
    values = {
        **_plain(context or {}),
        "customer": customer,
        "site_url": settings.SITE_URL,
        "unsubscribe_url": unsubscribe_url,
    }
    rendered_subject = compiled(subject).render(Context(values, autoescape=False))
    rendered_text = compiled(text).render(Context(values, autoescape=False))
    rendered_html = compiled(html).render(Context(values, autoescape=True)) if html else ""
    # A subject is one line whatever the placeholders held (a header cannot carry a newline).
    return " ".join(rendered_subject.split()), rendered_text, rendered_html


def _expressions(node: Node):
    """Every filter expression a node evaluates (variables of {{ }}, {% if %}, {% for %} ...)."""
    for value in vars(node).values():
        if isinstance(value, FilterExpression):
            yield value
    if isinstance(node, IfNode):
        stack = [condition for condition, _ in node.conditions_nodelists if condition is not None]
        while stack:
            item = stack.pop()
            if isinstance(item, TemplateLiteral):
                yield item.value
            elif isinstance(item, TokenBase):
                stack.extend(x for x in (getattr(item, "first", None), getattr(item, "second", None)) if x is not None)


# Tags that would reach beyond the message: other templates, the whole context, the site's URLs.
FORBIDDEN_TAGS = {ExtendsNode: "extends", IncludeNode: "include", DebugNode: "debug", URLNode: "url"}


def _unknown_names(source: str, allowed: set[str]) -> list[str]:
    tree = ENGINE.from_string(source)
    for node_type, tag in FORBIDDEN_TAGS.items():
        if tree.nodelist.get_nodes_by_type(node_type):
            raise TemplateSyntaxError(_("The {%% %(tag)s %%} tag is not allowed in messages.") % {"tag": tag})
    loop_names: set[str] = set()
    for node in tree.nodelist.get_nodes_by_type(ForNode):
        loop_names.update(node.loopvars)
    unknown = []
    for node in tree.nodelist.get_nodes_by_type(Node):
        for expression in _expressions(node):
            # The value and the filters' variable arguments ({{ a|default:b }} reads b too).
            variables = [expression.var, *(arg for _f, args in expression.filters for is_var, arg in args if is_var)]
            for variable in variables:
                if not isinstance(variable, Variable) or variable.lookups is None:
                    continue  # a literal
                lookups = variable.lookups
                root = lookups[0]
                if root in loop_names or root == "forloop":
                    continue
                if root not in allowed or (
                    root == "customer" and (len(lookups) != 2 or lookups[1] not in CUSTOMER_FIELDS)
                ):
                    unknown.append(".".join(lookups))
    return unknown


def template_errors(template) -> dict[str, list[str]]:
    """Field errors of a template: syntax errors and placeholders that name nothing we provide."""
    from messaging.models import TEMPLATE_LANGUAGES

    allowed = set(BUILTIN_NAMES) | set(template.variable_names)
    errors: dict[str, list[str]] = {}
    for _language, suffix in TEMPLATE_LANGUAGES:
        for part in ("subject", "text", "html"):
            field = f"{part}_{suffix}"
            source = getattr(template, field) or ""
            try:
                unknown = _unknown_names(source, allowed)
            except TemplateSyntaxError as exc:
                errors[field] = [_("Template error: %(error)s") % {"error": exc}]
                continue
            if unknown:
                errors[field] = [
                    _("Unknown placeholder(s): %(names)s. Available: %(available)s.")
                    % {
                        "names": ", ".join(sorted(set(unknown))),
                        "available": ", ".join(
                            sorted({*allowed - {"customer"}, *(f"customer.{f}" for f in CUSTOMER_FIELDS)})
                        ),
                    }
                ]
    return errors
