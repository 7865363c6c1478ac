"""The replay domain in the code location: the policy replayed over a range of history, as a job."""

import dagster as dg

from forex_assets.defs.replay.jobs import replay_job

defs = dg.Definitions(jobs=[replay_job])
