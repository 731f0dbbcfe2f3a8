"""Simplified Chinese ships complete: every message translated, nothing fuzzy, the committed .mo
matches the .po, and the pages really come out in Chinese when it is chosen."""

import ast
import gettext
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from tests.factories import CustomerFactory

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
CJK = re.compile(r"[\u4e00-\u9fff]")


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgid, msgid_plural, msgstr list, flags. Obsolete (#~) ones are skipped."""
    entries, entry, field = [], None, None

    def finish():
        if entry is not None and "msgid" in entry:
            entries.append(entry)

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            entry, field = None, None
            continue
        if line.startswith("#~"):
            continue
        if entry is None:
            entry = {"flags": set(), "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgctxt ", "msgid ", "msgid_plural ")):
            field, _, value = line.partition(" ")
            entry[field] = ast.literal_eval(value)
        elif line.startswith("msgstr"):
            match = re.match(r"msgstr(?:\[(\d+)\])? (.*)", line)
            field = ("msgstr", int(match.group(1) or 0))
            entry["msgstr"][field[1]] = ast.literal_eval(match.group(2))
        elif line.startswith('"'):
            if isinstance(field, tuple):
                entry["msgstr"][field[1]] += ast.literal_eval(line)
            else:
                entry[field] += ast.literal_eval(line)
    finish()
    return [e for e in entries if e["msgid"]]  # the header has an empty msgid


@pytest.fixture(scope="module")
def po_entries():
    return parse_po(LOCALE_DIR / "django.po")


def test_the_po_has_many_messages(po_entries):
    assert len(po_entries) > 300  # the whole UI, not a sample


def test_every_message_is_translated(po_entries):
    untranslated = [e["msgid"] for e in po_entries if not e["msgstr"] or not all(e["msgstr"].values())]
    assert untranslated == []


def test_no_message_is_fuzzy(po_entries):
    assert [e["msgid"] for e in po_entries if "fuzzy" in e["flags"]] == []


def test_placeholders_survive_translation(po_entries):
    """A translation must keep every %(name)s / {{ name }} of its source, or the page breaks."""
    placeholder = re.compile(r"%\(\w+\)[sdif]|%[sd]|\{\{ *\w+ *\}\}|\{\w*\}")
    broken = []
    for e in po_entries:
        wanted = sorted(placeholder.findall(e.get("msgid_plural") or e["msgid"]))
        for text in e["msgstr"].values():
            if sorted(placeholder.findall(text)) != wanted and sorted(placeholder.findall(text)) != sorted(
                placeholder.findall(e["msgid"])
            ):
                broken.append((e["msgid"], text))
    assert broken == []


def test_the_committed_mo_matches_the_po(po_entries):
    """The .mo is committed (run and test need no gettext); it must be compiled from this .po."""
    with open(LOCALE_DIR / "django.mo", "rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    missing = []
    for e in po_entries:
        key = e["msgid"] if "msgctxt" not in e else f"{e['msgctxt']}\x04{e['msgid']}"
        if "msgid_plural" in e:
            if catalog._catalog.get((key, 0)) != e["msgstr"][0]:
                missing.append(e["msgid"])
        elif catalog._catalog.get(key) != e["msgstr"][0]:
            missing.append(e["msgid"])
    assert missing == []


@pytest.mark.django_db
def test_login_page_in_chinese_after_switching(client):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("login")})
    assert response.status_code == 302
    html = client.get(reverse("login")).text
    assert '<html lang="zh-hans">' in html
    assert "登录" in html  # "Log in"
    assert "Log in" not in html


@pytest.mark.django_db
def test_customer_list_in_chinese_from_the_browser_language(client, agent):
    CustomerFactory(first_name="Ada", last_name="Lovelace")
    client.force_login(agent)
    html = client.get(reverse("customers:list"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5").text
    assert '<html lang="zh-hans">' in html
    assert "<h1>客户</h1>" in html  # "Customers"
    assert "导出 CSV" in html  # "Export CSV"
    assert "Ada Lovelace" in html  # data is not translated
    english = client.get(reverse("customers:list"), HTTP_ACCEPT_LANGUAGE="en").text
    assert "<h1>Customers</h1>" in english


SKIP_WHEN_EXTRACTING = {".venv", ".git", "locale", "staticfiles", "test-artifacts", "media", "node_modules"}


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (apt-get install gettext)")
def test_the_po_covers_every_message_of_the_source(tmp_path, monkeypatch, settings):
    """Extract the messages again, into a copy of the catalogue in a scratch tree that links to the
    sources: a string added to the code or a template since the last translation shows up as
    untranslated here (and the real catalogue is left alone)."""
    base = Path(settings.BASE_DIR)
    for child in base.iterdir():
        if child.is_dir() and child.name not in SKIP_WHEN_EXTRACTING and not child.name.startswith("."):
            (tmp_path / child.name).symlink_to(child, target_is_directory=True)
    copy = tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES"
    copy.mkdir(parents=True)
    shutil.copy(LOCALE_DIR / "django.po", copy / "django.po")
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    monkeypatch.chdir(tmp_path)
    call_command("makemessages", locale=["zh_Hans"], symlinks=True, verbosity=0)
    entries = parse_po(copy / "django.po")
    assert len(entries) >= len(parse_po(LOCALE_DIR / "django.po")) - 20  # the extraction really ran
    assert [e["msgid"] for e in entries if not all(e["msgstr"].values()) or "fuzzy" in e["flags"]] == []
