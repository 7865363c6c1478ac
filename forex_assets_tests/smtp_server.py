"""A real SMTP server on 127.0.0.1 for the alert tests (aiosmtpd): STARTTLS with a throwaway certificate,
AUTH required after TLS, every accepted message kept; and ``alert_server``, the server with an
``AlertNotifier`` configured for it (user and password from the environment, as in production)."""

from __future__ import annotations

import email
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import TYPE_CHECKING

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

if TYPE_CHECKING:
    from forex_assets.defs.resources.alerts import AlertNotifier

USER, PASSWORD = "forex-ops", "s3cr3t-Pa55-Xq7"
#: Every setting of the alerting resource that the environment can give (cleared for a test's own settings).
SMTP_ENV = ("FOREX_SMTP_HOST", "FOREX_SMTP_PORT", "FOREX_SMTP_SECURITY", "FOREX_ALERT_TO", "FOREX_ALERT_FROM")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)  # successful logins
    #: every (user, password) an AUTH command brought, accepted or not: proof that a password was really sent
    credentials: list[tuple[str, str]] = field(default_factory=list)
    #: when set, the reply to every message (after a successful login), e.g. "554 5.7.1 refused"
    refuse_messages: str | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.refuse_messages:
            return self.refuse_messages
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.credentials.append((auth_data.login.decode(), auth_data.password.decode()))
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    def subjects(self) -> list[str]:
        return [m["Subject"] for m in self.messages]

    def text(self, message: EmailMessage) -> str:
        return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")

    def html(self, message: EmailMessage) -> str:
        return message.get_body(preferencelist=("html",)).get_content()


def start_server(directory: Path) -> tuple[Controller, Inbox, Path]:
    import ssl

    cert, key = self_signed_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_require_tls=True,
    )
    controller.start()
    return controller, inbox, cert


@contextmanager
def alert_server(directory: Path, monkeypatch) -> Iterator[tuple[Inbox, AlertNotifier]]:
    """(inbox, notifier): a real STARTTLS + AUTH server and the alerting resource configured for it, with
    the user and the password in the environment (``FOREX_SMTP_USER``, ``FOREX_SMTP_PASSWORD``)."""
    from forex_assets.defs.resources.alerts import AlertNotifier

    for name in SMTP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOREX_SMTP_USER", USER)
    monkeypatch.setenv("FOREX_SMTP_PASSWORD", PASSWORD)
    directory.mkdir(parents=True, exist_ok=True)
    controller, inbox, cert = start_server(directory)
    notifier = AlertNotifier(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        security="starttls",
        sender="forex@example.org",
        recipients=["ops@example.org"],
        ca_file=str(cert),
        backoff_s=0.01,
    )
    try:
        yield inbox, notifier
    finally:
        controller.stop()
