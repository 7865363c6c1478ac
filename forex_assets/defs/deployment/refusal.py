"""The failure text of a deploy or rollback that the config store refused."""

from __future__ import annotations


def refusal(what: str, horizon: str, error: Exception, then: str) -> str:
    """``<what> <horizon>: <error>; <then>`` for a deploy or rollback the store refused, without saying the
    horizon twice (the store's refusals start with ``<horizon>: ``) nor "nothing was changed" twice."""
    text = str(error).removeprefix(f"{horizon.split()[-1]}: ")  # "EUR/CLP 7d": the store says "7d: "
    if "nothing was changed" in text:
        then = then.removeprefix("nothing was changed").lstrip(", ")
    return f"{what} {horizon}: {text}" + (f"; {then}" if then else "")
