"""Delivering alerts by SMTP, with bounded retries, and a log of every alert (pure, no Dagster; the log in the
project's state storage, ``forex_assets.core.storage``).

Delivery never raises: a failing server is reported in the returned :class:`Delivery` (and by the
caller in its log), never as an exception that could fail the pipeline step that sent the alert.
The password is read from the environment at send time, is never stored in an object that gets
logged, and is masked out of every error text.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from forex_assets.core.alerting.messages import Alert
from forex_assets.core.storage import StateDatabase
from forex_assets.core.storage.tables import LEGACY_PAIR
from forex_assets.core.storage.tables import alerts as alerts_table

Security = Literal["starttls", "ssl", "none"]
# Subjects carry two version ids; folding them at 78 characters makes some clients show a leading blank.
HEADER_POLICY = email.policy.SMTP.clone(max_line_length=200)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in repr, logs or errors
    ca_file: str | None = None  # a private CA for the server's certificate; default the system's
    timeout_s: float = 10.0
    max_attempts: int = 3
    backoff_s: float = 1.0

    def describe(self) -> str:
        return f"smtp {self.host}:{self.port} ({self.security})"


@dataclass(frozen=True)
class Delivery:
    status: Literal["sent", "failed", "logged"]  # logged: no SMTP configured, the run log is the channel
    attempts: int = 0
    error: str = ""


class _Permanent(Exception):
    """Retrying cannot help (authentication refused, every recipient refused)."""


def build_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage(policy=HEADER_POLICY)
    message["Subject"] = alert.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="forex-assets.local")
    message["X-Forex-Event"] = alert.event
    message["X-Forex-Horizon"] = alert.horizon
    message.set_content(alert.text)
    message.add_alternative(alert.html, subtype="html")
    return message


def _masked(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _send_once(settings: SmtpSettings, message: EmailMessage) -> None:
    context = ssl.create_default_context(cafile=settings.ca_file)
    client = (
        smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s, context=context)
        if settings.security == "ssl"
        else smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
    )
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            try:
                client.login(settings.username, settings.password or "")
            except smtplib.SMTPAuthenticationError as error:
                raise _Permanent(f"authentication refused for user {settings.username!r}: {error.smtp_code}") from None
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise _Permanent(f"every recipient refused: {', '.join(error.recipients)}") from None


def deliver(settings: SmtpSettings, alert: Alert, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Send ``alert``; up to ``max_attempts`` tries with doubling back-off. Never raises."""
    message = build_message(alert, settings.sender, settings.recipients)
    error = ""
    for attempt in range(1, settings.max_attempts + 1):
        try:
            _send_once(settings, message)
            return Delivery("sent", attempt)
        except _Permanent as failure:
            return Delivery("failed", attempt, _masked(f"{settings.describe()}: {failure}", settings.password))
        except (OSError, smtplib.SMTPException, ssl.SSLError) as failure:
            error = _masked(f"{settings.describe()}: {type(failure).__name__}: {failure}", settings.password)
            if attempt < settings.max_attempts:
                sleep(settings.backoff_s * 2 ** (attempt - 1))
    return Delivery("failed", settings.max_attempts, error)


@dataclass(frozen=True)
class LoggedAlert:
    sent_at: datetime
    event: str
    horizon: str
    subject: str
    status: str
    attempts: int
    error: str


class AlertLog:
    """Every alert raised, delivered or not, so `forex-assets status` can say what was last said: in the SQLite
    file ``path`` (the embedded default), or, with ``database_url``, in that database (PostgreSQL: schema
    ``forex``), ``path`` unused."""

    def __init__(
        self,
        path: Path | str,
        database_url: str | None = None,
        *,
        pair: str = LEGACY_PAIR,
        adopt_file: bool = True,
        read_only: bool = False,
    ):
        """``pair``: the currency pair whose alerts this log writes and reads. ``adopt_file``: with
        ``database_url``, whether the database adopts the rows of an embedded-default
        file at ``path`` (once); readers such as the command line pass False. ``read_only``: only read, create
        nothing (``StateDatabase``'s read_only; never adopts a file)."""
        self.path, self.pair = Path(path), pair
        source = self.path if (adopt_file and not read_only) or not database_url else None
        self.database = StateDatabase("alerts", source, database_url, what="alert log", read_only=read_only)

    def record(self, alert: Alert, delivery: Delivery, at: datetime | None = None) -> None:
        row = {
            "pair": self.pair,
            "sent_at": (at or datetime.now(UTC)).isoformat(),
            "event": alert.event,
            "horizon": alert.horizon,
            "subject": alert.subject,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "error": delivery.error,
        }
        with self.database.write("recording an alert in") as db:
            db.execute(sa.insert(alerts_table).values(**row))

    def entries(self, horizon: str | None = None) -> list[LoggedAlert]:
        c = alerts_table.c
        query = sa.select(c.sent_at, c.event, c.horizon, c.subject, c.status, c.attempts, c.error)
        condition = self.database.pair_condition(alerts_table, self.pair)
        if condition is not None:
            query = query.where(condition)
        if horizon is not None:
            query = query.where(c.horizon.in_([horizon, "all"]))
        with self.database.read() as db:
            rows = db.execute(query.order_by(c.id)).all()
        return [LoggedAlert(datetime.fromisoformat(r[0]), *r[1:]) for r in rows]

    def last(self, horizon: str) -> LoggedAlert | None:
        entries = self.entries(horizon)
        return entries[-1] if entries else None
