"""The config store without a shared filesystem (issue 15, item 3): a git remote is the source of truth, every
process keeps a clone. Real bare remotes (``git init --bare`` in tmp) and real clones; racing writers are threads,
each with its own ConfigStore on its own clone (as two machines would be)."""

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from forex_assets.core.deployment.config_store import (
    ConfigStore,
    ConfigStoreError,
    RemoteError,
    StaleValidationError,
    UnusableStoreError,
)
from forex_assets.core.deployment.remote import TRACKING, Remote
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.working_area import SEED_CONFIGS_DIR

ROUNDS = 20  # deploys per writer in the races


def _config(context_length: int, horizon: str = "7d"):
    return parse_config(
        {
            "horizon": horizon,
            "checkpoint": "bundled:usdclp-chronos2-mini",
            "family": "chronos2",
            "context_length": context_length,
        }
    )


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def _bare(path: Path) -> Path:
    """A bare remote that refuses any rewrite of its history, as a git server would be configured."""
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    _git(path, "config", "receive.denyNonFastForwards", "true")
    _git(path, "config", "receive.denyDeletes", "true")
    return path


def _remote_log(remote: Path) -> list[tuple[str, ...]]:
    """The remote's main, newest first: (commit, parents...) per commit."""
    return [tuple(line.split()) for line in _git(remote, "rev-list", "--parents", "main").splitlines()]


def _assert_linear(remote: Path) -> list[str]:
    log = _remote_log(remote)
    assert all(len(entry) <= 2 for entry in log), "a merge commit on the remote"
    assert all(entry[1] == log[i + 1][0] for i, entry in enumerate(log[:-1]))
    return [entry[0] for entry in log]


def _clean(store: ConfigStore) -> bool:
    return not store.repo.is_dirty(untracked_files=True) and store.repo.head.commit.hexsha == _git(
        store.root, "rev-parse", TRACKING
    )


@pytest.fixture
def remote(tmp_path):
    return _bare(tmp_path / "remote.git")


def _clone(tmp_path: Path, name: str, remote: Path) -> ConfigStore:
    return ConfigStore(tmp_path / name, seed_dir=SEED_CONFIGS_DIR, remote=str(remote))


# ------------------------------------------------------------------------------------------ without a remote


def test_without_a_remote_the_store_is_what_it_was(tmp_path):
    store = ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)
    version = store.deploy(_config(90), reason="by hand")
    assert store.remote is None and store.warnings == [] and store.refresh() == []
    assert _git(store.root, "remote") == "" and _git(store.root, "for-each-ref", "refs/remotes") == ""
    assert store.current_version("7d") == version and store.read("7d").context_length == 90


# ------------------------------------------------------------------------------------------ creation


def test_the_first_store_seeds_the_empty_remote_and_the_next_ones_clone_it(tmp_path, remote):
    first = _clone(tmp_path, "a", remote)
    assert first.created and first.repairs == [] and first.warnings == []
    assert _remote_log(remote) == [(first.repo.head.commit.hexsha,)]  # the seeds' commit, pushed
    second = _clone(tmp_path, "b", remote)
    assert second.created and second.repo.head.commit == first.repo.head.commit  # a clone: the same history
    for horizon in ("7d", "15d", "30d", "90d"):
        assert second.current_version(horizon) == first.current_version(horizon)
        assert second.read(horizon) == first.read(horizon)
    assert _git(second.root, "remote", "get-url", "origin") == str(remote)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.lock", ".b.lock", "a", "b", "remote.git"]
    assert not _clone(tmp_path, "b", remote).created  # opened again: nothing to make


def test_two_stores_made_at_once_on_an_empty_remote_end_with_one_history(tmp_path, remote, monkeypatch):
    first = _clone(tmp_path, "a", remote)
    monkeypatch.setattr(Remote, "heads", lambda self: {})  # the second saw the remote empty, then lost the push
    second = _clone(tmp_path, "b", remote)
    assert second.created and second.repo.head.commit == first.repo.head.commit
    assert len(_remote_log(remote)) == 1 and not [p for p in tmp_path.iterdir() if ".new-" in p.name]


