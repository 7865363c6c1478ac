"""Synthetic price series for end-to-end approval runs (``test_end_to_end_approval.py``).

``cycle_prices``: a USD/CLP-like level with a clear deterministic cycle and a little noise, a series on which a
search candidate is genuinely better than the seed configuration (whose median is the last price). Why these
numbers, measured with the bundled ``usdclp-chronos2-mini`` at 7d (median RMSE / random walk's on 300 origins):

* the bundled model was trained on random walks, regime GBM, jump diffusions and slow mean reversion, never
  on a cycle, so it follows a sine only in part: its raw median is 0.75-0.82 of the random walk's RMSE for a
  period of 16-22 business days, 0.87-0.96 for 24-40 (its intervals are wide there, coverage 1.00);
* the candidate cannot use all of that: its ``shrinkage`` is fitted on the search window and shrunk towards
  the seed's 1.0 with weight ``n_eff / (n_eff + 10)`` = 0.34 at 7d (docs/decisions.md, Search), so at best
  its median moves a third of the way from the last price to the model's median. This caps the candidate's
  RMSE change in the validation window at about -10 %;
* a period of 22 business days gives -9.4 .. -9.6 % RMSE (p 1e-5 .. 6e-5), 95 % coverage 0.93-0.95 and a bias of
  about 2 CLP over noise seeds 1-6 of this function: a clear margin on the -5 %, 0.05 and 0.90 thresholds. A
  period of 20 gave -10.6 % but coverage 0.91-0.93 (too close to 0.90); 24-30 gave -4.9 .. -7.5 % (too close to
  -5 %); adding a random-walk component (0.1-0.2 % a day) takes skill away (ratios 0.83-0.89 at period 20);
* the amplitude (3 % of the level, about 25 CLP, four to five times the series' daily standard deviation of
  0.67 %) and the noise level hardly change these ratios (the model scales its input), as long as the noise
  stays small next to the cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forex_assets.core.prices.sources import price_frame

#: 7d needs the longest context (270) + 30 search + 7 gap + 60 validation origins + 7 targets, about 375
#: business days; 600 leave room.
CYCLE_OBSERVATIONS = 600


def cycle_prices(
    n: int = CYCLE_OBSERVATIONS,
    seed: int = 1,
    level: float = 850.0,
    period: float = 22.0,
    amplitude: float = 0.03,
    noise: float = 0.002,
    start: str = "2022-01-03",
) -> pd.DataFrame:
    """``level * exp(amplitude * sin(2 pi t / period) + e_t)``, ``e_t`` iid normal with std ``noise`` (log
    units), on business days from ``start``, rounded to the centavo like the real series."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = level * np.exp(amplitude * np.sin(2 * np.pi * t / period) + rng.normal(0.0, noise, n))
    return price_frame(pd.bdate_range(start, periods=n), np.round(values, 2))


def write_prices_csv(prices: pd.DataFrame, path) -> str:
    """The frame as the CSV the ``csv`` price source reads (``date``, ``usdclp``); returns the path."""
    out = prices.assign(date=prices["date"].dt.strftime("%Y-%m-%d"))
    out.to_csv(path, index=False)
    return str(path)
