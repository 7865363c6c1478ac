"""The state keyed by currency pair: an instance written by the single-pair version (the migrations' previous
heads: forecast_history_0001, decisions_0002, alerts_0001) is upgraded in place on first use, every row kept as
USD/CLP's, and a second pair then keeps records of its own beside them (same horizon, same days), on the
embedded SQLite files and on PostgreSQL."""

from __future__ import annotations

import glob
import json
import shutil
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.config import main as alembic_main

from forex_assets.core.alerting.delivery import AlertLog, Delivery
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.pairs import DEFAULT_PAIR
from forex_assets.core.storage import tables
from forex_assets.core.storage.schema_versions import MIGRATIONS_DIR
from forex_assets_tests.test_state_storage_common import HEADS, alert, decision, forecast, sqlite_versions

PREVIOUS_HEADS = {  # part -> (its file in the embedded default, the head of the single-pair version)
    "forecast_history": ("forecast_history.sqlite", "forecast_history_0001"),
    "decisions": ("trigger_decisions.sqlite", "decisions_0002"),
    "alerts": ("alerts.sqlite", "alerts_0001"),
}
SINGLE_PAIR_ROWS = [  # what the single-pair version wrote: USD/CLP's, though nothing said so
    "INSERT INTO {s}forecast_runs VALUES ('7d', '2026-11-02', 944.5, 'v-old', 'bundled:x', '{{}}', 0.3, "
    "'2026-11-02T20:00:00+00:00')",
    *(
        f"INSERT INTO {{s}}forecast_steps VALUES ('7d', '2026-11-02', {k}, '2026-11-0{2 + k}', 930, 938, 945, 952, 960)"
        for k in (1, 2)
    ),
    "INSERT INTO {s}decisions (horizon, decided_on, optimize, fired, blocked, reasons, performance_override, "
    """recorded_at) VALUES ('7d', '2026-11-02', 1, '["drift"]', '[]', '{{"marker": "old"}}', 1, '2026-11-02')""",
    "INSERT INTO {s}optimization_verdicts (horizon, decided_on, performance_override, verdict, detail, run_id, "
    "recorded_at) VALUES ('7d', '2026-11-02', 1, 'rejected', 'old', NULL, '2026-11-03')",
    "INSERT INTO {s}alerts (sent_at, event, horizon, subject, status, attempts, error) VALUES "
    "('2026-11-03T08:00:00+00:00', 'rejected', '7d', '[forex][7d] old', 'sent', 1, '')",
]
PART_OF = {"forecast_runs": "forecast_history", "forecast_steps": "forecast_history", "decisions": "decisions"}
PART_OF |= {"optimization_verdicts": "decisions", "alerts": "alerts"}


def _postgres_url(tmp_path):
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        pytest.skip("PostgreSQL's server binaries are not installed (make system-packages)")
    from forex_assets_tests.postgres_cluster import PostgresCluster

    cluster = PostgresCluster().start()
    return cluster, cluster.new_database("single_pair")


