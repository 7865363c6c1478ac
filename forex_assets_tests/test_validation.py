from dataclasses import replace

import pytest

from forex_assets.core.backtest.windows import PriceSeries
from forex_assets.core.recalibration.validation import (
    CRITERIA_NAMES,
    ApprovalThresholds,
    ValidationMetrics,
    approval_criteria,
)
from forex_assets.core.recalibration.workflow import WindowOverlapError, check_disjoint
from forex_assets_tests.conftest import random_walk_prices

GOOD = ValidationMetrics(
    rmse_improvement=-8.0,
    mape_improvement=-6.0,
    mae_improvement=-7.0,
    ci95_coverage_new=0.95,
    ci95_coverage_current=0.93,
    bias_new=1.2,
    bias_current=3.0,
    inference_time_new=0.010,
    inference_time_current=0.010,
    stability_score=0.97,
    rmse_new=9.2,
    rmse_current=10.0,
    mape_new=0.9,
    mape_current=0.96,
    error_std_new=9.0,
    error_std_current=9.28,
    skill_vs_random_walk_new=0.98,
    skill_vs_random_walk_current=1.06,
    rmse_random_walk=9.4,
    improvement_p_value=0.001,
    wql_new=0.0097,
    wql_current=0.0100,
    wql_improvement=-3.0,
    wql_p_value=0.001,
)
#: a candidate whose median is the deployed one's (RMSE -0.1 %, not significant) and whose band is better:
#: WQL -3 % (p 0.001), coverage 0.95: only the distribution's path can approve it
BAND_ONLY = replace(GOOD, rmse_improvement=-0.1, mape_improvement=-0.1, improvement_p_value=0.4)


def _verdicts(metrics, thresholds=None):
    return {c.name: c.passed for c in approval_criteria(metrics, thresholds or ApprovalThresholds())}


def test_good_candidate_passes_every_criterion():
    assert _verdicts(GOOD) == dict.fromkeys(CRITERIA_NAMES, True)


@pytest.mark.parametrize(
    "change, failing",
    [
        ({"rmse_improvement": -4.9, "mape_improvement": -2.9}, "accuracy_improves"),
        ({"stability_score": 1.11}, "error_std_stable"),
        ({"inference_time_new": 1.0101, "inference_time_current": 0.010}, "inference_time_bounded"),
        ({"ci95_coverage_new": 0.89}, ("coverage_95_sufficient", "coverage_95_calibrated")),  # below both floors
        ({"bias_new": -5.0}, "bias_bounded"),
        ({"improvement_p_value": 0.0021}, "improvement_significant"),
        ({"improvement_p_value": None}, "improvement_significant"),  # a report from before the criterion
        ({"wql_improvement": -1.99}, "wql_improves"),
        ({"wql_p_value": 0.0021}, "wql_improvement_significant"),
        ({"ci95_coverage_new": 0.985}, "coverage_95_calibrated"),  # too wide: covers more than 0.98
        ({"ci95_coverage_new": 0.915}, "coverage_95_calibrated"),
    ],
)
def test_each_criterion_fails_alone(change, failing):
    verdicts = _verdicts(replace(GOOD, **change))
    expected = [failing] if isinstance(failing, str) else list(failing)
    assert [name for name, passed in verdicts.items() if not passed] == expected


def test_rmse_not_worse_allows_half_a_percent():
    assert _verdicts(replace(BAND_ONLY, rmse_improvement=0.5))["rmse_not_worse"]
    assert not _verdicts(replace(BAND_ONLY, rmse_improvement=0.51))["rmse_not_worse"]


def _report(metrics, thresholds=None):
    from forex_assets.core.recalibration.validation import approval_path, check_outcome

    thresholds = thresholds or ApprovalThresholds()
    criteria = approval_criteria(metrics, thresholds)
    path = approval_path(criteria, thresholds)
    return path, {c.name: check_outcome(c, path) for c in criteria}


