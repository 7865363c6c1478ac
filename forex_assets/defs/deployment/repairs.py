"""What writers of the config store repaired, said to the operator as alerts (run log, alert log and e-mail).

Any writer's open may repair the store (a forecast, a deploy, a rollback, the rollback sensor, `make run`);
there is one per run and one per sensor tick (``WorkingArea.config_store()`` keeps it for the resource
instance Dagster makes for each), and the store logs each repair (core/deployment/repair_log.py). Every
holder of an alert channel calls :func:`alert_repairs` after opening the store: it alerts what is logged and
not alerted yet, whoever repaired it, once."""

from __future__ import annotations

import logging
from datetime import datetime

from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError
from forex_assets.core.deployment.repair import repair_alert
from forex_assets.core.deployment.repair_log import RepairRecord
from forex_assets.core.forecasting.config import ConfigError
from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.resources import WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier


def alert_repairs(
    store: ConfigStore, alerts: AlertNotifier, log, working_area: WorkingArea, pair: str = PRIMARY_PAIR
) -> list[RepairRecord]:
    """One alert per horizon (and one for the whole store) listing the repairs of ``store`` not alerted yet (a
    hand edit put back, a stray file moved, a crash cleaned up, a half-made store rebuilt) and where the
    discarded content is kept; nothing when there are none. Returns the repairs alerted."""

    def send(pending: list[RepairRecord]) -> None:
        for horizon in dict.fromkeys(r.horizon for r in pending):
            alert = repair_alert(store.root, [r for r in pending if r.horizon == horizon])
            if alert is not None:  # None only for no repairs: each horizon here has some
                # the run log gets it too, with or without SMTP
                alerts.send(alert, log, lambda: working_area.alert_log(pair), pair=pair)

    return store.repair_log.alert_pending(send)


def repair_summary(
    working_area: WorkingArea, since: datetime, alerts: AlertNotifier | None = None, pair: str = PRIMARY_PAIR
) -> list[str]:
    """After a cycle (`make run`): alert the repairs not alerted yet, then the lines that list every repair of
    the store logged since ``since``, whoever made them ([] when none, or when the store cannot be opened: the
    cycle said why)."""
    try:
        store = working_area.config_store(pair)
    except (ConfigStoreError, ConfigError):
        return []
    alert_repairs(store, alerts or AlertNotifier(), logging.getLogger(__name__), working_area, pair)
    repaired = store.repair_log.since(since)
    if not repaired:
        return []
    head = (
        f"config store {store.root} repaired (the committed configurations are the live ones; alerted; "
        "`forex-assets history --kind repair` lists them):"
    )
    return [head, *(f"  {r.horizon or 'store'}: {r.text}" for r in repaired)]
