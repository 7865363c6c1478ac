"""A stray file in the config store (a `.bak` copy, an editor's swap or backup file) is damage to report and set
aside, not a reason to stop forecasting (issue 21, item 2); a directory that is not a store is still refused, and
the refusal says what it holds, never to empty it. The real `forex-assets` in subprocesses, on a temp
DAGSTER_HOME."""

import glob
import subprocess

from forex_assets_tests.cli_home import cli, instance_home, seeded_store, store_root

STRAY = ("chronos_7d.json.bak", ".chronos_7d.json.swp", "chronos_7d.json~")
STRAY_DAMAGE = (
    "  - {name}: a file a configuration store never holds (a copy, an editor's file); nothing reads it; a "
    "writer's open (the next run) will: move it to backups/"
)


def _row(stdout: str, horizon: str) -> str:
    [row] = [line for line in stdout.splitlines() if line.startswith(f"{horizon} ")]
    return row


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_stray_files_are_shown_by_status_and_moved_aside_by_the_next_run_which_forecasts(tmp_path):
    home = instance_home(tmp_path)
    seed = seeded_store(home).current_version("7d")
    root = store_root(home)
    contents = {
        "chronos_7d.json.bak": (root / "chronos_7d.json").read_bytes(),  # cp chronos_7d.json chronos_7d.json.bak
        ".chronos_7d.json.swp": b"b0VIM 9.0\x00\x00\x00swap",  # vim's swap file of an edit in progress
        "chronos_7d.json~": (root / "chronos_7d.json").read_bytes(),  # emacs' backup
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    before = _tree(root)

    status = cli(home, "status")  # read only: it shows the files and leaves them
    assert status.returncode == 0, status.stderr
    assert seed.id in _row(status.stdout, "7d")
    assert f"config store {root}: 3 problem(s) found, left as they are (this command only reads)" in status.stdout
    for name in STRAY:
        assert STRAY_DAMAGE.format(name=name) in status.stdout.splitlines()
    assert _tree(root) == before

    run = cli(home, "run", "--no-recalibration", "--horizons", "7d")
    assert run.returncode == 0, run.stdout + run.stderr
    row = _row(run.stdout, "7d")
    assert row.endswith(" ok") and seed.id in row  # forecast with the committed configuration
    lines = run.stdout.splitlines()
    for name, data in contents.items():
        assert not (root / name).exists()
        [kept] = (root / "backups").glob(f"{glob.escape(name)}.discarded-*")
        assert kept.read_bytes() == data  # moved, nothing lost
        moved = f"moved {name}, a file a configuration store never holds (nothing read it), to backups/{kept.name}"
        assert f"  7d: {moved}" in lines  # the run's summary names each one

    after = cli(home, "status")
    assert after.returncode == 0, after.stderr
    assert "problem(s) found" not in after.stdout and seed.id in _row(after.stdout, "7d")
    assert _row(after.stdout, "7d").endswith("config store repaired (3 repairs) [logged, 0 min ago]")


def test_a_directory_that_is_not_a_store_is_refused_naming_what_it_holds_never_to_empty_it(tmp_path):
    home = instance_home(tmp_path)
    somebody = tmp_path / "somebody"
    somebody.mkdir()
    (somebody / "notes.txt").write_text("mine\n")
    git = ["git", "-C", str(somebody), "-c", "user.name=Ana Perez", "-c", "user.email=ana@example.org"]
    subprocess.run(["git", "init", "--quiet", str(somebody)], check=True)
    subprocess.run([*git, "add", "notes.txt"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "my notes"], check=True)
    (somebody / "draft.txt").write_text("not committed\n")
    before = _tree(somebody)

    for command in (["status"], ["history", "--horizon", "7d"]):
        refused = cli(home, *command, FOREX_CONFIG_STORE_DIR=str(somebody))
        assert refused.returncode == 2 and refused.stdout == "" and "Traceback" not in refused.stderr
        assert refused.stderr.splitlines() == [
            f"forex-assets {command[0]}: config store {somebody}: not a configuration store: it holds a git "
            "repository whose history is not a configuration store's (1 commit by Ana Perez, files: notes.txt), "
            "and files a store never has (draft.txt); left untouched. Point FOREX_CONFIG_STORE_DIR (or "
            "config_store_dir of the working_area resource) at another directory, or move what is there out of it"
        ]
    assert _tree(somebody) == before