def test_the_distribution_path_approves_a_better_band_with_the_same_median():
    path, checks = _report(BAND_ONLY)
    assert path == "distribution"
    # every blocking check passes: the median path's failed criteria are not needed, and say why
    assert all(passed for passed, _ in checks.values())
    for name in ("accuracy_improves", "improvement_significant"):
        assert checks[name][1].startswith("not needed: approved by the distribution path; RMSE change") or checks[name][
            1
        ].startswith("not needed: approved by the distribution path; one-sided")
    assert checks["wql_improves"][1].startswith("WQL change -3.00 %")


def test_the_decision_records_path_comes_first_and_stays_as_it_was():
    assert _report(GOOD)[0] == "median"
    # a median gain with a band that is no better: the ADR's path alone approves, the distribution's
    # criteria do not block it
    median_only = replace(GOOD, wql_improvement=+1.0, wql_p_value=0.9, ci95_coverage_new=0.91)
    path, checks = _report(median_only)
    assert path == "median" and all(passed for passed, _ in checks.values())
    assert checks["coverage_95_calibrated"][1].startswith("not needed: approved by the median path")


def test_a_shared_criterion_blocks_both_paths_and_every_failure_is_reported():
    slow = replace(BAND_ONLY, inference_time_new=3.1, inference_time_current=2.0)
    path, checks = _report(slow)
    assert path is None
    failed = sorted(name for name, (passed, _) in checks.items() if not passed)
    assert failed == ["accuracy_improves", "improvement_significant", "inference_time_bounded"]


def test_the_distribution_path_can_be_turned_off_and_old_reports_cannot_use_it():
    assert _report(BAND_ONLY, ApprovalThresholds(distribution_path=False))[0] is None
    old = replace(GOOD, wql_new=None, wql_current=None, wql_improvement=None, wql_p_value=None)
    assert _report(old)[0] == "median"  # the ADR's path needs none of the new fields
    assert _report(replace(BAND_ONLY, wql_improvement=None, wql_p_value=None))[0] is None
    verdicts = _verdicts(replace(old, rmse_improvement=0.0))
    assert not verdicts["wql_improves"] and not verdicts["rmse_not_worse"]  # no WQL: the path is closed


def test_a_better_band_is_significant_on_per_origin_wql_and_a_worse_one_is_not():
    """Same medians (RMSE change 0): a band of the right width against one three times too wide, on a
    Gaussian random walk's 60 origins x 7 steps."""
    import numpy as np

    from forex_assets.core.recalibration.validation import distribution_fields
    from forex_assets_tests.test_levers import _result

    rng = np.random.default_rng(8)
    steps = np.arange(1, 8)
    actuals = 100.0 + np.cumsum(rng.normal(0, 1, (60, 7)), axis=1)
    lasts = np.full(60, 100.0)
    medians = np.full((60, 7), 100.0)

    def banded(width):
        result = _result(medians, actuals, lasts)
        z = np.array([-1.96, -1.2816, 0.0, 1.2816, 1.96])
        return replace(result, quantiles=medians[..., None] + width * np.sqrt(steps)[None, :, None] * z)

    right, wide = banded(1.0), banded(3.0)
    better = distribution_fields(right, wide, overlap=7)
    assert better["wql_improvement"] < -20 and better["wql_p_value"] < 0.002
    assert distribution_fields(wide, right, overlap=7)["wql_p_value"] > 0.99
    assert better["width_95_pct_new"] == pytest.approx(better["width_95_pct_current"] / 3)


def test_either_rmse_or_mape_is_enough():
    assert _verdicts(replace(GOOD, rmse_improvement=-1.0, mape_improvement=-3.0))["accuracy_improves"]
    assert _verdicts(replace(GOOD, rmse_improvement=-5.0, mape_improvement=+1.0))["accuracy_improves"]