def _single_pair_instance(root, url: str | None) -> dict[str, str]:
    """The instance as the single-pair version left it: each part at its previous head, with rows. The URL of
    each part's database (one per file in the embedded default, one for all on PostgreSQL)."""
    urls = {}
    for part, (name, head) in PREVIOUS_HEADS.items():
        part_url = url or f"sqlite:///{root / name}"
        alembic_main(["-c", str(MIGRATIONS_DIR / "alembic.ini"), "-x", f"url={part_url}", "upgrade", head])
        urls[part] = part_url
    schema = "" if url is None else "forex."
    for statement in SINGLE_PAIR_ROWS:
        table = statement.split("INTO {s}")[1].split()[0]
        engine = sa.create_engine(urls[PART_OF[table]].replace("postgresql://", "postgresql+psycopg2://"))
        with engine.begin() as db:
            db.execute(sa.text(statement.format(s=schema).replace(":", r"\:")))
        engine.dispose()
    return urls


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_single_pair_instance_is_upgraded_in_place_and_a_second_pair_keeps_its_own_records(tmp_path, backend):
    root = tmp_path / "area"
    root.mkdir()
    cluster, url = _postgres_url(tmp_path) if backend == "postgresql" else (None, None)
    try:
        _single_pair_instance(root, url)

        # a reader (the read-only commands) upgrades nothing: it reads the old tables as they are, USD/CLP's
        def reader(cls, name, pair=DEFAULT_PAIR):
            return cls(root / name, database_url=url, pair=pair, adopt_file=False, read_only=True)

        assert reader(ForecastHistory, "forecast_history.sqlite").runs("7d")["config_version"].tolist() == ["v-old"]
        assert reader(ForecastHistory, "forecast_history.sqlite", "EURCLP").runs("7d").empty
        old_log = reader(DecisionLog, "trigger_decisions.sqlite")
        assert old_log.last_optimization("7d") == date(2026, 11, 2) and len(old_log.decisions()) == 1
        assert reader(DecisionLog, "trigger_decisions.sqlite", "EURCLP").last_optimization("7d") is None
        assert [a.subject for a in reader(AlertLog, "alerts.sqlite").entries()] == ["[forex][7d] old"]
        assert reader(AlertLog, "alerts.sqlite", "EURCLP").entries() == []
        if backend == "sqlite":
            for name, head in PREVIOUS_HEADS.values():
                assert sqlite_versions(root / name) == {head}

        # first use after the upgrade: USD/CLP (the default pair) reads every row it had
        history = ForecastHistory(root / "forecast_history.sqlite", database_url=url, adopt_file=False)
        log = DecisionLog(root / "trigger_decisions.sqlite", database_url=url, adopt_file=False)
        alerts = AlertLog(root / "alerts.sqlite", database_url=url, adopt_file=False)
        assert history.pair == log.pair == alerts.pair == DEFAULT_PAIR == tables.LEGACY_PAIR
        runs = history.runs("7d")
        assert runs[["origin_date", "last_price", "config_version"]].values.tolist() == [
            [pd.Timestamp("2026-11-02"), 944.5, "v-old"]
        ]
        assert history.steps("7d")["q0_5"].tolist() == [945.0, 945.0]
        assert [d.reasons for d in log.decisions("7d")] == [{"marker": "old"}]
        assert log.last_optimization("7d") == log.last_performance_override("7d") == date(2026, 11, 2)
        assert [a.subject for a in alerts.entries("7d")] == ["[forex][7d] old"]
        if backend == "sqlite":
            for part, (name, _) in PREVIOUS_HEADS.items():
                assert sqlite_versions(root / name) == {h for h in HEADS if h.startswith(part)}

        # a second pair: nothing of USD/CLP's, and its own records on the same horizon and days
        eur = {
            "history": ForecastHistory(root / "forecast_history.sqlite", database_url=url, pair="EURCLP"),
            "log": DecisionLog(root / "trigger_decisions.sqlite", database_url=url, pair="EURCLP"),
            "alerts": AlertLog(root / "alerts.sqlite", database_url=url, pair="EURCLP"),
        }
        assert eur["history"].runs().empty and eur["log"].decisions() == [] and eur["alerts"].entries() == []
        assert eur["log"].last_optimization("7d") is None
        eur["history"].record(forecast("2026-11-02", version="v-eur", level=1010.0))
        eur["log"].record(decision("eur", date(2026, 11, 9), optimize=True))
        eur["log"].record_verdict("7d", date(2026, 11, 9), "approved")
        eur["alerts"].record(alert("eur"), Delivery("logged"))

        assert eur["history"].runs("7d")["config_version"].tolist() == ["v-eur"]
        assert eur["history"].steps("7d")["q0_5"].tolist() == [1010.0] * 5
        assert eur["log"].last_optimization("7d") == date(2026, 11, 9)
        assert eur["log"].last_performance_override("7d") is None
        assert [a.subject for a in eur["alerts"].entries()] == ["[forex][7d] eur"]
        # USD/CLP's records unchanged by the other pair's writes of the same keys
        assert history.runs("7d")["config_version"].tolist() == ["v-old"]
        assert history.steps("7d")["q0_5"].tolist() == [945.0, 945.0]
        assert log.last_optimization("7d") == date(2026, 11, 2)
        assert [a.subject for a in alerts.entries()] == ["[forex][7d] old"]
    finally:
        if cluster is not None:
            cluster.stop()


