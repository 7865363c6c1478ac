import pytest

from forex_assets.core.deployment.rollback_rules import PostDeployHealth, RollbackThresholds, rollback_reason
from forex_assets.core.forecasting.config import ValidationBaseline
from forex_assets.core.monitoring.live_scoring import score_matured
from forex_assets_tests.conftest import random_walk_prices

BASELINE = ValidationBaseline(rmse_clp=10.0, inference_seconds=0.02)


def _health(runs=(), seconds=0.02, matured=0, rmse=None, walk=None):
    """``seconds``: one time for each of the latest 3 forecasts, or a list of times, newest first."""
    times = list(seconds) if isinstance(seconds, list | tuple) else [seconds] * 3
    return PostDeployHealth(list(runs), times, matured, rmse, walk)


def test_consecutive_failures_count_from_the_newest_run():
    assert rollback_reason(_health([False, False, False, True]), BASELINE).startswith("3 consecutive failed")
    assert rollback_reason(_health([False, False, True, False]), BASELINE) is None


def test_inference_time_above_three_times_the_baseline_and_the_floor():
    no_floor = RollbackThresholds(min_inference_excess_seconds=0.0)
    assert rollback_reason(_health(seconds=0.059), BASELINE, no_floor) is None
    assert "above 3x the baseline" in rollback_reason(_health(seconds=0.061), BASELINE, no_floor)


def test_a_busy_machine_alone_never_rolls_back():
    # 0.2115 s against a 0.0037 s baseline (57x) was load on a shared machine, not a fault
    load = ValidationBaseline(rmse_clp=10.0, inference_seconds=0.0037)
    assert rollback_reason(_health(seconds=0.2115), load) is None
    assert rollback_reason(_health(seconds=1.0036), load) is None  # within the 1 s floor
    assert "more than 1 s above it" in rollback_reason(_health(seconds=1.0038), load)
    slow = ValidationBaseline(rmse_clp=10.0, inference_seconds=2.0)  # seconds-scale: the ratio decides
    assert rollback_reason(_health(seconds=5.9), slow) is None
    assert rollback_reason(_health(seconds=6.1), slow).startswith(
        "inference time 6.1000 s (the fastest of the latest 3"
    )


def test_slowness_must_last_the_latest_three_forecasts():
    no_floor = RollbackThresholds(min_inference_excess_seconds=0.0)
    assert rollback_reason(_health(seconds=[5.0, 5.0]), BASELINE, no_floor) is None  # 2 forecasts: too soon
    assert rollback_reason(_health(seconds=[5.0, 0.02, 5.0, 5.0]), BASELINE, no_floor) is None  # one fast: load
    reason = rollback_reason(_health(seconds=[5.0, 0.07, 9.0, 0.01]), BASELINE, no_floor)
    assert reason.startswith("inference time 0.0700 s (the fastest of the latest 3 forecasts) is above 3x")


def test_rmse_counts_only_once_enough_forecasts_matured():
    assert rollback_reason(_health(matured=4, rmse=30.0), BASELINE) is None
    assert rollback_reason(_health(matured=5, rmse=15.0), BASELINE) is None
    assert "RMSE 15.100 CLP over 5 matured forecasts" in rollback_reason(_health(matured=5, rmse=15.1), BASELINE)


SKILLED = ValidationBaseline(rmse_clp=10.0, inference_seconds=0.02, skill_vs_random_walk=0.9)


def test_a_volatile_month_that_raises_the_random_walks_rmse_as_much_is_no_fault():
    # validated at RMSE 10 (the random walk's 11.1); a month twice as volatile: RMSE 20, the walk's 22.2
    assert rollback_reason(_health(matured=5, rmse=20.0, walk=22.2), SKILLED) is None
    # ADR-001's rule, which the adr policy keeps, rolls it back
    adr = RollbackThresholds(rmse_measure="rmse")
    assert rollback_reason(_health(matured=5, rmse=20.0, walk=22.2), SKILLED, adr).startswith("RMSE 20.000 CLP")