def test_creating_with_an_unusable_remote_is_refused_and_makes_nothing(tmp_path, remote):
    # a mistyped path, or a remote nobody made yet: refused with the commands that make it (seeding an empty
    # remote made on the spot would put production back on the seed configurations)
    nowhere = tmp_path / "nowhere.git"
    with pytest.raises(UnusableStoreError) as missing:
        _clone(tmp_path, "a", nowhere)
    assert str(missing.value).startswith(f"{nowhere}: no git repository there; nothing was created. A new ")
    assert f"`git -C <that store> push {nowhere} HEAD:main`" in str(missing.value) and not nowhere.exists()
    (tmp_path / "not-git").mkdir()
    with pytest.raises(RemoteError) as unreadable:
        _clone(tmp_path, "a", tmp_path / "not-git")
    assert str(unreadable.value).startswith(f"{tmp_path / 'not-git'}: git ls-remote failed (fatal: ")
    other = _bare(tmp_path / "other.git")
    seeded = ConfigStore(tmp_path / "seeded", seed_dir=SEED_CONFIGS_DIR)
    _git(seeded.root, "push", "--quiet", str(other), "HEAD:refs/heads/trunk")
    with pytest.raises(UnusableStoreError) as foreign:
        _clone(tmp_path, "a", other)
    assert str(foreign.value) == (
        f"{other}: the remote has branches (trunk) but no main, the branch of a configuration store; nothing was "
        "created: point the store at another remote, or push the store's history to main there"
    )
    assert not (tmp_path / "a").exists() and not [p for p in tmp_path.iterdir() if ".new-" in p.name]


def test_a_local_store_attached_to_an_empty_remote_pushes_its_history(tmp_path, remote):
    local = ConfigStore(tmp_path / "a", seed_dir=SEED_CONFIGS_DIR)
    deployed = local.deploy(_config(90), reason="before the remote")
    attached = ConfigStore(tmp_path / "a", remote=str(remote))
    assert attached.repairs == [] and attached.current_version("7d") == deployed
    assert _assert_linear(remote)[0] == deployed.commit
    assert _clone(tmp_path, "b", remote).current_version("7d") == deployed


def test_a_local_store_with_a_history_unrelated_to_the_remote_is_refused(tmp_path, remote):
    _clone(tmp_path, "a", remote).deploy(_config(90), reason="on the remote")
    seeds = tmp_path / "other_seeds"  # other seeds: not the remote's first commit, whenever it was made
    shutil.copytree(SEED_CONFIGS_DIR, seeds)
    (seeds / "chronos_7d.json").write_text(_config(64).to_json())
    other = ConfigStore(tmp_path / "other", seed_dir=seeds)  # made alone, never attached
    head = other.repo.head.commit.hexsha
    with pytest.raises(UnusableStoreError) as refused:
        ConfigStore(tmp_path / "other", remote=str(remote))
    assert str(refused.value) == (
        f"{other.root}: its history is unrelated to that of the remote {remote} (another store's); nothing was "
        "changed: move this directory aside (a writer's open then clones the remote), or configure the remote "
        "this store belongs to"
    )
    assert other.repo.head.commit.hexsha == head and not other.repo.is_dirty(untracked_files=True)


def test_a_half_made_store_is_rebuilt_from_the_remote_and_kept_aside(tmp_path, remote):
    deployed = _clone(tmp_path, "a", remote).deploy(_config(90), reason="on the remote")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "chronos_7d.json").write_text("{}")  # files without .git: an interrupted set-up
    store = _clone(tmp_path, "b", remote)
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("b.broken-")]
    assert store.created and store.repairs == [
        f"rebuilt the configuration store from the remote {remote}: it is not a git repository (no .git); what "
        f"was there is kept in {aside}"
    ]
    assert store.current_version("7d") == deployed and (aside / "chronos_7d.json").read_text() == "{}"


# ------------------------------------------------------------------------------------------ one push refused


def _first_push_after(store: ConfigStore, monkeypatch, other_writer) -> None:
    """Run ``other_writer`` once, just before ``store`` pushes for the first time (after its fetch and its
    decision): the race of two writers, made deterministic."""
    push, done = store.remote.push, []

    def racing(*args, **kwargs):
        if not done:
            done.append(other_writer())
        return push(*args, **kwargs)

    monkeypatch.setattr(store.remote, "push", racing)


