"""Prompt templates as files, one per task, rendered with strict placeholders.

    from prompts import load
    messages = load("explain").messages(facts="...", passages="...")   # [{"role", "content"}, ...]
    text = load("chat_system").render(tools="...")                        # the whole file as one text

A template is ``prompts/<name>.txt``. Placeholders are ``$name`` or ``${name}`` (``$$`` is a
literal dollar sign); rendering with a value missing or an unexpected value is an error, so a
prompt and its caller cannot drift apart silently. A file may be split into chat messages by lines
``--- system ---``, ``--- user ---`` and ``--- assistant ---``; without them ``messages()`` gives one
user message. ``Prompt.sha256`` identifies the template's exact text (evals record it).

``facts_json(value)`` writes a tool's result for a prompt in as few tokens as it takes: compact JSON
without the empty fields (every prompt token costs the local model time before its first word).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

__all__ = ["PROMPT_DIR", "Prompt", "PromptError", "facts_json", "load", "names"]

PROMPT_DIR = Path(__file__).resolve().parent
_SECTION = re.compile(r"^--- (system|user|assistant) ---[ \t]*$", re.M)


class PromptError(ValueError):
    """A prompt file is missing or malformed, or was rendered with the wrong values."""


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(Template(self.text).get_identifiers())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **values: object) -> str:
        """The whole template with every placeholder filled: exactly the placeholders, no more, no less."""
        expected = self.placeholders
        missing, extra = expected - values.keys(), values.keys() - expected
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(sorted(missing))}")
            if extra:
                problems.append(f"unexpected {', '.join(sorted(extra))}")
            raise PromptError(f"prompt {self.name!r}: {'; '.join(problems)}")
        return Template(self.text).substitute({k: str(v) for k, v in values.items()})

    def messages(self, **values: object) -> list[dict[str, str]]:
        """The rendered template as chat messages, split at its ``--- role ---`` lines."""
        rendered = self.render(**values)
        parts = _SECTION.split(rendered)
        if len(parts) == 1:
            return [{"role": "user", "content": rendered.strip()}]
        if parts[0].strip():
            raise PromptError(f"prompt {self.name!r}: text before the first '--- role ---' line")
        return [
            {"role": role, "content": body.strip()}
            for role, body in zip(parts[1::2], parts[2::2], strict=False)
        ]


@functools.cache
def load(name: str) -> Prompt:
    """The template ``prompts/<name>.txt``; an unknown name or a malformed template is a ``PromptError``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise PromptError(f"bad prompt name {name!r}")
    path = PROMPT_DIR / f"{name}.txt"
    if not path.is_file():
        raise PromptError(f"no prompt named {name!r} (known: {', '.join(names())})")
    prompt = Prompt(name, path.read_text(encoding="utf-8"))
    if not Template(prompt.text).is_valid():
        raise PromptError(f"prompt {name!r}: a '$' that is neither a placeholder nor '$$'")
    return prompt


def names() -> list[str]:
    """Every prompt that ships, by name."""
    return sorted(p.stem for p in PROMPT_DIR.glob("*.txt"))


def _without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != [] and v != {} and v != ""}
    if isinstance(value, (list, tuple)):
        return [_without_empty(v) for v in value]
    return value


def facts_json(value: Any, limit: int = 6000) -> str:
    """``value`` as compact JSON (no spaces after separators, no null, empty or blank fields), at
    most ``limit`` characters; ``0``, ``false`` and empty strings inside lists are kept."""
    text = json.dumps(_without_empty(value), default=str, ensure_ascii=False, separators=(",", ":"))
    return text[:limit]
