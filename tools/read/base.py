"""What every read tool has in common: validated arguments, compact JSON values, bounded lists.

A reader is a plain function ``fn(session, **arguments) -> dict`` decorated with
:func:`reader`, which validates the arguments against a pydantic model (the same model the
LangChain tool shows the model as its ``args_schema``) and turns invalid arguments into a
:class:`~tools.errors.ToolError` with a message that says what to send instead.

Results are JSON-serialisable as they are: money is a string with two decimals, dates are ISO
8601, rates are floats in [0, 1]. Every list is bounded; a result that holds one says so with
``truncated`` and the full count.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from tools import sites
from tools.errors import NotFound, ToolError
from tools.models import Customer, Order, Warehouse

__all__ = [
    "MAX_LIST",
    "MAX_PAGE",
    "Args",
    "bounded",
    "id_field",
    "invalid_arguments",
    "iso",
    "limit_field",
    "money",
    "offset_field",
    "page",
    "rate",
    "reader",
    "require",
    "schema_of",
]

MAX_PAGE = 50  # the largest page a paginated reader returns
MAX_LIST = 50  # the longest list any other reader returns
CENT = Decimal("0.01")

P = ParamSpec("P")
R = TypeVar("R")


class Args(BaseModel):
    """Base of every reader's arguments: unknown arguments refused, text stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def id_field(description: str, example: str, *, required: bool = True) -> Any:
    """A record id (1–32 characters): ``description`` is what the model reads."""
    return Field(
        ... if required else None, min_length=1, max_length=32, description=description, examples=[example]
    )


def limit_field() -> Any:
    return Field(
        20,
        ge=1,
        le=MAX_PAGE,
        description=f"page size: how many results to return, 1 to {MAX_PAGE} (default 20)",
        examples=[20],
    )


def offset_field() -> Any:
    return Field(
        0,
        ge=0,
        description="how many results to skip; pass the previous page's next_offset to get the next page",
        examples=[0],
    )


def reader(
    schema: type[Args],
) -> Callable[[Callable[Concatenate[Session, P], R]], Callable[Concatenate[Session, P], R]]:
    """Validate a reader's arguments against ``schema``; invalid ones raise :class:`ToolError`."""

    def decorate(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
        params = list(inspect.signature(fn).parameters)[1:]
        if params != list(schema.model_fields):
            raise TypeError(f"{fn.__name__}: parameters {params} differ from {schema.__name__} fields")

        @functools.wraps(fn)
        def run(session: Session, *args: P.args, **kwargs: P.kwargs) -> R:
            if len(args) > len(params):
                raise TypeError(f"{fn.__name__} takes at most {len(params)} positional arguments")
            given: dict[str, Any] = dict(zip(params, args, strict=False))
            if clash := given.keys() & kwargs.keys():
                raise TypeError(f"{fn.__name__} got multiple values for {sorted(clash)}")
            given.update(kwargs)
            try:
                valid = schema.model_validate(given)
            except ValidationError as exc:
                raise ToolError(invalid_arguments(exc, schema)) from exc
            call = cast(Callable[..., R], fn)  # the validated arguments go in by name
            return call(session, **{name: getattr(valid, name) for name in params})

        run.args_schema = schema  # type: ignore[attr-defined]
        return run

    return decorate


def schema_of(fn: Callable[..., Any]) -> type[Args]:
    """The argument model of a function decorated with :func:`reader`."""
    return fn.args_schema  # type: ignore[attr-defined]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _explain(err: Mapping[str, Any], fields: Sequence[str]) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    field = str(err["loc"][-1]) if err["loc"] else ""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not an argument of this tool; its arguments are {', '.join(fields)}"
    if kind.startswith("date") or kind.startswith("datetime"):
        return f"expected a date as YYYY-MM-DD such as 2026-11-25 (got {_shown(got)})"
    if kind == "less_than_equal":
        hint = "; use offset to page through more" if field == "limit" else ""
        return f"must be at most {ctx.get('le')} (got {_shown(got)}){hint}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')} (got {_shown(got)})"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')} (got {_shown(got)})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number (got {_shown(got)})"
    if kind == "string_type":
        return f"expected text (got {_shown(got)})"
    if kind == "string_too_short":
        size = ctx.get("min_length", 1)
        return "must not be empty" if size == 1 else f"must be at least {size} characters (got {_shown(got)})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg']} (got {_shown(got)})"


def invalid_arguments(exc: ValidationError, schema: type[BaseModel]) -> str:
    """One line naming every invalid argument and what is expected instead."""
    fields = list(schema.model_fields)
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        reason = _explain(err, fields)
        problems.append(f"{loc}: {reason}" if loc else reason)
    return "invalid arguments: " + "; ".join(problems)


def require(session: Session, model: type[Any], key: Any, kind: str) -> Any:
    """The record with primary key ``key``, or :class:`NotFound` naming ``kind``.

    An order, customer or warehouse outside the session's sites (``tools.sites``) is not found
    either, with the same message: a scoped user cannot tell it from an unknown id.
    """
    row = session.get(model, key)
    if row is None or not _in_sites(session, row):
        raise NotFound(kind, key if isinstance(key, str) else "/".join(map(str, key)))
    return row


def _in_sites(session: Session, row: Any) -> bool:
    if sites.scope_of(session).unrestricted:
        return True
    if isinstance(row, Order):
        return sites.warehouse_visible(session, row.warehouse_id)
    if isinstance(row, Customer):
        return sites.customer_visible(session, row.customer_id)
    if isinstance(row, Warehouse):
        return sites.warehouse_visible(session, row.warehouse_id)
    return True


def money(value: Decimal | float | int | None) -> str | None:
    if value is None:
        return None
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def rate(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def bounded(items: Sequence[Any], cap: int = MAX_LIST) -> tuple[list[Any], bool]:
    """The first ``cap`` items and whether any were left out."""
    return list(items[:cap]), len(items) > cap


def page(rows: list[Any], *, total: int, offset: int, key: str = "results") -> dict[str, Any]:
    """A page of ``rows`` starting at ``offset`` out of ``total``, with the next page's offset."""
    end = offset + len(rows)
    next_offset = end if end < total else None
    return {
        "total": total,
        "offset": offset,
        "count": len(rows),
        "next_offset": next_offset,
        "truncated": next_offset is not None,
        key: rows,
    }