def test_thresholds_are_configurable():
    strict = ApprovalThresholds(
        min_rmse_improvement_pct=10.0, min_mape_improvement_pct=10.0, max_abs_bias_clp=1.0, max_bias_growth_pct=-70.0
    )
    verdicts = _verdicts(GOOD, strict)
    assert not verdicts["accuracy_improves"] and not verdicts["bias_bounded"]
    assert _verdicts(replace(GOOD, ci95_coverage_new=0.85), ApprovalThresholds(min_coverage_95=0.8))[
        "coverage_95_sufficient"
    ]


def test_inference_time_needs_both_the_ratio_and_the_excess_to_fail():
    # 1.51x but 5 ms slower, and 60x but 0.59 s slower: on a shared machine that is load as much as cost
    assert _verdicts(replace(GOOD, inference_time_new=0.0151))["inference_time_bounded"]
    assert _verdicts(replace(GOOD, inference_time_new=0.60))["inference_time_bounded"]
    # 1.55x and 1.1 s slower: a real cost
    assert not _verdicts(replace(GOOD, inference_time_new=3.1, inference_time_current=2.0))["inference_time_bounded"]


def test_bias_is_judged_against_the_deployed_configuration_on_the_same_window():
    trending = replace(GOOD, bias_current=-30.0)  # a trend every forecast misses alike (e.g. at 90d)
    assert _verdicts(replace(trending, bias_new=-32.9))["bias_bounded"]  # within 1.10 x 30 CLP
    assert not _verdicts(replace(trending, bias_new=-33.1))["bias_bounded"]
    assert not _verdicts(replace(GOOD, bias_current=0.0, bias_new=5.0))["bias_bounded"]  # the 5 CLP floor


def test_validation_refuses_a_window_that_overlaps_the_search():
    series = PriceSeries.from_frame(random_walk_prices(200))
    search_end = series.date_text(150)
    check_disjoint(series, search_end, first_validation_origin=157, steps=7)
    with pytest.raises(WindowOverlapError, match="at least 7 are needed"):
        check_disjoint(series, search_end, first_validation_origin=155, steps=7)
    with pytest.raises(WindowOverlapError, match="not in the prices"):
        check_disjoint(series, "1999-01-01", first_validation_origin=157, steps=7)


def test_the_significance_is_one_sided_and_needs_a_consistent_gain():
    import numpy as np

    from forex_assets.core.recalibration.validation import one_sided_improvement_p
    from forex_assets_tests.test_levers import _result

    rng = np.random.default_rng(3)
    actuals = 100.0 + rng.normal(0, 1, (60, 7))
    lasts = np.full(60, 100.0)
    close = _result(actuals + rng.normal(0, 0.5, (60, 7)), actuals, lasts)
    far = _result(actuals + rng.normal(0, 2.0, (60, 7)), actuals, lasts)
    assert one_sided_improvement_p(close, far) < 0.01  # clearly better
    assert one_sided_improvement_p(far, close) > 0.99  # clearly worse: never "significant"
    slightly = _result(actuals + rng.normal(0, 0.98, (60, 7)), actuals, lasts)
    same = _result(actuals + rng.normal(0, 1.0, (60, 7)), actuals, lasts)
    assert one_sided_improvement_p(slightly, same) > 0.05  # a 2 % gap on noise is not a gain


def test_a_window_too_short_for_its_overlap_cannot_show_significance():
    import numpy as np

    from forex_assets.core.recalibration.validation import one_sided_improvement_p
    from forex_assets_tests.test_levers import _result

    rng = np.random.default_rng(4)
    actuals = 100.0 + rng.normal(0, 1, (30, 90))
    lasts = np.full(30, 100.0)
    close = _result(actuals + rng.normal(0, 0.5, (30, 90)), actuals, lasts)
    far = _result(actuals + rng.normal(0, 2.0, (30, 90)), actuals, lasts)
    # 30 consecutive 90-step origins share targets over 90 origins: about one independent path, no test
    assert one_sided_improvement_p(close, far) == 1.0
    # the same 30 origins spaced 12 business days apart overlap over ceil(90 / 12) = 8 origins: testable
    assert one_sided_improvement_p(close, far, overlap=8) < 0.01