def test_a_configuration_that_lost_its_edge_over_the_random_walk_is_rolled_back():
    # skill 0.9 at validation; 1.5 x 0.9 = 1.35: 13.4 / 10 = 1.34 stays, 13.6 / 10 = 1.36 goes, whatever the level
    assert rollback_reason(_health(matured=5, rmse=13.4, walk=10.0), SKILLED) is None
    reason = rollback_reason(_health(matured=5, rmse=13.6, walk=10.0), SKILLED)
    assert reason == (
        "RMSE / random-walk RMSE 1.360 (13.600 / 10.000 CLP) over 5 matured forecasts is above 1.5x the "
        "baseline's 0.900"
    )
    assert rollback_reason(_health(matured=4, rmse=40.0, walk=10.0), SKILLED) is None  # too few matured


def test_without_a_skill_to_compare_the_rmse_itself_is_judged():
    # a baseline from before skills were recorded, or no random-walk RMSE: the RMSE rule
    assert rollback_reason(_health(matured=5, rmse=15.1, walk=30.0), BASELINE).startswith("RMSE 15.100 CLP")
    assert rollback_reason(_health(matured=5, rmse=15.1), SKILLED).startswith("RMSE 15.100 CLP")
    assert rollback_reason(_health(matured=5, rmse=14.9), SKILLED) is None


def test_post_deploy_health_scores_the_random_walk_on_the_versions_matured_targets(tmp_path):
    import numpy as np
    import pandas as pd

    from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
    from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
    from forex_assets.core.policy import post_deploy_health

    prices = random_walk_prices(40)
    history = ForecastHistory(tmp_path / "history.sqlite")
    dates, values = prices["date"], prices["usdclp"].to_numpy()
    errors = []
    for i, version in ((30, "old"), (32, "new"), (33, "new"), (38, "new")):  # 38: not matured
        targets = list(dates.iloc[i + 1 : i + 4])
        if len(targets) < 3:
            targets += list(pd.bdate_range(dates.iloc[-1], periods=4)[1 : 4 - len(targets)])
        median = values[i] + np.array([1.0, -1.0, 2.0])
        quantiles = np.repeat(median[:, None], len(FORECAST_QUANTILES), axis=1)
        history.record(ForecastRecord("7d", dates.iloc[i], values[i], targets, quantiles, version, "c", {}, 0.01))
        if version == "new" and i + 3 < len(values):
            errors.append((median - values[i + 1 : i + 4], values[i] - values[i + 1 : i + 4]))
    health = post_deploy_health(history, prices, "7d", "new", [True, True, True])
    model, walk = (np.concatenate([e[k] for e in errors]) for k in (0, 1))
    assert health.matured_forecasts == 2
    assert health.matured_rmse_clp == pytest.approx(np.sqrt(np.mean(model**2)), rel=1e-12)
    assert health.matured_random_walk_rmse_clp == pytest.approx(np.sqrt(np.mean(walk**2)), rel=1e-12)


def test_score_matured_joins_targets_with_observed_prices():
    import pandas as pd

    prices = random_walk_prices(30)
    origin = prices["date"].iloc[20]
    targets = prices["date"].iloc[21:24].tolist()
    steps = pd.DataFrame(
        {
            "origin_date": [origin] * 3,
            "step": [1, 2, 3],
            "target_date": targets,
            "q0_5": prices["usdclp"].iloc[21:24].to_numpy() + [1.0, -2.0, 2.0],
        }
    )
    late = steps.assign(
        origin_date=prices["date"].iloc[28], target_date=list(pd.bdate_range(prices["date"].iloc[29], periods=3))
    )
    score = score_matured(pd.concat([steps, late]), prices)
    assert score.forecasts == 1  # the late origin's targets are not all observed yet
    assert abs(score.rmse_clp - ((1 + 4 + 4) / 3) ** 0.5) < 1e-9
