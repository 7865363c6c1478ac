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


@dataclass(frozen=True)
class LeverSettings:
    fit_shrinkage: bool = True
    fit_interval_scale: bool = True
    coverage_target: float = 0.95  # the 95 % interval should cover this share of targets
    min_scale: float = 0.5
    max_scale: float = 3.0
    prior_paths: float = 10.0  # pseudo-observations of "the model's intervals are right" (scale 1)