# ------------------------------------------------------------------------------ the working area and the CLI


def test_each_pair_has_its_own_config_store_and_the_read_only_commands_read_the_pair_asked(tmp_path):
    from forex_assets.core.deployment.config_store import ConfigStore
    from forex_assets.core.working_area import SEED_CONFIGS_DIR, WorkingAreaLayout
    from forex_assets.defs.resources import WorkingArea
    from forex_assets_tests.cli_home import area, cli, instance_home

    home = instance_home(tmp_path)
    working_area = WorkingArea(path=str(area(home)))
    layout = WorkingAreaLayout.in_directory(area(home))
    assert layout.config_store_for("USDCLP") == area(home) / "config_store"  # where a single-pair instance has it
    assert layout.config_store_for("EURCLP") == area(home) / "config_store_EURCLP"
    assert layout.reports_for("7d", "EURCLP") == area(home) / "reports" / "EURCLP" / "7d"
    assert layout.reports_for("7d") == area(home) / "reports" / "7d"

    usd, eur = working_area.config_store("USDCLP"), working_area.config_store("EURCLP")
    assert working_area.config_store("EURCLP") is eur  # opened once per resource instance, per pair
    seeded = eur.current_version("7d")
    changed = eur.read("7d").model_copy(update={"context_length": eur.read("7d").context_length + 20})
    deployed = eur.deploy(changed, reason="EUR/CLP only")
    assert [v.id for v in eur.history("7d")][:2] == [deployed.id, seeded.id]
    assert [v.id for v in usd.history("7d")] == [usd.current_version("7d").id]  # USD/CLP's history untouched
    assert usd.read("7d") == ConfigStore(area(home) / "config_store", seed_dir=SEED_CONFIGS_DIR).read("7d")

    working_area.forecast_history("USDCLP").record(forecast("2026-11-02", version="v-usd", level=944.0))
    working_area.forecast_history("EURCLP").record(forecast("2026-11-02", version="v-eur", level=1010.0))
    working_area.decision_log("EURCLP").record(decision("eur", date(2026, 11, 2), optimize=True))

    eur_rows = cli(home, "forecasts", "--horizon", "7d", "--pair", "eur/clp", "--format", "json")
    assert eur_rows.returncode == 0, eur_rows.stderr
    assert {row["config_version"] for row in json.loads(eur_rows.stdout)} == {"v-eur"}
    assert {row["q0_5"] for row in json.loads(eur_rows.stdout)} == {1010.0}
    usd_rows = cli(home, "forecasts", "--horizon", "7d", "--format", "json")
    assert {row["config_version"] for row in json.loads(usd_rows.stdout)} == {"v-usd"}

    eur_history = cli(home, "history", "--horizon", "7d", "--pair", "EURCLP")
    assert eur_history.returncode == 0, eur_history.stderr
    assert eur_history.stdout.startswith("EUR/CLP 7d history") and "EUR/CLP only" in eur_history.stdout
    usd_history = cli(home, "history", "--horizon", "7d")
    assert usd_history.returncode == 0 and "EUR/CLP only" not in usd_history.stdout

    missing = cli(home, "history", "--horizon", "7d", "--pair", "USDBRL")
    assert missing.returncode == 2 and "no forex_assets config store for USDBRL at " in missing.stderr
    unknown = cli(home, "forecasts", "--horizon", "7d", "--pair", "XXXYYY")
    assert unknown.returncode == 2 and "'XXXYYY' is not a declared pair (USDCLP, EURCLP, USDBRL" in unknown.stderr

    # a pairs file of one pair ($FOREX_PAIRS_FILE): that pair is the default
    only_eur = tmp_path / "pairs.json"
    only_eur.write_text(json.dumps({"pairs": [{"code": "EURCLP", "csv_value_column": "eurclp"}]}))
    default = cli(home, "forecasts", "--horizon", "7d", "--format", "json", FOREX_PAIRS_FILE=str(only_eur))
    assert default.returncode == 0, default.stderr
    assert {row["config_version"] for row in json.loads(default.stdout)} == {"v-eur"}
    refused = cli(home, "forecasts", "--horizon", "7d", "--pair", "USDCLP", FOREX_PAIRS_FILE=str(only_eur))
    assert refused.returncode == 2 and "'USDCLP' is not a declared pair (EURCLP; the pairs file)" in refused.stderr


