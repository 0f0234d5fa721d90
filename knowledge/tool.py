"""``search_sops``: SOP retrieval as a READ tool for the agent (the only module here that imports LangChain)."""

from __future__ import annotations

import inspect
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, ValidationError, field_validator

from knowledge.retrieve import retrieve
from tools.domain import EXCEPTION_TYPES

__all__ = ["SearchSopsArgs", "build_sop_tool"]

MAX_K = 8


class SearchSopsArgs(BaseModel):
    question: str = Field(
        min_length=3,
        description="What you need the procedure for, in plain words, e.g. 'who may release a credit hold above 10 % overage'.",
    )
    exception_types: list[str] | None = Field(
        default=None,
        description="Only passages from SOPs that apply to these exception types, e.g. ['CREDIT_HOLD']. "
        f"One or more of: {', '.join(EXCEPTION_TYPES)}. Leave out to search every SOP.",
    )
    k: int = Field(default=4, ge=1, le=MAX_K, description=f"How many passages to return, 1 to {MAX_K}.")

    @field_validator("exception_types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        unknown = [t for t in value or [] if t not in EXCEPTION_TYPES]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} not an exception type; "
                f"use one of {', '.join(EXCEPTION_TYPES)}"
            )
        return value or None


def build_sop_tool(collection) -> BaseTool:
    """``search_sops`` over ``collection`` (an SOP index built by :func:`knowledge.ingest.ingest`), declared READ."""

    def search_sops(question: str, exception_types: list[str] | None = None, k: int = 4) -> dict[str, Any]:
        """Search the standard operating procedures (SOPs) for the passages that answer a question.

        Use it before you recommend or explain an action: to find who may approve it, the thresholds,
        the checks to run first, the escalation path, or the wording to use with the customer. Pass the
        exception type you are working on to keep to the procedures that apply to it.

        Examples:
          search_sops(question="who can release a credit hold above the limit", exception_types=["CREDIT_HOLD"])
          search_sops(question="how to rebook a shipment after a missed carrier pickup", k=3)
          search_sops(question="export control screening before shipping")

        Returns the best passages first, each with its citation (e.g. "SOP-CREDIT-001 §3.2"), the SOP
        title and section heading, a similarity score (higher is closer) and the passage text. Base your
        answer on the passage text and quote the citation in square brackets, e.g. [SOP-CREDIT-001 §3.2].
        An empty list means no SOP covers the question: say so rather than inventing a procedure.
        """
        passages = retrieve(question, exception_types, k, collection=collection)
        return {
            "question": question,
            "exception_types": exception_types or [],
            "passages": [
                {
                    "citation": p.citation,
                    "title": p.title,
                    "heading": p.heading,
                    "score": p.score,
                    "text": p.text,
                }
                for p in passages
            ],
        }

    return StructuredTool.from_function(
        func=search_sops,
        name="search_sops",
        description=inspect.cleandoc(search_sops.__doc__ or ""),
        args_schema=SearchSopsArgs,
        handle_tool_error=True,
        handle_validation_error=_invalid_arguments,
        metadata={"kind": "READ"},
    )


def _invalid_arguments(exc: ValidationError) -> str:
    """The model's arguments failed the schema: one line naming each argument and why."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{loc}: {msg}" if loc else msg)
    return "invalid arguments: " + "; ".join(problems)
