"""The tools the model may call: each reader as a LangChain tool, declared READ.

Every tool is declared with a kind in ``tool.metadata["kind"]``: ``READ`` tools only read and are
offered to the model; ``WRITE`` operations change ERP records, run only in the execution step
after an approval, and are never built into a tool list for the model. Registries are plain lists
of names.

Each call runs in its own :func:`tools.db.read_only` transaction, so the database itself refuses a
write. Expected business failures (an unknown id, an invalid argument) come back to the model as
the tool's message; anything else (a bug, a database that is down) propagates.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from tools.db import read_only
from tools.errors import ToolError
from tools.read.readers import READERS, invalid_arguments, schema_of

__all__ = ["READ", "READ_TOOLS", "WRITE", "Kind", "build_read_tools", "kind_of", "read_tool"]

Kind = Literal["READ", "WRITE"]
READ: Kind = "READ"
WRITE: Kind = "WRITE"

# The names of the tools the model may call.
READ_TOOLS: list[str] = [reader.__name__ for reader in READERS]


def kind_of(tool: BaseTool) -> Kind | None:
    """``READ`` or ``WRITE`` as the tool declares it; ``None`` for an undeclared tool."""
    return (tool.metadata or {}).get("kind")


def read_tool(
    reader: Callable[..., dict[str, Any]], session_factory: sessionmaker[Session]
) -> StructuredTool:
    """Wrap one reader of :mod:`tools.read.readers` as a READ tool on ``session_factory``."""
    schema = schema_of(reader)

    def run(**arguments: Any) -> dict[str, Any]:
        try:
            with read_only(session_factory) as session:
                return reader(session, **arguments)
        except ToolError as exc:  # expected: back to the model as the tool's message
            raise ToolException(str(exc)) from exc

    return StructuredTool.from_function(
        func=run,
        name=reader.__name__,
        description=inspect.cleandoc(reader.__doc__ or ""),
        args_schema=schema,
        handle_tool_error=True,
        handle_validation_error=functools.partial(_invalid_arguments, schema=schema),
        metadata={"kind": READ},
    )


def _invalid_arguments(exc: ValidationError, *, schema: type[BaseModel]) -> str:
    """The model's arguments failed the tool's schema: tell it which and why."""
    if exc.title != schema.__name__:
        raise exc  # some other model failed to validate inside the reader: a bug
    return invalid_arguments(exc, schema)


def build_read_tools(session_factory: sessionmaker[Session]) -> list[BaseTool]:
    """The READ tools of :data:`READ_TOOLS`, each running in a read-only transaction."""
    return [read_tool(reader, session_factory) for reader in READERS]
