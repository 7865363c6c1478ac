"""The recalibration's thresholds (approval criteria, FX levers) as plain dataclasses: light to import (no
numpy or torch), so that reading a policy file (``core/policy_file.py``) stays fast."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApprovalThresholds:
    """The approval criteria (docs/decisions.md); every value configurable."""

    min_rmse_improvement_pct: float = 5.0  # criterion 1: RMSE at least 5 % lower ...
    min_mape_improvement_pct: float = 3.0  # ... or MAPE at least 3 % lower
    max_error_std_growth_pct: float = 10.0  # criterion 2: error std grows at most 10 %
    max_inference_time_ratio: float = 1.5  # criterion 3: at most 1.5 x the deployed config's time ...
    # ... unless at most 1 s slower: the rollback rule's floor. Wall time on a shared machine is load as much as
    # cost: with a 50 ms floor the same candidate (RMSE -7.4 %, p 0.00016) was rejected in one replay and
    # approved in the next, only the machine's load differing; a second a day per forecast costs nothing
    max_inference_excess_seconds: float = 1.0
    min_coverage_95: float = 0.90  # criterion 4
    max_abs_bias_clp: float = 5.0  # criterion 5: |bias| below 5 CLP ...
    # ... or no more biased than the deployed configuration on the same window (+10 %): in a trending
    # window every forecast is biased alike, and a fixed 5 CLP is out of reach at 90d whatever the config
    max_bias_growth_pct: float = 10.0
    # criterion 6: the RMSE improvement is significant: one-sided Diebold-Mariano (HLN-corrected, HAC lags
    # h - 1, capped at origins // 3) p-value that the candidate's squared error is lower, at most this. The
    # policy tests about 26 candidates a horizon-year (the 14-day schedule); 0.05 / 26 ~ 0.002 keeps the
    # chance of one false deploy in a horizon-year at about 5 % (Bonferroni; docs/decisions.md)
    max_improvement_p_value: float = 0.002
    # The distribution's path (issue 23), beside the ADR's: a candidate whose band is better and whose median
    # is no worse is approved when every shared criterion (error std, inference time, bias) passes and
    # its weighted quantile loss (WQL) is at least this much lower ...
    min_wql_improvement_pct: float = 2.0
    # ... significantly (one-sided Diebold-Mariano on the per-origin WQL differences, same HAC lags and the same
    # level max_improvement_p_value) ...
    # ... with an RMSE at most this much higher (the median may not pay for the band) ...
    max_rmse_growth_pct: float = 0.5
    # ... and a 95 % interval that covers between these shares of the window's targets (calibrated: neither
    # too narrow nor too wide; the ADR path's 0.90 floor alone would let a band twice too wide through)
    min_coverage_95_calibrated: float = 0.92
    max_coverage_95_calibrated: float = 0.98
    distribution_path: bool = True  # false: only the ADR's path approves


@dataclass(frozen=True)
class LeverSettings:
    fit_shrinkage: bool = True
    fit_interval_scale: bool = True
    coverage_target: float = 0.95  # the 95 % interval should cover this share of targets
    min_scale: float = 0.5
    max_scale: float = 3.0
    prior_paths: float = 10.0  # pseudo-observations of "the model's intervals are right" (scale 1)
    # band_blend: the weight (0..1, steps of 0.05) of a volatility baseline's band averaged with the model's
    # that minimises the weighted quantile loss on the search window, shrunk towards the prior's weight like
    # the other levers; the baseline: ewma_band (RiskMetrics) or garch_band (GARCH(1,1)-t, ~0.15 s per origin)
    fit_band_blend: bool = True
    band_blend_with: str = "ewma_band"