def test_status_without_a_pair_is_one_pair_by_horizon_grid_of_the_pairs_that_have_run(tmp_path):
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from forex_assets.core.alerting.messages import Alert, for_pair
    from forex_assets.core.horizons import HORIZONS
    from forex_assets.core.working_area import SEED_CONFIGS_DIR
    from forex_assets.defs.resources import WorkingArea
    from forex_assets_tests.cli_home import area, cli, instance_home

    home = instance_home(tmp_path)
    working_area = WorkingArea(path=str(area(home)))
    usd, eur = working_area.config_store("USDCLP"), working_area.config_store("EURCLP")
    deployed = eur.deploy(eur.read("30d").model_copy(update={"context_length": 300}), reason="EUR/CLP 30d tuned")
    alert = for_pair(Alert("drift", "30d", "[forex][30d] drift HIGH", "drift", "<p>drift</p>"), "EURCLP")
    working_area.alert_log("EURCLP").record(alert, Delivery("sent", 1))
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for partition, severity in (("30d|EURCLP", "HIGH"), ("30d|USDCLP", "LOW")):
            metadata = {"severity": severity, "as_of": "2026-12-04"}
            event = dg.AssetMaterialization("drift_report", partition=partition, metadata=metadata)
            instance.report_runless_asset_event(event)

    grid = cli(home, "status")
    assert grid.returncode == 0, grid.stderr
    header, rows = grid.stdout.splitlines()[2], [line.split() for line in grid.stdout.splitlines()[4:12]]
    assert header.split()[:2] == ["pair", "horizon"]
    assert [(row[0], row[1]) for row in rows] == [(p, h) for p in ("USD/CLP", "EUR/CLP") for h in HORIZONS]
    by_series = {(row[0], row[1]): " ".join(row) for row in rows}
    assert deployed.id in by_series["EUR/CLP", "30d"] and usd.current_version("30d").id in by_series["USD/CLP", "30d"]
    assert "HIGH (2026-12-04)" in by_series["EUR/CLP", "30d"] and "LOW (2026-12-04)" in by_series["USD/CLP", "30d"]
    assert by_series["EUR/CLP", "30d"].endswith("drift HIGH [sent, 0 min ago]")  # the subject without its prefix
    assert by_series["USD/CLP", "30d"].endswith("none") and by_series["EUR/CLP", "7d"].endswith("none")
    declared = [entry["code"] for entry in json.loads((SEED_CONFIGS_DIR / "pairs.json").read_text())["pairs"]]
    rest = ", ".join(f"{code[:3]}/{code[3:]}" for code in declared if code not in ("USDCLP", "EURCLP"))
    assert grid.stdout.rstrip().endswith(f"not run on this instance yet: {rest}")

    one = cli(home, "status", "--pair", "EURCLP")  # one pair: its table as a single-pair instance's, no pair column
    assert one.returncode == 0, one.stderr
    lines = one.stdout.splitlines()
    assert lines[0].startswith("forex_assets status (EUR/CLP, ") and lines[2].split()[0] == "horizon"
    assert [line.split()[0] for line in lines[4:8]] == list(HORIZONS) and deployed.id in lines[6]
