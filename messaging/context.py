"""Context that an app adds to its messages at delivery, per message, for a whole batch at once.

A bulk queue (`messages_queue_bulk`) gives every message the same context; a survey invitation
still needs each customer's own link. The app that owns a template registers a provider: it takes
the batch's messages of that template and returns {message id: extra context} with a fixed number
of queries. Secrets (a link's token) then never sit in the outbox's rows either."""

from __future__ import annotations

from collections.abc import Callable, Iterable

Provider = Callable[[list], dict[int, dict]]

_providers: dict[str, Provider] = {}


def register_message_context(*, template: str, provider: Provider) -> None:
    _providers[template] = provider


def message_context_provider(template: str) -> Provider | None:
    return _providers.get(template)


def extra_contexts(messages: Iterable, template_keys: dict[int, str]) -> dict[int, dict]:
    """{message id: extra context} for the messages whose template has a provider."""
    by_template: dict[str, list] = {}
    for message in messages:
        key = template_keys.get(message.template_id)
        if key in _providers:
            by_template.setdefault(key, []).append(message)
    extra: dict[int, dict] = {}
    for key, batch in by_template.items():
        extra.update(_providers[key](batch))
    return extra


# Templates whose context holds a secret (a sign-in link): the context is kept only until the
# message is sent, fails for good or is suppressed, then erased, so the row never keeps it.
_secret_templates: set[str] = set()


def register_secret_context(*, template: str) -> None:
    _secret_templates.add(template)


def secret_context_templates() -> set[str]:
    return set(_secret_templates)