def test_a_push_refused_because_another_horizon_moved_is_made_again_on_top(tmp_path, remote, monkeypatch):
    a, b = _clone(tmp_path, "a", remote), _clone(tmp_path, "b", remote)
    seed_15d = b.current_version("15d")
    _first_push_after(b, monkeypatch, lambda: a.deploy(_config(90, "7d"), reason="a, 7d"))
    version = b.deploy(_config(120, "15d"), reason="b, 15d", expected_version=seed_15d.id)
    commits = _assert_linear(remote)
    a_7d = a.current_version("7d")
    assert commits == [version.commit, a_7d.commit, seed_15d.commit]  # both kept, b's on top of a's
    assert version.summary == "[15d] deploy: b, 15d" and _clean(b)
    assert (b.read("7d").context_length, b.read("15d").context_length) == (90, 120)  # b's clone has both
    assert len(list((b.root / "backups").glob("chronos_15d_*.json"))) == 1  # one backup: no trace of the retry


def test_a_push_refused_because_the_same_horizon_moved_is_refused_and_leaves_nothing(tmp_path, remote, monkeypatch):
    a, b = _clone(tmp_path, "a", remote), _clone(tmp_path, "b", remote)
    seed = b.current_version("7d")
    _first_push_after(b, monkeypatch, lambda: a.deploy(_config(90), reason="a, 7d"))
    with pytest.raises(StaleValidationError) as validated:  # validated against the seed, which a replaced
        b.deploy(_config(120), reason="b, 7d", expected_version=seed.id)
    a_7d = a.current_version("7d")
    assert str(validated.value) == (
        f"7d: deploy refused: the candidate was validated against version {seed.id}, but the deployed version is "
        f"now {a_7d.id} ([7d] deploy: a, 7d); deploying would undo that change unvalidated: validate the candidate "
        "again against the deployed version"
    )
    assert _assert_linear(remote) == [a_7d.commit, seed.commit] and _clean(b)
    assert b.read("7d").context_length == 90 and not (b.root / "backups").exists()

    # a deploy by hand (no validated version) and a rollback are refused alike when their horizon moved
    for name, change in {
        "deploy": lambda: b.deploy(_config(150), reason="b, by hand"),
        "rollback": lambda: b.rollback("7d", reason="b, operator"),
    }.items():
        decided_against = b.current_version("7d")
        _first_push_after(b, monkeypatch, lambda n=name: a.deploy(_config(200 + len(n)), reason=f"a, before {n}"))
        with pytest.raises(StaleValidationError) as moved:
            change()
        now = a.current_version("7d")
        assert str(moved.value) == (
            f"7d: {name} refused: while it was being pushed to {remote}, another writer changed 7d there: the "
            f"{name} was decided against version {decided_against.id}, but the deployed version is now {now.id} "
            f"({now.summary}); it would undo that change unexamined: nothing was changed; decide again against "
            "the deployed version"
        )
        assert _assert_linear(remote)[0] == now.commit and _clean(b) and not (b.root / "backups").exists()


def test_an_unreachable_remote_is_a_warning_for_reading_and_a_refusal_for_writing(tmp_path, remote):
    a = _clone(tmp_path, "a", remote)
    version = a.deploy(_config(90), reason="a")
    moved = remote.rename(tmp_path / "moved.git")  # the volume is gone
    writer = ConfigStore(a.root, remote=str(remote))
    [warning] = writer.warnings
    assert warning.startswith(f"{remote}: git fetch failed (fatal: ") and warning.endswith(
        f"; the local clone {a.root} is read as it is (version {version.id}), and deploys and rollbacks are "
        "refused until the remote can be reached"
    )
    assert writer.read("7d").context_length == 90 and writer.current_version("7d") == version
    with pytest.raises(RemoteError) as refused:
        writer.deploy(_config(120), reason="while unreachable")
    assert str(refused.value).startswith(f"7d: deploy not done: {remote}: git fetch failed (fatal: ")
    assert str(refused.value).endswith("; nothing was changed")
    assert writer.read("7d").context_length == 90 and not writer.repo.is_dirty(untracked_files=True)
    reader = ConfigStore(a.root, read_only=True, remote=str(remote))
    assert reader.warnings[0].endswith("; reading the last fetched state") and reader.current_version("7d") == version
    moved.rename(remote)
    assert writer.deploy(_config(120), reason="reachable again").commit == _remote_log(remote)[0][0]


