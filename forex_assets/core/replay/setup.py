"""The replay's set-up, written once, for `forex-assets replay` (``cli/replay.py``) and ``replay_job``
(``defs/replay/jobs.py``): from the options to the prices, the replay settings, the policies and the report
directories (:func:`set_up_replay`), then the replays and their written reports (:func:`run_replays`).

Every input is read and checked before the first replay day and before an output directory is made; what is
wrong raises :class:`~forex_assets.core.replay.engine.ReplayError` naming it (the command prints it in one
line, the job fails with it). Where the prices come from stays with the caller: it passes a function that
loads them (the command builds its price source from its options, the job has its resource). Pure, no
Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from forex_assets.core.horizons import HORIZONS
from forex_assets.core.pairs import DEFAULT_PAIR, PairError, load_pair
from forex_assets.core.policy_file import PolicyFileError, policy_path
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.prices.schema import PriceRules, PriceValidationError, validate_prices
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.prices.synthetic import InjectedDrift, RegimeChange, inject_drifts
from forex_assets.core.replay.compare import (
    PolicyReplay,
    compare_reports,
    load_policies,
    replay_policies,
    report_directories,
    write_comparison,
)
from forex_assets.core.replay.engine import PriceProvider, ReplayError, ReplaySettings, check_range
from forex_assets.core.replay.report import write_report

DEFAULT_MONTHS = 6  # without a start: this many months before the end


@dataclass(frozen=True)
class ReplayOptions:
    """What `forex-assets replay` takes as options and ``replay_job`` as run config."""

    start: date | None = None  # first replay day; None: DEFAULT_MONTHS before the end
    end: date | None = None  # last replay day; None: the last price
    horizons: tuple[str, ...] = HORIZONS
    policy_files: tuple[str | Path, ...] = ()  # none: the policy in force (policy_file.policy_path)
    inject_drift: tuple[InjectedDrift, ...] = ()  # one more drift each; synthetic source only
    pair: str = DEFAULT_PAIR  # a pair of the pairs file: its calendar, seeds and data contract
    pairs_file: str | Path | None = None  # None: configs/pairs.json


@dataclass
class ReplaySetup:
    """A replay ready to run: every input read and checked, every report directory writable."""

    provider: PriceProvider
    settings: ReplaySettings  # its policy is replaced by each of ``policies`` in turn
    policies: dict[str, PolicySettings]  # name -> settings, in the order given
    out: Path
    report_dirs: dict[str, Path]  # policy name -> where its report goes (``out`` itself for one policy)

    @property
    def compared(self) -> bool:
        return len(self.policies) > 1


def replay_prices(
    prices: pd.DataFrame,
    description: str,
    synthetic: bool,
    inject_drift: Sequence[InjectedDrift] = (),
    rules: PriceRules | None = None,
) -> tuple[PriceProvider, tuple[pd.Timestamp, ...]]:
    """(provider, injected drift onsets): the synthetic series' known regime change counts as an injected drift
    (detection latency), and each of ``inject_drift`` is added to it (another source takes none). ReplayError
    for an onset outside the series."""
    onsets = []
    if synthetic:
        onsets.append(pd.Timestamp(prices["date"].iloc[-RegimeChange().observations_before_end]))
        if inject_drift:
            first, last = prices["date"].iloc[0], prices["date"].iloc[-1]
            for drift in inject_drift:  # the first day has no return before it to change
                if not first < pd.Timestamp(drift.onset) <= last:
                    raise ReplayError(
                        f"--inject-drift {pd.Timestamp(drift.onset).date()}: the onset must be a day after the first "
                        f"price and on or before the last one of {description} "
                        f"({pd.Timestamp(first).date()}..{pd.Timestamp(last).date()})"
                    )
            prices = validate_prices(
                inject_drifts(prices, list(inject_drift)), rules or PriceRules(), source=description
            )
            onsets += [pd.Timestamp(d.onset) for d in inject_drift]
    return PriceProvider(prices, description), tuple(sorted(onsets))


def set_up_replay(
    options: ReplayOptions,
    load_prices: Callable[[], pd.DataFrame],
    source_description: str,
    synthetic: bool,
    out: Path,
    default_policy_file: str | Path | None = None,
) -> ReplaySetup:
    """Read and check, in this order: the policies (``options.policy_files``, else ``default_policy_file``,
    else the policy in force), the prices (``load_prices()``, validated; ``synthetic``: the series carries the
    known regime change), the range against them, and the report directories under ``out``, which are made
    last. A ReplayError names the first problem."""
    if options.inject_drift and not synthetic:
        raise ReplayError("--inject-drift is for the synthetic source only")
    try:
        policies = load_policies(options.policy_files or [policy_path(default_policy_file)])
    except PolicyFileError as error:
        raise ReplayError(str(error)) from None
    try:
        pair = load_pair(options.pair, options.pairs_file)
    except PairError as error:
        raise ReplayError(str(error)) from None
    try:
        prices = load_prices()
    except (PriceValidationError, PriceSourceError, PairError, OSError) as error:
        raise ReplayError(f"the price source failed: {error}") from None
    rules = pair.price_rules(prices["usdclp"].to_numpy())
    provider, onsets = replay_prices(prices, source_description, synthetic, options.inject_drift, rules)
    end = options.end or provider.span()[1].date()
    start = options.start or (pd.Timestamp(end) - pd.DateOffset(months=DEFAULT_MONTHS)).date()
    settings = ReplaySettings(
        start=start,
        end=end,
        horizons=tuple(options.horizons),
        injected_drifts=onsets,
        configs_dir=pair.seeds_dir,
        calendar=pair.business_calendar,
        pair=pair.code,
    )
    check_range(provider, settings)  # the replay checks it too; here before a directory is made
    try:  # one policy: its report in ``out``; several: one directory each, the comparison in ``out``
        report_dirs = report_directories(out, policies)
    except OSError as error:
        raise ReplayError(str(error.strerror or error)) from None
    return ReplaySetup(provider, settings, policies, Path(out), report_dirs)


@dataclass
class ReplayRun:
    """The replays of a :class:`ReplaySetup` and where their reports were written."""

    replays: dict[str, PolicyReplay]
    report_paths: dict[str, tuple[Path, Path]]  # policy name -> (JSON, HTML)
    comparison: dict[str, Any] | None = None  # with two or more policies
    comparison_paths: tuple[Path, Path] | None = None  # (JSON, HTML)

    @property
    def partial(self) -> list[tuple[str, str]]:
        """(policy name, why) of each replay that stopped early."""
        return [
            (name, r.result.partial_reason) for name, r in self.replays.items() if r.result.partial_reason is not None
        ]


def run_replays(
    setup: ReplaySetup,
    progress: Callable[[str], Callable[[int, int, pd.Timestamp], None] | None] | None = None,
    keep_state: bool = False,
) -> ReplayRun:
    """Replay each policy of ``setup`` on the same days and prices, write each report into its directory and,
    for several policies, the comparison into ``setup.out`` (linking each policy's page). ``keep_state``: each
    policy's working area is kept under its report directory (``state/``)."""
    state_dirs = {name: directory / "state" for name, directory in setup.report_dirs.items()} if keep_state else None
    replays = replay_policies(setup.provider, setup.settings, setup.policies, progress, state_dirs)
    paths = {name: write_report(r.report, r.prices, setup.report_dirs[name]) for name, r in replays.items()}
    run = ReplayRun(replays, paths)
    if setup.compared:
        run.comparison = compare_reports({name: r.report for name, r in replays.items()})
        links = {name: f"{name}/{html.name}" for name, (_, html) in paths.items()}
        run.comparison_paths = write_comparison(run.comparison, setup.out, links)
    return run
