"""How the read-only commands (`status`, `history`, `forecasts`) open the state: never creating a database, a
directory or a file, and saying in one line what is wrong with a state database URL.

* where: :func:`layout`, the working area's layout (core/working_area.py) as the environment says, in the
  project's ``.dagster_home`` when it says nothing (where `make run` writes);
* the config store: opened for reading (:func:`read_only_store`: no lock held, no repair, nothing written;
  what a writer's open would repair is in its ``damage``);

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
from typing import TYPE_CHECKING, Protocol, TypeVar

from forex_assets.cli.main import CliError
from forex_assets.core.working_area import PRIMARY_PAIR, PROJECT_DAGSTER_HOME, WorkingAreaLayout

if TYPE_CHECKING:
    from forex_assets.core.storage import StateDatabase


class _StatePart(Protocol):
    """A part of the state read here (ForecastHistory, DecisionLog, AlertLog): it keeps its database."""

    @property
    def database(self) -> StateDatabase: ...


Part = TypeVar("Part", bound=_StatePart)


def layout() -> WorkingAreaLayout:
    """The working area the read-only commands read: the environment's; in the project's .dagster_home when
    neither $FOREX_ASSETS_HOME nor $DAGSTER_HOME is set (what `make run` fills)."""
    return WorkingAreaLayout.from_environment(instance_home=PROJECT_DAGSTER_HOME)


def state_url() -> str | None:
    return layout().state_database_url


def read_only_store(error: type[Exception] = CliError, pair: str = PRIMARY_PAIR):
    """The config store, opened read-only (``ConfigStore.for_reading``): nothing is written and no lock is held
    to read, what a writer would repair is in ``damage``. With a remote (production), its head is fetched and
    read, so that the answer is the source of truth's. A missing or unusable store is an ``error`` naming it."""
    from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError

    area = layout()
    try:
        return ConfigStore.for_reading(
            area.config_store_for(pair), area.config_store_remote_for(pair), fetch_remote=True
        )
    except (ConfigStoreError, ValueError) as problem:
        raise error(f"config store {problem}") from None


def url_problem(url: str, problem: str) -> CliError:
    """``$FOREX_STATE_DATABASE_URL (URL, password masked): problem``."""
    from forex_assets.core.storage import STATE_DATABASE_URL_ENV, masked_url

    return CliError(f"${STATE_DATABASE_URL_ENV} ({masked_url(url)}): {problem}")


def open_for_reading(part: Callable[..., Part], path: Path, url: str | None, pair: str = PRIMARY_PAIR) -> Part | None:
    """``part(path, database_url=url, pair=pair, read_only=True)`` (a ForecastHistory, DecisionLog or AlertLog:
    the pair's records); None when nothing was ever recorded there. Errors are CliErrors (``url``'s name the
    variable)."""
    from forex_assets.core.corrupt_files import CorruptFileError
    from forex_assets.core.storage import StateDatabaseError, StateDatabaseMissing, StateDatabaseUnavailable

    if url is None and not path.is_file():
        return None
    try:
        opened = part(path, database_url=url, pair=pair, read_only=True)
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
