import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError
from forex_assets.core.deployment.history import CommitRecord, message_fields, rollback_target, trailers
from forex_assets.core.deployment.repair import Damage
from forex_assets.core.forecasting.config import ConfigError, ValidationBaseline, parse_config
from forex_assets.core.monitoring.optimization_history import store_events
from forex_assets.core.working_area import SEED_CONFIGS_DIR


def _config(context_length: int, horizon: str = "7d"):
    return parse_config(
        {
            "horizon": horizon,
            "checkpoint": "bundled:usdclp-chronos2-mini",
            "family": "chronos2",
            "context_length": context_length,
        }
    )


@pytest.fixture
def store(tmp_path):
    return ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)


def test_store_is_seeded_from_configs_and_is_a_git_repository(store):
    assert (store.root / ".git").is_dir()
    for horizon in ("7d", "15d", "30d", "90d"):
        assert store.read(horizon) == parse_config(
            json.loads((SEED_CONFIGS_DIR / f"chronos_{horizon}.json").read_text())
        )
    assert len(store.history("7d")) == 1


def test_deploy_writes_backs_up_commits_and_versions(store):
    before = store.current_version("7d")
    version = store.deploy(_config(90), reason="drift HIGH", metrics={"rmse_clp": 8.25})
    assert store.read("7d").context_length == 90
    assert store.read("7d", before.id).context_length == 180
    assert version.id.endswith(version.commit[:8]) and version.id[:8].isdigit()
    assert version.summary == "[7d] deploy: drift HIGH"
    assert '"rmse_clp": 8.25' in version.message
    assert [v.commit for v in store.history("7d")] == [version.commit, before.commit]
    backups = list((store.root / "backups").glob("chronos_7d_*.json"))
    assert len(backups) == 1 and json.loads(backups[0].read_text())["context_length"] == 180
    assert '-  "context_length": 180' in store.diff("7d", before.id, version.id)
    assert not store.repo.is_dirty(untracked_files=True)


def test_rollback_to_previous_and_to_a_named_version(store):
    first = store.current_version("7d")
    store.deploy(_config(90), reason="a")
    store.deploy(_config(270), reason="b")
    back = store.rollback("7d", reason="inference time 4x baseline")
    assert store.read("7d").context_length == 90
    assert back.summary.startswith("[7d] rollback: inference time 4x baseline (from ")
    store.rollback("7d", to_version=first.id, reason="operator")
    assert store.read("7d").context_length == 180
    assert len(store.history("7d")) == 5


def test_unknown_version_or_horizon_changes_nothing(store):
    head = store.repo.head.commit.hexsha
    with pytest.raises(ConfigStoreError, match="unknown configuration version 'nope'"):
        store.rollback("7d", to_version="nope")
    with pytest.raises(ConfigStoreError, match="unknown horizon '8d'"):
        store.rollback("8d")
    with pytest.raises(ConfigStoreError, match="no previous version"):
        store.rollback("30d")
    assert store.repo.head.commit.hexsha == head


def test_corrupt_json_is_a_clear_error_and_deploy_and_rollback_still_work(store):
    store.deploy(_config(90), reason="a")
    store.path("7d").write_text('{"horizon": "7d", "context_length": ')
    with pytest.raises(ConfigError, match=r"chronos_7d.json: not valid JSON \(line 1"):
        store.read("7d")
    store.deploy(_config(270), reason="after corruption")
    assert store.read("7d").context_length == 270
    store.rollback("7d", reason="back")
    assert store.read("7d").context_length == 90


