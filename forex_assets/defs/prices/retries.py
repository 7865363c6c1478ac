"""The step retry policy of ``pair_prices``, applied to transient failures only
(:func:`forex_assets.defs.step_retries.retry_transient_only`)."""

import dagster as dg

#: pair_prices: the HTTP client already retried 3 times within seconds (``PriceSource.max_retries``,
#: ``backoff_s``); the step then tries 3 more times, ~30 s, ~90 s and ~210 s later (+-30 s jitter), to ride
#: out an outage of a few minutes (a restart of the API); a longer one is left to the next scheduled run.
PRICES_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
