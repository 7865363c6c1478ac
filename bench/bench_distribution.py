"""Benchmark: the distribution issue's targets (issue 23), each with its uncertainty and the command that made it.

* ``real``: a replay of the real USD/CLP series (``--real-csv``, the workplace's data folder; nothing in the
  repository depends on it) from 2013-01-02 to 2018-12-28, all four horizons, the default policy (its replay
  report: ``bench/policy/real_default.json``, written by ``bench_policy.one_replay``): per horizon the live
  forecasts' weighted quantile loss (WQL) over the RiskMetrics EWMA band's, the GARCH band's and the static
  seed's, with 95 % block-bootstrap intervals; live RMSE over the random walk's; 95 % coverage; realised win rate
  of deploys and rollbacks per deploy; the replay's wall time.
* ``drifts``: where the loop has something to do: a two-year replay (all four horizons, the default policy) of
  the embedded default's synthetic series with two injected volatility drifts (x2.5, then x0.4: the
  ``drifts`` dataset of ``bench_policy``); the deploys, their realised win rate on WQL (a deploy wins when its
  first 20 matured forecasts have a lower WQL than the replaced configuration's on the same origins) and on
  RMSE, rollbacks per deploy, and live WQL over the static seed's and the EWMA band's. The real replay may
  deploy nothing (no candidate significantly better), and a win rate needs deploys.
* ``deploys``: where deploys should happen, so that their realised win rate can be counted: two-year replays
  (all four horizons, the default policy, one process per horizon) of ``bench_policy``'s ``cycle`` series (a
  calm walk with a 22-day cycle that stops two thirds in: the median can beat the last price, then cannot)
  and ``managed`` series (a managed float: a mean-reverting log price, whose square-root-of-time bands are too
  wide at long horizons); per dataset and horizon the deploys, their WQL and RMSE verdicts, rollbacks, and
  pooled over all of them the realised WQL win rate and rollbacks per deploy with Wilson 95 % intervals
  (section ``deploys`` of ``bench/results.md``; reports in ``bench/policy/``).
* ``stationary``: false positives of the default performance rule (``distribution``: the median's random-walk
  test and the band's tests) on stationary Gaussian random walks: the seed configurations (bundled model)
  forecast ``--series`` simulated walks, and the rule is applied every 10 business days to the latest 40
  matured forecasts, as the monitoring does; the share of checks that fire, with a Wilson 95 % interval.
* ``model``: the bundled model's WQL over the GARCH band's on held-out synthetic GARCH series, read from its
  model card's ``evaluation.json`` (``scripts/evaluate_bundled_model.py``).

Writes the table into ``bench/results.md`` (section ``distribution``). Usage::

    .venv/bin/python bench/bench_distribution.py [--parts real drifts deploys stationary model] [--years 6] [--series 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from bench_common import machine, replace_section  # noqa: E402
from bench_policy import REAL_CSV, merge, one_replay, save  # noqa: E402

from forex_assets.core.backtest.engine import run_backtest  # noqa: E402
from forex_assets.core.backtest.windows import PriceSeries  # noqa: E402
from forex_assets.core.forecasting.config import load_seed  # noqa: E402
from forex_assets.core.horizons import HORIZONS, horizon_steps  # noqa: E402
from forex_assets.core.models.bundled_recipe import BUNDLED_MODEL_DIR  # noqa: E402
from forex_assets.core.models.loading import load_pipeline  # noqa: E402
from forex_assets.core.monitoring.performance import band_test  # noqa: E402
from forex_assets.core.monitoring.triggers import TriggerInputs, TriggerPolicy, decide  # noqa: E402
from forex_assets.core.prices.sources import price_frame  # noqa: E402
from forex_assets.core.working_area import SEED_CONFIGS_DIR  # noqa: E402

START, END = "<!-- distribution:start -->", "<!-- distribution:end -->"
DEPLOYS_START, DEPLOYS_END = "<!-- deploys:start -->", "<!-- deploys:end -->"
DEPLOY_DATASETS = ("cycle", "managed")
CHECK_EVERY = 10  # business days between two checks of the rule (the monitoring checks daily: this thins them)
WINDOW = 40  # matured forecasts per check (PerformancePolicy.random_walk_test_origins)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def stationary_false_positives(series: int) -> dict[str, dict]:
    """Per horizon: checks, fired (any test), fired by the band tests alone, the share with its interval."""
    from datetime import date

    import pandas as pd

    from forex_assets.core.metrics import diebold_mariano

    policy = TriggerPolicy(schedule_enabled=False, drift_enabled=False)
    out = {}
    for horizon in HORIZONS:
        steps = horizon_steps(horizon)
        seed = load_seed(SEED_CONFIGS_DIR / f"chronos_{horizon}.json", horizon)
        pipeline = load_pipeline(seed.checkpoint)
        checks = fired = band_fired = 0
        for i in range(series):
            rng = np.random.default_rng(7000 + i)
            n = seed.longest_context + 60 + 400
            dates = pd.bdate_range("2005-01-03", periods=n)
            prices = price_frame(dates, np.round(700.0 * np.exp(np.cumsum(rng.normal(0, 0.006, n))), 2))
            origins = np.arange(seed.longest_context + 60, n - steps)
            result = run_backtest(pipeline, seed, PriceSeries.from_frame(prices), origins, steps)
            days = [prices["date"].iloc[o] for o in origins]
            for end in range(WINDOW, len(origins) + 1, CHECK_EVERY):
                window = slice(end - WINDOW, end)
                q, actuals = result.quantiles[window], result.actuals[window]
                walk = np.repeat(result.last_prices[window][:, None], steps, axis=1)
                dm = diebold_mariano(actuals, q[..., 2], walk, steps)
                p_worse = dm.p_value / 2 if dm.statistic > 0 else 1.0 - dm.p_value / 2
                test = {
                    "origins": WINDOW,
                    "skill_vs_random_walk": 1.0,
                    "p_worse_than_random_walk": p_worse,
                } | band_test(prices, days[window], q, actuals)
                decision = decide(TriggerInputs(horizon, date(2020, 1, 1), random_walk_test=test), policy)
                checks += 1
                fired += decision.optimize
                band_fired += (test["p_worse_than_ewma_band"] < policy.band_p_value) or (
                    test["kupiec_p_95"] < policy.kupiec_p_value
                )
        low, high = wilson(fired, checks)
        out[horizon] = {
            "checks": checks,
            "fired": fired,
            "fired_by_band_tests": band_fired,
            "rate": fired / checks,
            "ci_low": low,
            "ci_high": high,
        }
        print(f"{horizon}: {fired} of {checks} checks fired ({band_fired} by the band tests)")
    return out


def real_replay(years: float, real_csv: Path, command: str) -> dict:
    report = one_replay(
        ("real", str(ROOT / "policies" / "default.json"), years, list(HORIZONS), str(real_csv), command, False)
    )
    return report


def drifts_replay(command: str, years: float = 2.0) -> dict:
    report = one_replay(
        ("drifts", str(ROOT / "policies" / "default.json"), years, list(HORIZONS), str(REAL_CSV), command, False)
    )
    return report


def deploy_replays(command: str, years: float = 2.0) -> list[dict]:
    """Two-year replays of :data:`DEPLOY_DATASETS`, each horizon in its own process (two at a time), merged
    per dataset and saved to ``bench/policy/<dataset>_default.json``."""
    policy = str(ROOT / "policies" / "default.json")
    jobs = [(name, policy, years, [h], str(REAL_CSV), command, True) for name in DEPLOY_DATASETS for h in HORIZONS]
    with ProcessPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(one_replay, jobs))
    reports = [merge(parts[i : i + len(HORIZONS)]) for i in range(0, len(parts), len(HORIZONS))]
    for report in reports:
        save(report)
    return reports


def deploy_table(reports: list[dict], command: str) -> str:
    """Per dataset and horizon: optimizations, deploys and their verdicts; pooled: the realised WQL (and RMSE)
    win rate of the judged deploys and rollbacks per deploy, with Wilson 95 % intervals."""
    lines = [
        "| dataset | horizon | optimizations | deploys | judged | WQL wins | RMSE wins | rollbacks | live WQL / static | live WQL / EWMA band |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    judged = wins_wql = wins_rmse = deploys = rollbacks = 0
    for report in reports:
        for h in HORIZONS:
            r = report["horizons"][h]
            acc = r.get("accuracy", {})
            judged += r.get("deploys_judged", 0)
            wins_wql += r.get("deploy_wins_wql", 0) or 0
            wins_rmse += r.get("deploy_wins", 0) or 0
            deploys += r.get("deploys", 0)
            rollbacks += r.get("rollbacks", 0)
            lines.append(
                f"| {report['bench']['dataset']} | {h} | {r.get('optimizations', 0)} | {r.get('deploys', 0)} | "
                f"{r.get('deploys_judged', 0)} | {r.get('deploy_wins_wql', 0) or 0} | {r.get('deploy_wins', 0) or 0} | "
                f"{r.get('rollbacks', 0)} | {_ratio(acc.get('wql_ratio_vs_static'))} | "
                f"{_ratio(acc.get('wql_ratio_vs_ewma_band'))} |"
            )
    pooled = []
    if judged:
        low, high = wilson(wins_wql, judged)
        low_r, high_r = wilson(wins_rmse, judged)
        pooled.append(
            f"Realised win rate of the judged deploys (target >= 0.60): WQL {wins_wql}/{judged} = "
            f"{wins_wql / judged:.2f} [{low:.2f}, {high:.2f}]; RMSE {wins_rmse}/{judged} = {wins_rmse / judged:.2f} "
            f"[{low_r:.2f}, {high_r:.2f}] (Wilson 95 % intervals)."
        )
    if deploys:
        low, high = wilson(rollbacks, deploys)
        pooled.append(
            f"Rollbacks per deploy (target <= 0.20): {rollbacks}/{deploys} = {rollbacks / deploys:.2f} "
            f"[{low:.2f}, {high:.2f}]."
        )
    walls = ", ".join(f"{r['bench']['dataset']} {r['bench']['wall_s'] / 60:.1f} min" for r in reports)
    footer = [
        "",
        *pooled,
        f"Replays (2 years x 4 horizons each, a process per horizon, 2 at a time; wall time of the slowest "
        f"horizon): {walls}. Command: `{command}`; machine: {machine()}.",
    ]
    return "\n".join(lines + footer)


def _coverage(accuracy: dict) -> str:
    """The live 95 % coverage with its block-bootstrap interval (the replay report's coverage_95_live_interval)."""
    interval = accuracy.get("coverage_95_live_interval") or {}
    if interval.get("ci_low") is not None:
        return f"{interval['coverage']:.3f} [{interval['ci_low']:.3f}, {interval['ci_high']:.3f}]"
    return f"{accuracy.get('live', {}).get('coverage_95', float('nan')):.3f}"


def _ratio(block: dict | None) -> str:
    if not block or block.get("ratio") is None:
        return "n/a"
    if "ci_low" in block:
        return f"{block['ratio']:.3f} [{block['ci_low']:.3f}, {block['ci_high']:.3f}]"
    return f"{block['ratio']:.3f}"


def deploy_rows(report: dict, where: str) -> list[str]:
    """The deploy outcome rows of a replay report: deploys, realised win rates (WQL, RMSE), rollbacks."""
    outcomes, rollbacks = [], []
    for h in HORIZONS:
        r = report["horizons"][h]
        judged = r.get("deploys_judged", 0)
        if judged:
            outcomes.append(
                f"{r.get('deploy_wins_wql', 0)}/{judged} = {r['realised_win_rate_wql']:.2f} "
                f"(RMSE {r.get('deploy_wins', 0)}/{judged})"
            )
        else:
            outcomes.append(f"{r.get('deploys', 0)} deploys, none judged")
        deploys = r.get("deploys", 0)
        rollbacks.append(f"{r.get('rollbacks', 0)}/{deploys}" if deploys else "n/a")
    return [
        f"| deploys ({where}): realised win rate on WQL | >= 0.60 | " + " | ".join(outcomes) + " |",
        f"| rollbacks / deploys ({where}) | <= 0.20 | " + " | ".join(rollbacks) + " |",
    ]


def table(real: dict | None, drifts: dict | None, stationary: dict | None, model: dict | None, command: str) -> str:
    lines = [
        "| figure | target | " + " | ".join(HORIZONS) + " |",
        "|---|---|" + "---|" * len(HORIZONS),
    ]
    if real:
        acc = {h: real["horizons"][h].get("accuracy", {}) for h in HORIZONS}
        rows = [
            ("live WQL / EWMA-band WQL (real 2013-2018)", "<= 0.98", lambda a: _ratio(a.get("wql_ratio_vs_ewma_band"))),
            ("live WQL / GARCH-band WQL", "-", lambda a: _ratio(a.get("wql_ratio_vs_garch_band"))),
            ("live WQL / static-seed WQL", "<= 1.00", lambda a: _ratio(a.get("wql_ratio_vs_static"))),
            ("live RMSE / random walk", "<= 1.005", lambda a: _ratio(a.get("rmse_ratio_vs_random_walk"))),
            ("95 % coverage, live [95 % CI]", "0.93-0.97", _coverage),
        ]
        for name, target, cell in rows:
            lines.append(f"| {name} | {target} | " + " | ".join(cell(acc[h]) for h in HORIZONS) + " |")
        lines += deploy_rows(real, "real 2013-2018")
    if drifts:
        acc = {h: drifts["horizons"][h].get("accuracy", {}) for h in HORIZONS}
        for name, key in (("static-seed", "wql_ratio_vs_static"), ("EWMA-band", "wql_ratio_vs_ewma_band")):
            cells = " | ".join(_ratio(acc[h].get(key)) for h in HORIZONS)
            lines.append(f"| live WQL / {name} WQL (synthetic with two volatility drifts, 2 years) | - | {cells} |")
        lines += deploy_rows(drifts, "synthetic with two volatility drifts")
    if stationary:
        cells = [
            f"{s['rate']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] ({s['fired']}/{s['checks']})"
            for s in stationary.values()
        ]
        lines.append("| performance rule fires, stationary random walk | <= 0.10 | " + " | ".join(cells) + " |")
    if model:
        lines.append(
            f"| bundled model WQL / GARCH-band WQL, held-out synthetic GARCH | <= 1.00 | {model['text']} | | | |"
        )
    footer = [f"\nCommand: `{command}`; machine: {machine()}."]
    if real:
        footer.append(
            f"Real replay: {real['bench']['wall_s'] / 60:.1f} min for 6 years x 4 horizons (target <= 20 min on 2 cores)."
        )
    if drifts:
        footer.append(f"Synthetic drifts replay: {drifts['bench']['wall_s'] / 60:.1f} min (2 years x 4 horizons).")
    return "\n".join(lines + footer)


def model_figure() -> dict | None:
    path = BUNDLED_MODEL_DIR / "evaluation.json"
    if not path.exists():
        return None
    evaluation = json.loads(path.read_text())
    ratios = []
    for name, rows in evaluation.get("sets", {}).items():
        if "garch" not in name:
            continue
        for row in rows:
            ratio = row.get("wql_ratio_garch")
            if ratio is not None:
                ratios.append(f"{row['horizon_steps']}d {ratio:.3f}")
    return {"text": ", ".join(ratios) or "not in evaluation.json"} if ratios else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["real", "drifts", "deploys", "stationary", "model"])
    parser.add_argument("--years", type=float, default=6.0)
    parser.add_argument("--series", type=int, default=8)
    parser.add_argument("--real-csv", default=str(REAL_CSV))
    args = parser.parse_args()
    command = "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python", *sys.argv])
    started = time.perf_counter()
    real = None
    if "real" in args.parts:
        if Path(args.real_csv).exists():
            real = real_replay(args.years, Path(args.real_csv), command)
        else:
            print(f"skipping 'real': {args.real_csv} is not there")
    drifts = drifts_replay(command) if "drifts" in args.parts else None
    if "deploys" in args.parts:
        text = deploy_table(deploy_replays(command), command)
        print(text)
        replace_section(
            DEPLOYS_START,
            DEPLOYS_END,
            f"{DEPLOYS_START}\n### Deploy outcomes where deploys happen (issue 23)\n\n{text}\n{DEPLOYS_END}\n",
        )
        if args.parts == ["deploys"]:
            return
    stationary = stationary_false_positives(args.series) if "stationary" in args.parts else None
    model = model_figure() if "model" in args.parts else None
    text = table(real, drifts, stationary, model, command)
    print(text)
    print(f"({time.perf_counter() - started:.0f} s)")
    replace_section(START, END, f"{START}\n### Distribution targets (issue 23)\n\n{text}\n{END}")


if __name__ == "__main__":
    main()
