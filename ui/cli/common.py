"""What every ``copilot`` sub-command shares: the one-line error, the engine, the policy, JSON output.

Sub-command modules (``ui/cli_*.py``) import from here, never from ``ui.cli.app``, so that ``ui.cli.app``
can register them without an import cycle. Keep this module light: heavy libraries are imported
inside the functions that need them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

import click
import typer

from agent.settings import get_settings

EXIT_USAGE = 2
# The largest id a record of the ops store may have (a 32-bit integer column): a larger one typed as
# a request, message, exception or token id is a usage error, not the database driver's overflow.
MAX_ID = 2**31 - 1


class CliError(Exception):
    """A failure the user can fix; printed as one line, exit code 2.

    Library errors a user can fix should subclass ``tools.errors.ToolError`` instead (or be added
    to ``expected_errors``): ``ui.cli.app.main`` prints those the same way.
    """


class _RecordId(click.ParamType):
    """A record's id typed on the command line (a request, message, exception or token id): a whole
    number from 1 to :data:`MAX_ID`, else the one-line :class:`CliError` every other usage error
    gives — not Click's usage box ("'abc' is not a valid integer range")."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if isinstance(value, int) or (text.isascii() and text.isdigit()):
            number = int(text)
            if 1 <= number <= MAX_ID:
                return number
        name = (
            param.opts[0] if isinstance(param, click.Option) else param.human_readable_name if param else "id"
        )
        raise CliError(f"{name} must be an id, a whole number from 1 to {MAX_ID}; got {value!r}")


def id_argument(help: str) -> Any:
    """``typer.Argument`` of a record id (:class:`_RecordId`)."""
    return typer.Argument(help=help, click_type=_RecordId(), show_default=False)


def id_option(*names: str, help: str) -> Any:
    """``typer.Option`` of a record id used as a filter (:class:`_RecordId`)."""
    return typer.Option(*names, help=help, click_type=_RecordId())


def expected_errors() -> tuple[type[BaseException], ...]:
    """The exceptions ``copilot`` reports as one line with exit code 2 instead of a traceback."""
    from agent.governance.audit import AuditChainBroken
    from agent.governance.audit_key import AuditKeyError
    from tools.db import DatabaseError
    from tools.errors import ToolError
    from tools.fixtures import FixtureError, SuiteError

    # the database went away, refused a write or ran out of room mid-command
    return (
        *_database_failures(),
        CliError,
        DatabaseError,
        ToolError,
        FixtureError,
        SuiteError,
        AuditKeyError,
        AuditChainBroken,
    )


def _database_failures() -> tuple[type[BaseException], ...]:
    """A database failing under a running command: SQLAlchemy's OperationalError, or the driver's
    own where a bulk path (the seed writers) talks to the driver directly."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    kinds: list[type[BaseException]] = [OperationalError, sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg ships with the product
        pass
    else:
        kinds.append(psycopg.OperationalError)
    return tuple(kinds)


def one_line(exc: BaseException) -> str:
    """What ``copilot`` prints for an expected failure: its message, on one line. A database that
    failed mid-command is named (password hidden) with the driver's reason, never the SQL."""
    if isinstance(exc, _database_failures()):
        from tools.db import driver_reason, redact

        try:
            url = get_settings().effective_database_url
        except Exception:  # the settings were read once already; never hide the real failure
            url = ""
        return (
            f"the database named by DATABASE_URL ({redact(url)}) failed during the command: "
            f"{driver_reason(exc, url)}; its unfinished transaction was not committed — retry once "
            "the database is back"
        )
    return str(exc)


def engine(*, require_schema: bool = True):
    """The engine of ``DATABASE_URL``, reachable, and (by default) migrated to head."""
    from pydantic import ValidationError

    from tools.db import check_connection, current_revision, head_revision, make_engine

    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"invalid setting {first['loc'][0] if first['loc'] else ''}: {first['msg']}") from exc
    engine = make_engine(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    check_connection(engine)
    if require_schema:
        revision = current_revision(engine)
        if revision is None:
            raise CliError("the database named by DATABASE_URL has no schema yet: run `copilot db upgrade`")
        head = head_revision()
        if revision != head:
            raise CliError(
                f"the database is at schema {revision}, this copilot needs {head}: run `copilot db upgrade`"
            )
    return engine


def scoped_factory(factory, as_user: str | None):
    """``factory`` limited to the sites of ``as_user`` (the CLI's ``--as``); ``factory`` itself
    without one. An unknown or inactive user is refused (one line, exit 2), never answered as an
    unscoped one would be: a typo'd ``--as`` must not show every site."""
    from agent.governance.users import factory_for, require_user

    if as_user is None:
        return factory
    with factory() as session:
        require_user(session, as_user)
    return factory_for(factory, as_user)


def check_choice(value: str | None, choices: Collection[str], option: str) -> None:
    """A filter value a user typed: one of ``choices`` (None: no filter), else a one-line usage
    error listing them — a typo must not read as "nothing found"."""
    if value is not None and value not in choices:
        raise CliError(f"{option} must be one of {', '.join(choices)}; got {value!r}")


def parse_date(value: str | None, option: str) -> dt.date | None:
    """An ISO date given to ``option`` (None stays None); anything else is a one-line usage error."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CliError(f"{option} must be a date like 2026-11-25, got {value!r}") from exc


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def erp_is_empty(engine) -> bool:
    from tools.dataset import occupied_tables

    with engine.connect() as conn:
        return not occupied_tables(conn)


def policy():
    from agent.policy import PolicyError, load_policy

    try:
        return load_policy(get_settings().policy_path)
    except PolicyError as exc:
        raise CliError(str(exc)) from exc


def knowledge_embedding():
    """The local embedding model (tests replace this with the fake one)."""
    from knowledge.embeddings import MiniLMEmbeddingFunction, ModelIntegrityError, ModelNotInstalledError

    try:
        return MiniLMEmbeddingFunction()
    except (ModelNotInstalledError, ModelIntegrityError) as exc:
        raise CliError(str(exc)) from exc


def retrieval_collection():
    """The SOP index for a command that retrieves from it: the shipped SOPs are indexed on first use
    (said on stderr), so it is never silently empty; a CliError naming the fix if that fails."""
    from knowledge.ingest import ensure_index

    collection = knowledge_collection()
    try:
        ensure_index(collection, echo=lambda line: typer.echo(line, err=True))
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    return collection


def knowledge_collection():
    from knowledge.store import open_collection

    settings = get_settings()
    try:
        return open_collection(
            knowledge_embedding(), var_dir=settings.var_dir, chroma_url=settings.chroma_url
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
