"""A real SMTP server on 127.0.0.1 for the alert tests (aiosmtpd): STARTTLS with a throwaway certificate,
AUTH required after TLS, every accepted message kept."""

from __future__ import annotations

import email
import socket
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

USER, PASSWORD = "forex-ops", "s3cr3t-Pa55-Xq7"


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
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
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
