from forex_assets.core.deployment.rollback_rules import PostDeployHealth, RollbackThresholds, rollback_reason
from forex_assets.core.forecasting.config import ValidationBaseline
from forex_assets.core.monitoring.live_scoring import score_matured
from forex_assets_tests.conftest import random_walk_prices

BASELINE = ValidationBaseline(rmse_clp=10.0, inference_seconds=0.02)


def _health(runs=(), seconds=0.02, matured=0, rmse=None):
    """``seconds``: one time for each of the latest 3 forecasts, or a list of times, newest first."""
    times = list(seconds) if isinstance(seconds, list | tuple) else [seconds] * 3
    return PostDeployHealth(list(runs), times, matured, rmse)


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
