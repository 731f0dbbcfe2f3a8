"""A real SMTP server on loopback (aiosmtpd) that keeps the mail it accepts, for tests that send
through the SMTP backend or a real worker and then read the mail (the outbox's delivery tests, the
portal's browser test reading its login link).

Use the `mailbox` fixture (tests/conftest.py): `mailbox.settings(settings)` points this process's
Django at it, `mailbox.email_url` is the EMAIL_URL for a worker process, `mailbox.wait_for(n)`
waits until n messages arrived, `mailbox.to(address)` returns what one address received.
Rules make it misbehave on purpose: `mailbox.refuse(address, "451 4.3.0 Try later", times=2)`
answers the next two RCPTs for that address so (then accepts), `times=None` refuses for good;
`mailbox.delay = 0.1` holds every DATA reply that long."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    queue_id: str

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value).strip()  # a long header arrives folded

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part else ""


@dataclass
class _Rule:
    reply: str
    times: int | None  # None: always


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.box._rule_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.box.delay:
            await asyncio.sleep(self.box.delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.box._lock:
            self.box._count += 1
            queue_id = f"Q{self.box._count:06d}"
            self.box.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, queue_id))
        return f"250 2.0.0 OK queued as {queue_id}"


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _rules: dict[str, _Rule] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0
    _controller: Controller | None = None

    def start(self) -> Mailbox:
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
        if not self.port:
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, decode_data=False)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()

    @property
    def email_url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def settings(self, settings) -> None:
        """Point this process's Django (the pytest `settings` fixture) at the mailbox."""
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = self.host, self.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 10

    def refuse(self, address: str, reply: str, *, times: int | None = None) -> None:
        self._rules[address.lower()] = _Rule(reply, times)

    def _rule_reply(self, address: str) -> str | None:
        with self._lock:
            rule = self._rules.get(address.lower())
            if rule is None or rule.times == 0:
                return None
            if rule.times is not None:
                rule.times -= 1
            return rule.reply

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Received]:
        """Wait until at least `count` messages arrived; all of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"the mailbox got {len(self.received)} messages, expected {count}")