def test_opening_repairs_what_a_crash_left_and_keeps_what_it_discards(tmp_path):
    store = ConfigStore(tmp_path / "s", seed_dir=SEED_CONFIGS_DIR)
    head = store.repo.head.commit.hexsha
    (store.root / ".chronos_7d.json.abc.tmp").write_text("{partial")
    edited = _config(365, "15d").to_json()
    store.path("15d").write_text(edited)  # written, never committed (a killed deploy, or a hand edit)
    store.path("30d").write_text("garbage")  # half-written and invalid
    (store.root / ".git" / "index.lock").write_text("")
    reopened = ConfigStore(tmp_path / "s")
    repairs = {r.split()[0] + " " + r.split()[1]: r for r in reopened.repairs}
    assert set(repairs) == {"moved stray", "removed stale", "restored chronos_15d.json", "restored chronos_30d.json"}
    assert "differed from the committed configuration" in repairs["restored chronos_15d.json"]
    assert "not a valid configuration" in repairs["restored chronos_30d.json"]
    # the committed configuration stays the live one: nothing was committed by the repair
    assert reopened.repo.head.commit.hexsha == head
    assert reopened.read("15d").context_length == 180 and reopened.read("30d").context_length == 365
    # ... and nothing is lost: every discarded file is kept under backups/, named in the repair
    kept = {r.horizon: reopened.root / r.kept for r in reopened.repaired if r.kept}
    assert kept["15d"].read_text() == edited and kept["30d"].read_text() == "garbage"
    assert kept[None].read_text() == "{partial"
    assert kept["15d"].name.startswith("chronos_15d.json.discarded-2")
    assert not reopened.repo.is_dirty(untracked_files=True)
    assert ConfigStore(tmp_path / "s").repairs == []


DEPLOY_FOREVER = """
import sys
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.deployment.config_store import ConfigStore
store = ConfigStore(sys.argv[1])
base = {"horizon": "7d", "checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2"}
print("ready", flush=True)
i = 0
while True:
    store.deploy(parse_config(base | {"context_length": 90 if i % 2 else 270}), reason=f"deploy {i}")
    i += 1
"""


def test_kill_9_in_the_middle_of_deploys_never_leaves_a_broken_store(tmp_path):
    root = tmp_path / "store"
    ConfigStore(root, seed_dir=SEED_CONFIGS_DIR)
    valid = {90, 180, 270}
    rng = random.Random(20261126)
    repaired = 0
    for trial in range(50):
        child = subprocess.Popen(
            [sys.executable, "-c", DEPLOY_FOREVER, str(root)], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        os.killpg(child.pid, signal.SIGKILL)  # the writer and any git it is running, as in a crash
        child.wait()
        store = ConfigStore(root)  # opens and repairs
        repaired += bool(store.repairs)
        raw = json.loads(store.path("7d").read_text())  # always parses
        assert raw["context_length"] in valid, trial
        assert store.read("7d", store.current_version("7d").id) == store.read("7d")
        assert not store.repo.is_dirty(untracked_files=True), (trial, store.repairs)
    assert repaired >= 1  # some kills did land in the middle of a deploy
    fsck = subprocess.run(["git", "fsck", "--full"], cwd=root, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "error" not in fsck.stderr.lower() and "missing" not in fsck.stdout.lower()


DEPLOY_N = """
import sys
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.deployment.config_store import ConfigStore
store = ConfigStore(sys.argv[1])
base = {"horizon": "7d", "checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2"}
offset = int(sys.argv[2])
for i in range(10):
    store.deploy(parse_config(base | {"context_length": offset + i}), reason=f"writer {offset} deploy {i}")
"""


def test_two_processes_deploying_at_once_lose_nothing(tmp_path):
    root = tmp_path / "store"
    ConfigStore(root, seed_dir=SEED_CONFIGS_DIR)
    writers = [subprocess.Popen([sys.executable, "-c", DEPLOY_N, str(root), str(o)]) for o in (100, 200)]
    assert [w.wait() for w in writers] == [0, 0]
    store = ConfigStore(root)
    history = [v.summary for v in reversed(store.history("7d"))][1:]
    assert len(history) == 20
    for offset in (100, 200):
        mine = [h for h in history if h.startswith(f"[7d] deploy: writer {offset} ")]
        assert mine == [f"[7d] deploy: writer {offset} deploy {i}" for i in range(10)]  # in order
    last = store.history("7d")[0]
    assert store.read("7d").context_length == store.read("7d", last.id).context_length
    assert not store.repo.is_dirty(untracked_files=True)


BASELINE = ValidationBaseline(rmse_clp=8.1, inference_seconds=0.02, mape_pct=0.7, validated_on="2026-11-20")


def _git(root, *args):
    identity = ["-c", "user.name=an earlier version", "-c", "user.email=old@localhost"]
    return subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True, text=True).stdout


def test_deploy_and_rollback_keep_the_history_as_git_trailers(store):
    seed = store.current_version("7d")
    config = _config(90).model_copy(update={"baseline": BASELINE})
    validation = {"rmse_clp_before": 9.0, "rmse_clp_after": 8.1, "validation_window": ["2026-10-01", "2026-11-20"]}
    deployed = store.deploy(config, reason="validation passed", metrics={"rmse_clp": 8.25}, validation=validation)
    record = deployed.record
    assert record.structured and (record.action, record.horizon) == ("deploy", "7d")
    assert record.candidate_metrics == {"rmse_clp": 8.25} and record.validation == validation
    assert record.baseline == json.loads(BASELINE.model_dump_json(exclude_none=True))
    assert message_fields(deployed.message) == {
        "candidate metrics": {"rmse_clp": 8.25},
        "validation metrics": validation,
        "validation baseline": record.baseline,
    }
    # ordinary git trailers: git's own parser reads what history.trailers reads
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=deployed.message, capture_output=True, text=True, check=True
    ).stdout
    assert dict(line.split(": ", 1) for line in parsed.splitlines()) == trailers(deployed.message)
    logged = _git(store.root, "log", "-1", "--format=%(trailers:key=Forex-Action,valueonly)", deployed.commit)
    assert logged.strip() == "deploy"

    back = store.rollback("7d", reason="inference time 4x baseline")
    assert back.summary == f"[7d] rollback: inference time 4x baseline (from {deployed.id} to {seed.id})"
    assert (back.record.action, back.record.rolled_back_from, back.record.restored) == (
        "rollback",
        deployed.id,
        seed.id,
    )
    assert rollback_target(back.message) == rollback_target(back.summary) == seed.id
    assert rollback_target(deployed.message) is None
    assert [e.kind for e in store_events(store, "7d")] == ["seed", "deploy", "rollback"]


