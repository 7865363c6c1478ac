"""What a writer's open of the config store repaired, said to the operator as an alert (run log and e-mail)."""

from __future__ import annotations

from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.repair import repair_alert
from forex_assets.defs.alerting.resources import AlertNotifier
from forex_assets.defs.resources import WorkingArea


def alert_repairs(store: ConfigStore, alerts: AlertNotifier, log, working_area: WorkingArea) -> None:
    """One alert listing what opening ``store`` repaired (a hand edit put back, a crash cleaned up, a
    half-made store rebuilt) and where the discarded content is kept; nothing when nothing was repaired."""
    alert = repair_alert(store.root, store.repaired)
    if alert is not None:  # the run log gets it too (AlertNotifier.send), with or without SMTP
        alerts.send(alert, log, working_area.alert_log())
