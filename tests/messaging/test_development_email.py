"""Where e-mail goes in development (`make run`) and in production, read from config/settings.py as
each loads it (in a process of its own: settings are read once per process).

`make run` (DEBUG on, no EMAIL_URL) used to print every message the outbox delivered: beat's daily
retention run on the demo data printed hundreds into the server's log. Development now writes them
to files in the git-ignored dev-email/, and the outbox still delivers and marks them sent; a
deployment's EMAIL_URL is read as before."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from messaging.models import Message
from messaging.services import message_send
from tests.messaging.factories import MessageTemplateFactory, opted_in_customer

ROOT = Path(__file__).resolve().parents[2]
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "test-" + "x" * 60, "ALLOWED_HOSTS": "crm.example.com"}


def email_settings(**environment: str) -> dict:
    """The e-mail settings config.settings gives in a process with this environment (and no EMAIL_URL
    unless given)."""
    env = {name: value for name, value in os.environ.items() if name not in ("EMAIL_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(environment, DJANGO_SETTINGS_MODULE="config.settings")
    script = (
        "import json; from django.conf import settings as s; print(json.dumps({name: getattr(s, name, None) "
        "for name in ('EMAIL_BACKEND', 'EMAIL_FILE_PATH', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_USE_TLS')}))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_development_writes_email_to_files_in_a_git_ignored_folder():
    development = email_settings(DEBUG="true")
    assert development["EMAIL_BACKEND"] == FILE_BACKEND
    folder = Path(development["EMAIL_FILE_PATH"])
    assert folder == ROOT / "dev-email"
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", "dev-email/x.log"], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, "dev-email/ must be git-ignored"


def test_production_reads_email_url_as_before():
    assert email_settings(**PRODUCTION)["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    smtp = email_settings(**PRODUCTION, EMAIL_URL="smtp+tls://user:secret@smtp.example.com:587")
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_USE_TLS"]) == ("smtp.example.com", 587, True)
    # An EMAIL_URL in development wins over the folder.
    assert email_settings(DEBUG="true", EMAIL_URL="smtp://127.0.0.1:1025")["EMAIL_BACKEND"].endswith(".smtp.EmailBackend")


@pytest.mark.django_db
def test_the_outbox_delivers_to_the_development_files_and_prints_nothing(
    settings, tmp_path, capsys, django_capture_on_commit_callbacks
):
    development = email_settings(DEBUG="true")
    settings.EMAIL_BACKEND = development["EMAIL_BACKEND"]
    settings.EMAIL_FILE_PATH = str(tmp_path / "dev-email")  # the same backend, outside the working tree
    MessageTemplateFactory(key="news")
    customer = opted_in_customer(first_name="Ada")
    capsys.readouterr()

    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(customer=customer, template="news", context={"offer": "10%"}, key="n", purpose="marketing")

    message.refresh_from_db()
    assert message.state == Message.State.SENT and message.provider_message_id
    [written] = (tmp_path / "dev-email").iterdir()
    content = written.read_text()
    assert "Subject: Hello Ada" in content and f"To: {customer.email}" in content
    assert message.provider_message_id in content
    assert capsys.readouterr().out == ""