def _old_message(horizon, action, reason, config, metrics, validation=None):
    """The commit message as the store wrote it before the trailers (a copy of the old ConfigStore._message)."""
    lines = [f"[{horizon}] {action}: {reason}", ""]
    if metrics:
        lines.append("candidate metrics: " + json.dumps(metrics, sort_keys=True, default=float))
    if validation:
        lines.append("validation metrics: " + json.dumps(validation, sort_keys=True, default=float))
    if config.baseline is not None:
        lines.append("validation baseline: " + config.baseline.model_dump_json(exclude_none=True))
    return "\n".join(lines).strip() + "\n"


def test_a_store_written_in_the_earlier_message_format_still_parses(tmp_path):
    # a store made, deployed to and rolled back by an earlier version of forex_assets: free-text messages
    root = tmp_path / "store"
    root.mkdir()
    _git(root, "init", "--quiet")
    (root / ".gitignore").write_text("backups/\n.locks/\n.*.tmp\n")
    seeds = [f"chronos_{h}.json" for h in ("7d", "15d", "30d", "90d")]
    for name in seeds:
        (root / name).write_text((SEED_CONFIGS_DIR / name).read_text())
    _git(root, "add", "--", ".gitignore", *seeds)
    _git(root, "commit", "--quiet", "-m", f"initialise configuration store from {SEED_CONFIGS_DIR}")
    seed = ConfigStore(root).current_version("7d")
    assert seed.record == CommitRecord(action="initialise", horizon=None)
    config = _config(90).model_copy(update={"baseline": BASELINE})
    (root / "chronos_7d.json").write_text(config.to_json())
    message = _old_message("7d", "deploy", "validation passed", config, {"rmse_clp": 8.25}, {"rmse_clp_after": 8.1})
    _git(root, "commit", "--quiet", "-m", message, "--", "chronos_7d.json")
    store = ConfigStore(root)
    deployed = store.current_version("7d")
    assert not trailers(deployed.message)
    record = deployed.record
    assert not record.structured and (record.action, record.horizon) == ("deploy", "7d")
    assert record.candidate_metrics == {"rmse_clp": 8.25} and record.validation == {"rmse_clp_after": 8.1}
    assert record.baseline["rmse_clp"] == 8.1
    assert set(message_fields(deployed.message)) == {"candidate metrics", "validation metrics", "validation baseline"}

    (root / "chronos_7d.json").write_text(store.read("7d", seed.id).to_json())
    old_rollback = _old_message("7d", "rollback", f"operator (from {deployed.id} to {seed.id})", _config(180), None)
    _git(root, "commit", "--quiet", "-m", old_rollback, "--", "chronos_7d.json")
    store = ConfigStore(root)
    assert store.repairs == []
    rolled = store.current_version("7d")
    assert (rolled.record.action, rolled.record.rolled_back_from, rolled.record.restored) == (
        "rollback",
        deployed.id,
        seed.id,
    )
    assert rollback_target(rolled.summary) == rollback_target(rolled.message) == seed.id
    events = store_events(store, "7d")
    assert [e.kind for e in events] == ["seed", "deploy", "rollback"]
    assert events[1].details["validation"] == {"rmse_clp_after": 8.1} and events[2].details["restored"] == seed.id

    # the new format goes on on top of the old one
    again = store.rollback("7d", reason="back to the old deploy")
    assert again.record.structured and again.record.restored == deployed.id
    assert store.read("7d").context_length == 90
    assert [v.record.structured for v in store.history("7d")] == [True, False, False, False]


