"""Step retries for transient failures only (ADR risk 2, "retries where the world is flaky").

Dagster's :class:`~dagster.RetryPolicy` retries a step on *any* exception, ``dagster.Failure`` included
(``Failure(allow_retries=True)`` is its default). :func:`retry_transient_only` wraps an asset's function so
that the policy is applied only to what :func:`forex_assets.core.retries.is_transient` says may go away by
waiting (a source that kept answering 503, a locked SQLite study):

- transient, with retries left: ``dagster.RetryRequested`` after the policy's delay (exponential, with
  jitter), or after the ``Retry-After`` the source asked for when that is longer;
- transient, on the last attempt: ``dagster.Failure`` naming the error and the attempts;
- anything else (``dagster.Failure`` of a rejected document or a broken data contract, a ConfigError, a bug):
  ``dagster.Failure(allow_retries=False)`` at once, worded as :func:`forex_assets.core.error_text.describe_error`
  words it, raised from the original error (its traceback stays in the event log).

The policies are attached with ``retry_policy=`` as usual, so that the UI shows them; each lives next to the
steps it retries (``defs/prices/retries.py``, ``defs/recalibration/retries.py``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import dagster as dg

from forex_assets.core.error_text import describe_error, error_record
from forex_assets.core.retries import is_transient, retry_after_s

#: The longest a step waits for a ``Retry-After``; a source asking for more fails the step at once, for the
#: next scheduled run to try (a run holding its worker for hours helps nobody).
MAX_RETRY_AFTER_WAIT_S = 900.0

#: Environment variable multiplying the delay of every step retry policy (not a source's ``Retry-After``): 0.01
#: turns minutes into a second, for tests and drills; unset or 1 in operation.
DELAY_SCALE_ENV = "FOREX_STEP_RETRY_DELAY_SCALE"


def step_retry_delay_scale() -> float:
    """The factor :data:`DELAY_SCALE_ENV` sets (1 when unset); ValueError naming it when it is not a number >= 0."""
    text = os.environ.get(DELAY_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not scale >= 0:
        raise ValueError(f"{DELAY_SCALE_ENV}={text!r} is not a number >= 0 (e.g. 0.01); unset it for the normal delays")
    return scale


def _step_retry_policy(context: dg.AssetExecutionContext) -> dg.RetryPolicy | None:
    return context.op_def.retry_policy


def retry_decision(
    error: Exception, policy: dg.RetryPolicy | None, retry_number: int, run_id: str | None
) -> dg.RetryRequested | dg.Failure:
    """What the step raises for ``error`` on attempt ``retry_number + 1`` under ``policy``."""
    text = describe_error(error_record(error), run_id)
    if not is_transient(error):
        return dg.Failure(description=text, allow_retries=False)
    attempt = retry_number + 1
    if policy is None or retry_number >= policy.max_retries:
        return dg.Failure(
            description=f"{text}\n(a transient error: gave up after {attempt} attempt(s) of the step)",
            allow_retries=False,
        )
    wait = float(policy.calculate_delay(attempt)) * step_retry_delay_scale()
    asked = retry_after_s(error)
    if asked is not None and asked > MAX_RETRY_AFTER_WAIT_S:
        return dg.Failure(
            description=f"{text}\n(not retried: the source asks to wait {asked:g} s, longer than the "
            f"{MAX_RETRY_AFTER_WAIT_S:g} s a step waits; the next scheduled run tries again)",
            allow_retries=False,
        )
    if asked is not None:
        wait = max(wait, asked)
    return dg.RetryRequested(max_retries=policy.max_retries, seconds_to_wait=round(max(wait, 0.0), 3))


def retry_transient_only(compute_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an asset's function (under ``@dg.asset(..., retry_policy=...)``): its step's retry policy
    then applies to transient errors only (module docstring). Dagster reads the wrapped signature."""

    @functools.wraps(compute_fn)
    def wrapper(context: dg.AssetExecutionContext, *args, **kwargs):
        try:
            return compute_fn(context, *args, **kwargs)
        except (dg.RetryRequested, dg.DagsterError):
            raise  # asked for on purpose, or the framework's own (which Dagster never retries)
        except dg.Failure as failure:  # raised on purpose: a rejected document, a broken contract, a bad config
            failure.allow_retries = False
            raise
        except Exception as error:
            policy = _step_retry_policy(context)
            if policy is None:
                raise  # no policy, nothing to steer: the error as it is
            try:
                decision = retry_decision(error, policy, context.retry_number, context.run.run_id)
                if isinstance(decision, dg.RetryRequested):
                    context.log.warning(
                        f"{context.op_def.name}: transient error on attempt {context.retry_number + 1} of "
                        f"{policy.max_retries + 1}, retrying in {decision.seconds_to_wait:g} s: {error}"
                    )
            except Exception as fault:  # never let a fault here pass for a transient error: fail as the error did
                decision = dg.Failure(
                    description=f"{type(error).__name__}: {error}\n(not retried: {fault})", allow_retries=False
                )
            raise decision from error

    return wrapper
