"""How the read-only commands (`status`, `history`, `forecasts`) open the state: never creating a database, a
directory or a file, and saying in one line what is wrong with a state database URL.

* the embedded default (no ``$FOREX_STATE_DATABASE_URL``): a part whose SQLite file does not exist has nothing
  recorded (None); an existing file is read without a byte written, on a read-only mount too;
* ``$FOREX_STATE_DATABASE_URL`` set: it must name a database that is there. Not a URL, a server that cannot be
  reached, a SQLite file that does not exist: a :class:`~forex_assets.cli.main.CliError` naming the variable,
  the URL (its password masked) and what failed. A database that holds none of a part's tables has nothing
  recorded (None).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from forex_assets.cli.main import CliError

Part = TypeVar("Part")


def state_url() -> str | None:
    from forex_assets.core.storage import configured_url

    return configured_url()


def url_problem(url: str, problem: str) -> CliError:
    """``$FOREX_STATE_DATABASE_URL (URL, password masked): problem``."""
    from forex_assets.core.storage import STATE_DATABASE_URL_ENV, masked_url

    return CliError(f"${STATE_DATABASE_URL_ENV} ({masked_url(url)}): {problem}")


def open_for_reading(part: Callable[..., Part], path: Path, url: str | None) -> Part | None:
    """``part(path, database_url=url, read_only=True)`` (a ForecastHistory, DecisionLog or AlertLog); None when
    nothing was ever recorded there. Errors are CliErrors (``url``'s name the variable)."""
    from forex_assets.core.corrupt_files import CorruptFileError
    from forex_assets.core.storage import StateDatabaseError, StateDatabaseMissing, StateDatabaseUnavailable

    if url is None and not path.is_file():
        return None
    try:
        opened = part(path, database_url=url, read_only=True)
    except ValueError as error:  # complete_url: not a database URL, or not PostgreSQL nor SQLite
        raise url_problem(url or "", str(error)) from None
    except StateDatabaseMissing as error:
        if url is None:  # removed since is_file()
            return None
        raise url_problem(url, f"{error} Check the path in the URL.") from None
    except StateDatabaseUnavailable as error:
        raise (url_problem(url, f"cannot connect: {error}") if url else CliError(str(error))) from None
    except (StateDatabaseError, CorruptFileError) as error:
        raise (url_problem(url, str(error)) if url else CliError(str(error))) from None
    return None if opened.database.empty else opened