def test_a_read_only_open_writes_nothing_and_a_writers_open_repairs(tmp_path):
    with pytest.raises(ConfigStoreError, match="no configuration store here"):
        ConfigStore(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()
    root = tmp_path / "s"
    ConfigStore(root, seed_dir=SEED_CONFIGS_DIR)
    (root / ".chronos_7d.json.abc.tmp").write_text("{partial")
    (root / "chronos_15d.json").write_text(_config(365, "15d").to_json())
    (root / "chronos_30d.json").write_text("garbage")
    (root / ".git" / "index.lock").write_text("")

    def snapshot():
        return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    before = snapshot()
    reader = ConfigStore(root, read_only=True)
    assert [(f.damage, f.path) for f in reader.damage] == [
        (Damage.STRAY_TEMP_FILE, ".chronos_7d.json.abc.tmp"),
        (Damage.STALE_GIT_LOCK, ".git/index.lock"),
        (Damage.UNCOMMITTED, "chronos_15d.json"),
        (Damage.INVALID, "chronos_30d.json"),
    ]
    assert reader.repairs == [] and reader.read("7d").context_length == 180
    with pytest.raises(ConfigStoreError, match="opened read-only"):
        reader.deploy(_config(90), reason="refused")
    with pytest.raises(ConfigStoreError, match="opened read-only"):
        reader.rollback("7d")
    assert snapshot() == before
    writer = ConfigStore(root)
    assert len(writer.repairs) == 4 and ConfigStore(root, read_only=True).damage == []


def test_threads_sharing_a_store_deploy_one_at_a_time(store):
    def deploy(offset):
        for i in range(5):
            store.deploy(_config(offset + i), reason=f"thread {offset} deploy {i}")

    threads = [threading.Thread(target=deploy, args=(o,)) for o in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.history("7d")) == 11
    assert store.read("7d").context_length == store.read("7d", store.current_version("7d").id).context_length
    assert not store.repo.is_dirty(untracked_files=True)


def test_a_repair_commit_of_an_older_store_is_labelled_repair_in_the_history(store):
    """Stores written before repairs stopped committing carry "[h] repair: ..." commits: history says so."""
    import git

    from forex_assets.core.deployment.history import commit_message

    path = store.root / "chronos_7d.json"
    path.write_text(path.read_text().replace('"context_length": 180', '"context_length": 90'))
    repo = git.Repo(store.root)
    repo.index.add([path.name])
    repo.index.commit(commit_message("repair", "restored after an interrupted write", "7d"))
    kinds = [e.kind for e in store_events(ConfigStore(store.root, read_only=True), "7d")]
    assert kinds == ["seed", "repair"]
