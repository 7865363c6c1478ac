"""The alerting resource: SMTP settings from run configuration or the environment, never the password in config."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import dagster as dg
from pydantic import Field

from forex_assets.core.alerting.delivery import AlertLog, Delivery, Security, SmtpSettings, deliver
from forex_assets.core.alerting.messages import Alert, for_pair
from forex_assets.core.working_area import PRIMARY_PAIR

DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "ssl": 465, "none": 25}


@runtime_checkable
class HasAlertLog(Protocol):
    """What opens the alert log (the working area)."""

    def alert_log(self) -> AlertLog: ...


#: where an alert is recorded: the alert log, or what opens it (a callable, the working area), opened only
#: inside :meth:`AlertNotifier.send`'s never-raise guard
AlertLogSource = AlertLog | Callable[[], AlertLog] | HasAlertLog


def open_alert_log(source: AlertLogSource) -> AlertLog:
    if isinstance(source, AlertLog):
        return source
    if isinstance(source, HasAlertLog):
        return source.alert_log()
    return source()


class AlertNotifier(dg.ConfigurableResource):
    """Email alerts over SMTP. Every field may also come from the environment (FOREX_SMTP_HOST,
    FOREX_SMTP_PORT, FOREX_SMTP_SECURITY, FOREX_ALERT_FROM, FOREX_ALERT_TO comma-separated,
    FOREX_SMTP_CA_FILE); user and password only from the environment variables named below.
    Unconfigured (no host or no recipient), alerts go to the run log only."""

    smtp_host: str | None = Field(default=None, description="default $FOREX_SMTP_HOST; unset = run log only")
    smtp_port: int | None = Field(default=None, description="default $FOREX_SMTP_PORT, else 587/465/25 by security")
    security: str | None = Field(default=None, description="starttls, ssl or none (default starttls)")
    sender: str | None = Field(default=None, description="default $FOREX_ALERT_FROM or forex-assets@localhost")
    recipients: list[str] = Field(default_factory=list, description="default $FOREX_ALERT_TO, comma-separated")
    username_env: str = Field(default="FOREX_SMTP_USER", description="environment variable holding the user")
    password_env: str = Field(default="FOREX_SMTP_PASSWORD", description="environment variable holding the password")
    ca_file: str | None = Field(default=None, description="CA bundle for a private server certificate")
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10, description="bounded retries per alert")
    backoff_s: float = Field(default=1.0, ge=0, description="first back-off; doubles per attempt")
    ui_base_url: str = Field(default="http://127.0.0.1:3000", description="links to runs in the alerts")

    def settings(self) -> SmtpSettings | None:
        env = os.environ
        host = self.smtp_host or env.get("FOREX_SMTP_HOST")
        recipients = self.recipients or [r.strip() for r in env.get("FOREX_ALERT_TO", "").split(",") if r.strip()]
        if not host or not recipients:
            return None
        security = self.security or env.get("FOREX_SMTP_SECURITY", "starttls")
        if security not in DEFAULT_PORTS:
            raise ValueError(f"SMTP security is {security!r}; use starttls, ssl or none")
        port = self.smtp_port or int(env.get("FOREX_SMTP_PORT") or DEFAULT_PORTS[security])
        return SmtpSettings(
            host=host,
            port=port,
            sender=self.sender or env.get("FOREX_ALERT_FROM", "forex-assets@localhost"),
            recipients=tuple(recipients),
            security=security,
            username=env.get(self.username_env) or None,
            password=env.get(self.password_env) or None,
            ca_file=self.ca_file or env.get("FOREX_SMTP_CA_FILE") or None,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
        )

    def send(self, alert: Alert, log, alert_log: AlertLogSource | None = None, pair: str = PRIMARY_PAIR) -> Delivery:
        """Deliver (or log) ``alert`` and record it in ``alert_log`` (the log, or what opens it: opened here,
        so that a state database out of reach fails the recording, not the step). Never raises: an alert must
        not fail its step, which may have changed the config store already. ``pair``: the currency pair the
        alert is about, named in its subject (``[forex][EUR/CLP 7d] ...``) unless it is USD/CLP (``[forex][7d]``,
        as a single-pair instance's alerts read)."""
        alert = for_pair(alert, pair)
        try:
            settings = self.settings()
            if settings is None:
                delivery = Delivery("logged")
                log.info(f"alert (no SMTP configured, run log only): {alert.subject}\n{alert.text}")
            else:
                delivery = deliver(settings, alert)
                if delivery.status == "sent":
                    log.info(f"alert sent to {len(settings.recipients)} recipient(s): {alert.subject}")
                else:
                    log.warning(
                        f"alert not delivered after {delivery.attempts} attempt(s): {delivery.error}; "
                        f"subject: {alert.subject}"
                    )
            if alert_log is not None:
                open_alert_log(alert_log).record(alert, delivery)
            return delivery
        except Exception as error:  # noqa: BLE001 - alerting is best effort by design
            detail = str(error) if isinstance(error, ValueError) else type(error).__name__  # no secrets in texts
            log.warning(f"alert could not be sent or recorded ({detail}); subject: {alert.subject}")
            return Delivery("failed", 0, type(error).__name__)
