"""The step retry policy of the optimization's steps (``candidate_config``, ``validation_report``), applied
to transient failures only (:func:`forex_assets.defs.step_retries.retry_transient_only`)."""

import dagster as dg

#: candidate_config and validation_report: their transient failures are a locked SQLite file (the Optuna
#: study, the backtest cache) or a file system hiccup, which clear in seconds to minutes; an attempt is
#: expensive (the study resumes where it stopped, but validation starts over), so 2 retries, ~60 s and
#: ~180 s later (+-60 s jitter).
OPTIMIZATION_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