def test_a_push_whose_outcome_is_unknown_says_so_and_changes_nothing_locally(tmp_path, remote, monkeypatch):
    store = _clone(tmp_path, "a", remote)
    before = store.current_version("7d")
    run = store.remote._git

    def connection_lost_at_push(cwd, *args):
        if args[0] == "push":
            remote.rename(tmp_path / "gone.git")
        return run(cwd, *args)

    monkeypatch.setattr(store.remote, "_git", connection_lost_at_push)
    with pytest.raises(RemoteError) as uncertain:
        store.deploy(_config(90), reason="uncertain")
    text = str(uncertain.value)
    assert text.startswith(f"7d: deploy uncertain: {remote}: git push failed (fatal: ")
    assert f", and then {remote}: git fetch failed (fatal: " in text
    assert text.endswith(" is deployed") and "the next open of the store shows whether version " in text
    assert store.current_version("7d") == before and _clean(store) and not (store.root / "backups").exists()


# ------------------------------------------------------------------------------------------ readers


def test_a_reader_clone_sees_the_latest_deployed_version_after_fetch(tmp_path, remote):
    writer = _clone(tmp_path, "writer", remote)
    reader_root = _clone(tmp_path, "reader", remote).root  # the reader's machine cloned it once
    worktree = (reader_root / "chronos_7d.json").read_text()
    first = writer.deploy(_config(90), reason="first")
    reader = ConfigStore(reader_root, read_only=True, remote=str(remote))  # fetches; writes no working tree
    assert reader.warnings == [] and reader.current_version("7d") == first and reader.read("7d").context_length == 90
    assert [v.commit for v in reader.history("7d")] == [first.commit, writer.history("7d")[1].commit]
    second = writer.rollback("7d", reason="operator")
    assert reader.current_version("7d") == first  # what it fetched, until it fetches again
    reader.refresh()
    assert reader.current_version("7d") == second and reader.read("7d").context_length == 180
    assert (reader_root / "chronos_7d.json").read_text() == worktree  # only .git changed
    with pytest.raises(ConfigStoreError, match="opened read-only"):
        reader.deploy(_config(60), reason="never")
    caught_up = ConfigStore(reader_root, remote=str(remote))  # a writer's open fast-forwards the clone
    assert caught_up.repairs == [] and caught_up.repo.head.commit.hexsha == second.commit and _clean(caught_up)


