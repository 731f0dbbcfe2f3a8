"""Translating, at display time, messages that were stored as text: a job's summary, the reason
of each rejected row, a run's failure.

These were written by a worker in the language it ran in (English), and rows already stored must
read in the reader's language too, so nothing about them is changed where they are written. Instead
the stored text is matched against the catalogue's own messages: an exact msgid is translated as
it is; a msgid with placeholders ("%(column)s is missing.") becomes a pattern whose placeholders
capture the values, and the translation is filled with them, each value translated in turn (a
summary may quote a reason). Text that matches no message is shown as stored.

Only messages with enough fixed words are turned into patterns (MIN_LITERAL): "%(currency)s
%(amount)s" would match any two words."""

from __future__ import annotations

import re
from functools import lru_cache

from django.utils import translation
from django.utils.translation import gettext

MIN_LITERAL = 8  # fixed characters a message needs, besides placeholders, to be used as a pattern
_PLACEHOLDER = re.compile(r"%\((\w+)\)([sdif])|%%")
_MAX_DEPTH = 2


def _pattern(msgid: str) -> tuple[re.Pattern, int] | None:
    parts, literal, names, end = [], 0, set(), 0
    for match in _PLACEHOLDER.finditer(msgid):
        text = msgid[end : match.start()]
        parts.append(re.escape(text))
        literal += len(text.strip())
        end = match.end()
        if match.group(0) == "%%":
            parts.append("%")
            continue
        name, kind = match.group(1), match.group(2)
        if name in names:
            parts.append(f"(?P={name})")
        else:
            names.add(name)
            parts.append(f"(?P<{name}>-?\\d+)" if kind == "d" else f"(?P<{name}>.+?)")
    if not names:
        return None
    tail = msgid[end:]
    parts.append(re.escape(tail))
    literal += len(tail.strip())
    if literal < MIN_LITERAL:
        return None
    return re.compile("^" + "".join(parts) + "$", re.DOTALL), literal


@lru_cache(maxsize=8)
def _patterns(language: str) -> list[tuple[re.Pattern, str]]:
    """(pattern, msgid) of every placeholder message of the language's catalogue, most fixed text first."""
    catalog = getattr(translation.trans_real.translation(language), "_catalog", None)
    if catalog is None:
        return []
    found = []
    for key in catalog.keys():  # noqa: SIM118 (Django's TranslationCatalog is not iterable)
        if not isinstance(key, str) or "\x04" in key or "%(" not in key:
            continue  # plural forms and messages with a context are not stored as text
        compiled = _pattern(key)
        if compiled:
            found.append((compiled[1], compiled[0], key))
    found.sort(key=lambda item: -item[0])
    return [(pattern, msgid) for _literal, pattern, msgid in found]


def translate_stored(text: str, *, _depth: int = 0) -> str:
    """`text`, stored in English, in the active language when the catalogue has its message."""
    if not text or not isinstance(text, str):
        return text
    language = translation.get_language()
    if not language or language.startswith("en"):
        return text
    exact = gettext(text)
    if exact != text:
        return exact
    for pattern, msgid in _patterns(language):
        match = pattern.match(text)
        if match is None:
            continue
        values = {}
        for name, value in match.groupdict().items():
            values[name] = int(value) if re.fullmatch(r"-?\d+", value) and f"%({name})d" in msgid else value
            if isinstance(values[name], str) and _depth < _MAX_DEPTH:
                values[name] = translate_stored(value, _depth=_depth + 1)
        try:
            return gettext(msgid) % values
        except (KeyError, ValueError, TypeError):
            return text
    # A message joined from several (a run's problems, one per line): each line on its own.
    if "\n" in text and _depth < _MAX_DEPTH:
        return "\n".join(translate_stored(line, _depth=_depth + 1) for line in text.split("\n"))
    return text
