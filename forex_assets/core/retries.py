"""Which failures are worth another try, and an HTTP session that retries the transient ones itself.

Two layers retry (docs/decisions.md, ADR risk 2): the HTTP client (seconds: a 503, a dropped connection, a
429 with its ``Retry-After``) and the orchestrator's step retry policy (minutes: an outage longer than the
client's patience, a locked SQLite study). Both retry only what may go away by waiting: a rejected
candidate, a broken data contract, a bad configuration or a bug fail at once, however often they are tried.

Pure: no Dagster. The Dagster layer (``forex_assets.defs.step_retries``) asks :func:`is_transient`.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

#: HTTP answers that may go away by waiting: request timeout, too many requests, and the server-side ones a
#: restart or an overloaded proxy produce. 501 (not implemented), 505 and the other 4xx never do.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: ``OSError`` numbers of a busy or briefly unreachable resource (a network hiccup, a lock, a stale NFS handle).
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EAGAIN",
        "EBUSY",
        "ETIMEDOUT",
        "ECONNRESET",
        "ECONNREFUSED",
        "ECONNABORTED",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "ENETDOWN",
        "EPIPE",
        "ESTALE",
    )
    if hasattr(errno, name)
)

#: Messages of SQLite (directly or through SQLAlchemy, as Optuna's storage raises them) that a retry cures.
TRANSIENT_SQLITE_MESSAGES = ("database is locked", "database table is locked", "database is busy")

#: Errors of the project carry a message written for the operator and are raised on purpose: permanent
#: unless they are a :class:`TransientError`.
PROJECT_PACKAGE = "forex_assets."


class TransientError(Exception):
    """Mixin for the project's errors that may go away by waiting (an API that kept answering 503).

    ``retry_after_s``: how long the other side asked to wait (its ``Retry-After``), None when it did not say.
    """

    retry_after_s: float | None = None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _is_transient_one(error: BaseException) -> bool:
    if isinstance(error, TransientError):
        return True
    # requests' ConnectionError / Timeout derive from IOError, not from the builtin ConnectionError
    if isinstance(error, ConnectionError | TimeoutError | requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code in RETRY_STATUSES
    if isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS:
        return True
    if isinstance(error, sqlite3.OperationalError) or type(error).__name__ == "OperationalError":  # SQLAlchemy's
        return any(text in str(error).lower() for text in TRANSIENT_SQLITE_MESSAGES)
    return False


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may go away by trying again later: a :class:`TransientError`, a network error or
    timeout, an HTTP 408/429/5xx, a busy or unreachable resource (``EAGAIN``, ``ECONNRESET``, ...), a locked
    SQLite database; also when one of these is what it was raised from (Optuna wraps SQLAlchemy's errors).

    Never transient: the project's other errors (a broken data contract, a ConfigError, a rejected or
    unusable document: they say what to fix), and anything else (a bug: the same input fails the same way).
    """
    if isinstance(error, TransientError):
        return True
    if type(error).__module__.startswith(PROJECT_PACKAGE):
        return False  # raised on purpose, with its reason; a cause it was raised from does not change it
    return any(_is_transient_one(link) for link in _chain(error))


def retry_after_s(error: BaseException) -> float | None:
    """The wait the other side asked for (``Retry-After``) anywhere in ``error``'s chain, None if none did."""
    for link in _chain(error):
        if isinstance(link, TransientError) and link.retry_after_s is not None:
            return float(link.retry_after_s)
    return None


class HttpRetry(Retry):
    """urllib3's :class:`~urllib3.util.retry.Retry` that gives up, instead of sleeping, when a ``Retry-After``
    asks for more than ``max_retry_after_s``: the answer (a 429 or 503) is then returned as it is, so that the
    caller can say so and leave the longer wait to the orchestrator, without blocking a worker for it."""

    def __init__(self, *args: Any, max_retry_after_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after_s = max_retry_after_s

    def new(self, **kw: Any) -> Self:
        kw.setdefault("max_retry_after_s", self.max_retry_after_s)
        return super().new(**kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if response is not None and self.respect_retry_after_header and response.status in RETRY_STATUSES:
            try:
                wait = self.get_retry_after(response)
            except Exception:  # an unreadable Retry-After: urllib3 backs off as if there were none
                wait = None
            if wait is not None and wait > self.max_retry_after_s:
                cause = f"Retry-After {wait:g} s is longer than the {self.max_retry_after_s:g} s this client waits"
                # urllib3 itself raises it with the pool it was given, None included (its annotation says a pool)
                raise MaxRetryError(_pool, url, ResponseError(cause))  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


def http_retry(retries: int, backoff_s: float, max_retry_after_s: float = 60.0) -> HttpRetry:
    """GET retries: up to ``retries`` more attempts on connection errors, timeouts and :data:`RETRY_STATUSES`,
    waiting what a ``Retry-After`` asks (up to ``max_retry_after_s``), else 0, 2, 4, ... x ``backoff_s``
    (urllib3's exponential backoff: the first retry at once). The last answer is returned, not raised."""
    return HttpRetry(
        total=retries,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_s,
        respect_retry_after_header=True,
        raise_on_status=False,
        max_retry_after_s=max_retry_after_s,
    )


def retrying_session(retries: int, backoff_s: float, max_retry_after_s: float = 60.0) -> requests.Session:
    """A :class:`requests.Session` whose http:// and https:// requests retry as :func:`http_retry` says."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=http_retry(retries, backoff_s, max_retry_after_s))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def attempts_made(response: requests.Response) -> int:
    """How many requests the session made for ``response``: the retries urllib3 recorded, plus the last."""
    retries = getattr(response.raw, "retries", None)
    return len(getattr(retries, "history", ())) + 1