def test_a_local_commit_never_pushed_is_set_aside_on_a_writers_open(tmp_path, remote):
    a, b = _clone(tmp_path, "a", remote), _clone(tmp_path, "b", remote)
    (b.root / "chronos_7d.json").write_text(_config(33).to_json())  # a commit made in b's clone, never pushed
    _git(b.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-am", "[7d] deploy: not pushed")
    unpushed = _git(b.root, "rev-parse", "HEAD")
    pushed = a.deploy(_config(90), reason="pushed")
    assert ConfigStore(b.root, read_only=True, remote=str(remote)).read("7d").context_length == 90  # never live
    reopened = ConfigStore(b.root, remote=str(remote))
    [repair] = reopened.repaired
    ref = repair.kept
    assert ref.startswith("refs/forex/unpublished/") and _git(b.root, "rev-parse", ref) == unpushed
    assert repair.horizon == "7d" and repair.text == (
        f"set aside 1 local commit that the remote {remote} does not have ([7d] deploy: not pushed): a deploy or "
        f"rollback takes effect only once pushed; kept as {ref} (git log {ref}); the store is at the remote's "
        f"version {pushed.id}"
    )
    assert reopened.read("7d").context_length == 90 and _clean(reopened)


# ------------------------------------------------------------------------------------------ racing writers


def _race(stores: list[ConfigStore], horizons: list[str]) -> list[list[tuple[str, object]]]:
    """Each store deploys ROUNDS configurations of its horizon at once with the others, each validated against
    the version its store sees deployed just before (on a horizon another writer changes too: fetched first).
    Returns per store ("ok", Version) or ("refused", error) for each deploy."""
    shared = {h for h in horizons if horizons.count(h) > 1}
    results: list[list[tuple[str, object]]] = [[] for _ in stores]
    start = threading.Barrier(len(stores))

    def writer(i: int) -> None:
        store, horizon = stores[i], horizons[i]
        start.wait()
        for n in range(ROUNDS):
            if horizon in shared:
                store.refresh()
            validated_against = store.current_version(horizon).id
            try:
                version = store.deploy(
                    _config(200 + 100 * i + n, horizon), reason=f"writer {i}, {n}", expected_version=validated_against
                )
                results[i].append(("ok", version))
            except StaleValidationError as error:
                results[i].append(("refused", error))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(len(r) == ROUNDS for r in results), "a writer did not finish"
    return results


def _assert_nothing_lost(remote: Path, stores: list[ConfigStore], results) -> list[str]:
    commits = _assert_linear(remote)
    deployed = [v.commit for r in results for outcome, v in r if outcome == "ok"]
    assert len(set(deployed)) == len(deployed) and set(deployed) <= set(commits)  # every deploy is there ...
    assert len(commits) == 1 + len(deployed)  # ... and nothing else: no refused or half-made deploy
    for store, result in zip(stores, results, strict=True):
        store.refresh()
        assert _clean(store) and store.repo.head.commit.hexsha == commits[0]
        done = sum(outcome == "ok" for outcome, _ in result)
        assert len(list((store.root / "backups").glob("*"))) == done  # one backup per deploy, none for a retry
    return commits


def test_racing_deploys_on_different_horizons_all_land(tmp_path, remote):
    stores = [_clone(tmp_path, name, remote) for name in ("a", "b")]
    results = _race(stores, ["7d", "15d"])
    assert [outcome for r in results for outcome, _ in r] == ["ok"] * 2 * ROUNDS  # none refused
    _assert_nothing_lost(remote, stores, results)
    reader = ConfigStore(tmp_path / "a", read_only=True, remote=str(remote))
    assert reader.current_version("7d") == results[0][-1][1] and reader.read("7d").context_length == 200 + ROUNDS - 1
    assert reader.current_version("15d") == results[1][-1][1] and reader.read("15d").context_length == 300 + ROUNDS - 1


def test_racing_deploys_on_the_same_horizon_lose_nothing_and_refuse_clearly(tmp_path, remote):
    stores = [_clone(tmp_path, name, remote) for name in ("a", "b")]
    results = _race(stores, ["7d", "7d"])
    for result in results:
        for outcome, value in result:
            if outcome == "refused":
                assert str(value).startswith("7d: deploy refused: the candidate was validated against version ")
                assert str(value).endswith("validate the candidate again against the deployed version")
    commits = _assert_nothing_lost(remote, stores, results)
    latest = ConfigStore(tmp_path / "b", read_only=True, remote=str(remote)).current_version("7d")
    assert latest.commit == commits[0]  # the last deploy that landed is the deployed one, in every clone


# ------------------------------------------------------------------------------------------ odds and ends


def test_credentials_in_a_remote_url_never_reach_a_message(tmp_path):
    remote = Remote("https://deployer:s3cret@git.example.invalid/forex/config.git")
    assert remote.shown == "https://git.example.invalid/forex/config.git"
    assert Remote("git@github.com:org/config.git").url == "git@github.com:org/config.git"  # scp-like: kept as is
    assert Remote("relative/config.git").url == str(Path("relative/config.git").absolute())


def test_the_working_area_resource_passes_the_remote(tmp_path, remote, monkeypatch):
    from forex_assets.defs.resources import WorkingArea

    monkeypatch.delenv("FOREX_CONFIG_STORE_DIR", raising=False)
    monkeypatch.setenv("FOREX_CONFIG_STORE_REMOTE", str(remote))
    area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    store = area.config_store()
    assert store.remote.url == str(remote) and _remote_log(remote) == [(store.repo.head.commit.hexsha,)]
    monkeypatch.delenv("FOREX_CONFIG_STORE_REMOTE")
    assert area.config_store().remote is None  # none configured: the local store, as before
    other = _bare(tmp_path / "other.git")
    explicit = WorkingArea(
        path=str(tmp_path / "area2"), configs_dir=str(SEED_CONFIGS_DIR), config_store_remote=str(other)
    ).config_store()
    assert explicit.remote.url == str(other) and len(_remote_log(other)) == 1
