"""The parts of README.md and docs/*.md that are rendered from the code, never typed: each lies between the
markers ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` of its file.

* ``policy-defaults`` (docs/decisions.md): every field of ``PolicySettings`` with its default, the one declaration;
* ``drift-severity`` (docs/decisions.md): the drift severity rules with ``DriftThresholds``' defaults;
* ``approval-criteria`` (README.md): each approval check as the UI describes it (``criterion_rule``);
* ``rollback-rules`` (README.md): the rollback sensor's description (``rollback_rules_text``);
* ``cycle`` (docs/architecture.md): the steps of the daily cycle (``core/cycle.py``'s ``cycle_table()``).

``.venv/bin/python -m forex_assets_tests.docs_blocks --write`` rewrites every block from the code;
``forex_assets_tests/test_docs_agree.py`` fails while one differs from what the code renders.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

from forex_assets.core.cycle import cycle_table
from forex_assets.core.deployment.rollback_rules import rollback_rules_text
from forex_assets.core.monitoring.drift import DriftThresholds
from forex_assets.core.policy_file import SECTIONS, policy_document
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.levers import LeverSettings
from forex_assets.core.recalibration.validation import CRITERIA_NAMES, criterion_rule
from forex_assets.core.working_area import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
DECISIONS = DOCS / "decisions.md"
ARCHITECTURE = DOCS / "architecture.md"
PACKAGE = PROJECT_ROOT / "forex_assets"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


# ----------------------------------------------------------------------------- what each block says


def section_classes() -> dict[str, type]:
    """Policy file section -> the dataclass that declares its fields (``drift_per_horizon``: drift's)."""
    defaults = PolicySettings()
    classes = {}
    for section in SECTIONS:
        value = getattr(defaults, section)
        if section == "drift_per_horizon":
            classes[section] = DriftThresholds
        elif section == "levers":
            classes[section] = LeverSettings  # None by default: see the table's note
        else:
            classes[section] = type(value)
    return classes


def _declared_in(cls: type) -> str:
    return f"`{cls.__name__}` (`{Path(inspect.getsourcefile(cls)).relative_to(PACKAGE).as_posix()}`)"


def policy_defaults_table() -> str:
    """Every key a policy file may hold, its default as the file would write it, and where it is declared."""
    defaults = policy_document("default", PolicySettings())
    lines = ["| policy file key | default | declared in |", "|---|---|---|"]
    for section, cls in section_classes().items():
        if section == "drift_per_horizon":
            lines.append(
                f"| `drift_per_horizon` | `{json.dumps(defaults[section])}` (every horizon uses `drift`; e.g. "
                '`{"90d": {"baseline_window": 180, "test_window": 60}}`) | per horizon (7d, 15d, 30d, 90d), '
                "the `drift` fields it names; the others are the `drift` section's |"
            )
            continue
        values = defaults.get(section) or dataclasses.asdict(cls())  # levers: None by default
        for field in dataclasses.fields(cls):
            note = ""
            if section == "levers" and field.name.startswith("fit_"):
                note = " (without a `levers` section: the search-space file's)"
            lines.append(
                f"| `{section}.{field.name}` | `{json.dumps(values[field.name])}`{note} | {_declared_in(cls)} |"
            )
    return "\n".join(lines)


def drift_severity_table() -> str:
    """The drift severity rules, first match wins, with the default thresholds."""
    t = DriftThresholds()

    def ratio(bound: float) -> str:
        return f"volatility ratio > {bound:g} or < {1 / bound:.2g}"

    lines = [
        "| severity | any of | `drift` fields |",
        "|---|---|---|",
        f"| HIGH | KS p < {t.high_ks_p:g} **and** KS statistic > {t.high_ks_statistic:g}; {ratio(t.high_vol_ratio)} "
        "| `high_ks_p`, `high_ks_statistic`, `high_vol_ratio` |",
        f"| MEDIUM | KS p < {t.medium_ks_p:g} **and** KS statistic > {t.medium_ks_statistic:g} (the decision "
        f"record's rule); corrected PSI > {t.medium_psi:g}; {ratio(t.medium_vol_ratio)}; a Page-Hinkley alarm "
        f"(threshold {t.fast_threshold:g}, delta {t.fast_delta:g}) within the latest {t.fast_recent} observations "
        "| `medium_ks_p`, `medium_ks_statistic`, `medium_psi`, `medium_vol_ratio`, `fast_threshold`, "
        "`fast_delta`, `fast_recent` |",
        f"| LOW | KS p < {t.low_ks_p:g}; corrected PSI > {t.low_psi:g}; {ratio(t.low_vol_ratio)} "
        "| `low_ks_p`, `low_psi`, `low_vol_ratio` |",
        "| NONE | none of the above | |",
    ]
    return "\n".join(lines)


def _wrapped(text: str, first: str, rest: str) -> str:
    return textwrap.fill(text, width=110, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)


def approval_criteria_list() -> str:
    """The approval checks, each as the UI describes it (the default policy's values)."""
    items = [f"`{name}`: {criterion_rule(name)}" for name in CRITERIA_NAMES]
    return "\n".join(
        _wrapped(item + (";" if i < len(items) - 1 else "."), "  * ", "    ") for i, item in enumerate(items)
    )


def rollback_rules_sentence() -> str:
    """The rollback rules as the rollback sensor's description says them."""
    return _wrapped(f"A deploy is rolled back after {rollback_rules_text()}.", "  ", "  ")


#: (file, block name) -> what the code renders for it
BLOCKS: dict[tuple[Path, str], Callable[[], str]] = {
    (DECISIONS, "policy-defaults"): policy_defaults_table,
    (DECISIONS, "drift-severity"): drift_severity_table,
    (README, "approval-criteria"): approval_criteria_list,
    (README, "rollback-rules"): rollback_rules_sentence,
    (ARCHITECTURE, "cycle"): cycle_table,
}


# ----------------------------------------------------------------------------- reading and writing the blocks


def block_in(text: str, name: str, where: Path) -> str:
    """The text between ``name``'s markers in ``text`` (without the marker lines); a ValueError naming the file
    and the marker when either is missing."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{where}: expected one '{start}' followed by one '{end}'")
    return text[text.index(start) + len(start) : text.index(end)].strip("\n")


def replace_block(text: str, name: str, body: str, where: Path) -> str:
    block_in(text, name, where)  # both markers there, once, in order
    start, end = markers(name)
    return text[: text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end) :]


def stale_blocks() -> list[str]:
    """``file: block`` for every block whose text is not what the code renders."""
    stale = []
    for (path, name), render in BLOCKS.items():
        if block_in(path.read_text(), name, path) != render():
            stale.append(f"{path.relative_to(PROJECT_ROOT)}: {name}")
    return stale


def write_blocks() -> list[str]:
    """Rewrite every stale block; the ``file: block`` rewritten."""
    rewritten = stale_blocks()
    for (path, name), render in BLOCKS.items():
        path.write_text(replace_block(path.read_text(), name, render(), path))
    return rewritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the blocks in README.md and docs/*.md")
    args = parser.parse_args()
    if args.write:
        rewritten = write_blocks()
        print("\n".join(f"rewrote {block}" for block in rewritten) or "every block was up to date")
    else:
        stale = stale_blocks()
        print("\n".join(f"stale: {block}" for block in stale) or "every block is up to date")


if __name__ == "__main__":
    main()
