"""Find and read eval suites (format: ../shared/domain.md §5) and check each case's ``expect``.

A suite is named by a path (a YAML file, or a folder whose ``*.yaml`` files are all read) or by a
name: ``credit`` is ``evals/suites/credit.yaml``, ``all`` every suite there. Beyond the keys of
domain.md §5 a case may hold ``why`` (the rule that gives its expectation, for the reader) and
``approve_params`` (values the approver supplies, e.g. the ship-to fields of ``FIX_MASTER_DATA``);
``expect`` may also hold ``in_plan`` (actions the order's plan must contain), ``plan`` (the plan's
actions, exactly, in order), and for a ``message`` input ``orders`` (the orders it names, in
order) and ``per_order`` (expectations for the orders after the first). A case may hold an
``attack`` on the approval step (``evals.attacks``), with ``expect.attack`` (how it must end) and
``expect.after_attack`` (the records after it). A misspelt key is an error,
not a silently skipped check.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from agent.policy import ACTIONS, load_policy
from evals.attacks import attack_problems
from evals.notice_checks import NOTICE_KEYS
from tools.domain import EXCEPTION_TYPES
from tools.fixtures import MODELS, FixtureError, SuiteError, read_suite, validate_fixture

__all__ = ["SUITES_DIR", "EvalCase", "load_cases", "resolve_suites", "suite_names"]

SUITES_DIR = Path(__file__).resolve().parent / "suites"

EXPECT_KEYS = frozenset(
    {
        "exceptions",
        "action",
        "action_any_of",
        "risk",
        "approver_role",
        "cites_sop_for",
        "after_approval",
        "never",
        "in_plan",
        "plan",
        "orders",
        "per_order",
        "attack",
        "after_attack",
        "notice",
    }
)
ORDER_KEYS = frozenset(
    {"exceptions", "action", "action_any_of", "risk", "approver_role", "cites_sop_for", "in_plan", "plan"}
)
CASE_KEYS = frozenset({"id", "why", "fixture", "input", "expect", "approve_params", "attack"})
ATTACK_OUTCOMES = ("refused", "blocked", "pending_approval", "executed", "failed")
RISKS = ("none", "low", "medium", "high")
LIST_KEYS = frozenset({"exceptions", "action_any_of", "never", "in_plan", "plan"})


@dataclass(frozen=True)
class EvalCase:
    suite: str
    id: str
    fixture: dict[str, Any]
    input: dict[str, Any]
    expect: dict[str, Any]
    approve_params: dict[str, Any] | None = None
    why: str = ""
    attack: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.id}"


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def resolve_suites(spec: str) -> list[Path]:
    """The suite files ``spec`` names: a YAML file, a folder of them, a suite name, or ``all``."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise SuiteError(f"{path}: no *.yaml suite files in this folder")
        return files
    if path.is_file():
        return [path]
    if spec == "all":
        return sorted(SUITES_DIR.glob("*.yaml"))
    named = SUITES_DIR / f"{spec}.yaml"
    if named.is_file():
        return [named]
    raise SuiteError(
        f"no suite {spec!r}: give a YAML file, a folder, 'all' or one of {', '.join(suite_names())}"
    )


def _check(path: Path, raw: dict[str, Any]) -> None:
    cid = raw["id"]

    def bad(msg: str) -> SuiteError:
        return SuiteError(f"{path}: case {cid}: {msg}")

    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(unknown))}; a case holds {', '.join(sorted(CASE_KEYS))}")
    inp = raw.get("input")
    if (
        not isinstance(inp, dict)
        or len(inp) != 1
        or not (_text(inp.get("order_id")) or _text(inp.get("message")))
    ):
        raise bad("input must be {order_id: ID} or {message: TEXT}")
    expect = raw.get("expect") or {}
    if not isinstance(expect, dict):
        raise bad("expect must be a mapping")
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise bad(
            f"expect: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(EXPECT_KEYS))}"
        )
    for key in ("exceptions", "never", "in_plan", "plan", "orders", "action_any_of"):
        if key in expect and not isinstance(expect[key], list):
            raise bad(f"expect.{key} must be a list")
    unknown_notice = set(expect.get("notice") or {}) - NOTICE_KEYS
    if unknown_notice:
        raise bad(f"expect.notice: unknown key(s) {', '.join(sorted(unknown_notice))}")
    if "after_approval" in expect:
        after = expect["after_approval"]
        if not isinstance(after, dict) or any(not isinstance(k, str) or k.count(".") < 2 for k in after):
            raise bad(
                "expect.after_approval maps table.KEY.field to a value, e.g. orders.SO1.status: released"
            )
    if not isinstance(expect.get("per_order") or {}, dict):
        raise bad("expect.per_order maps an order id to its expectations")
    for oid, sub in (expect.get("per_order") or {}).items():
        if not isinstance(sub, dict) or set(sub) - ORDER_KEYS:
            raise bad(f"expect.per_order.{oid}: a mapping of {', '.join(sorted(ORDER_KEYS))}")
    problem = _value_problem(expect)
    if problem:
        raise bad(problem)
    try:
        validate_fixture(raw.get("fixture") or {}, case_id=str(cid))
    except FixtureError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    if "approve_params" in raw and not isinstance(raw["approve_params"], dict):
        raise bad("approve_params must be a mapping of parameter to value")
    if "attack" in raw:
        problems = attack_problems(raw["attack"])
        if problems:
            raise bad("; ".join(problems))
    if ("attack" in expect or "after_attack" in expect) != ("attack" in raw):
        raise bad(
            "expect.attack and expect.after_attack go with an attack, and an attack needs expect.attack"
        )
    if "attack" in expect and expect["attack"] not in ATTACK_OUTCOMES:
        raise bad(f"expect.attack is one of {', '.join(ATTACK_OUTCOMES)}")


@cache
def _roles() -> frozenset[str]:
    """The roles of the default policy, which every eval case runs under."""
    return frozenset(load_policy().roles)


def _value_problem(expect: dict[str, Any], where: str = "expect") -> str | None:
    """The first name in ``expect``'s values that the contract does not know, or None.

    A misspelt action in ``never`` would otherwise be a check that always passes, and a misspelt
    type or role a case that fails for a reason that is not the copilot's.
    """
    kinds = {
        "exceptions": (EXCEPTION_TYPES, "an exception type"),
        "cites_sop_for": (EXCEPTION_TYPES, "an exception type"),
        "action": (ACTIONS, "an action"),
        "action_any_of": (ACTIONS, "an action"),
        "never": (ACTIONS, "an action"),
        "in_plan": (ACTIONS, "an action"),
        "plan": (ACTIONS, "an action"),
        "risk": (RISKS, f"one of {', '.join(RISKS)}"),
        "approver_role": (_roles(), "a role"),
    }
    for key, (known, what) in kinds.items():
        if key not in expect:
            continue
        value = expect[key]
        if key in LIST_KEYS and isinstance(value, list):
            items = [(f"{where}.{key}[{i}]", v) for i, v in enumerate(value)]
        elif key == "action" and value is None:  # action: null = no recommendation
            items = []
        else:
            items = [(f"{where}.{key}", value)]
        for at, item in items:
            if not isinstance(item, str) or item not in known:
                return f"{at}: {item!r} is not {what}"
    for target in expect.get("after_approval") or {}:
        table, field = target.split(".", 1)[0], target.rsplit(".", 1)[-1]
        if table not in MODELS:
            return f"{where}.after_approval: {target!r}: unknown table {table}; tables: {', '.join(MODELS)}"
        if field not in MODELS[table].__table__.c:
            return f"{where}.after_approval: {target!r}: unknown field {field} of {table}"
    for oid, sub in (expect.get("per_order") or {}).items():
        problem = _value_problem(sub, f"{where}.per_order.{oid}")
        if problem:
            return problem
    return None


def _text(value: Any) -> bool:
    """A text or a plain number: YAML reads an unquoted id such as 4500098761 as a number, and a
    fixture takes it as the text it is (tools.fixtures.coerce_value), so the case's input does too."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def _as_text(value: Any) -> Any:
    return str(value) if _text(value) else value


def _normalised(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The case's input and expect with the order ids it names as text (see :func:`_text`)."""
    inp = {k: _as_text(v) for k, v in raw["input"].items()}
    expect = dict(raw.get("expect") or {})
    if isinstance(expect.get("orders"), list):
        expect["orders"] = [_as_text(o) for o in expect["orders"]]
    if isinstance(expect.get("per_order"), dict):
        expect["per_order"] = {_as_text(k): v for k, v in expect["per_order"].items()}
    return inp, expect


def _read(path: Path) -> dict[str, Any]:
    """The suite file, parsed by libyaml (the full suite in ~1 s instead of ~15 s on a busy machine).

    Anything unusual — unreadable, malformed, a bad outline — is left to ``read_suite``, whose
    errors name the file and line.
    """
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return read_suite(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return read_suite(path)
    cases = data.get("cases") if isinstance(data, dict) else None
    ids = (
        [c.get("id") for c in cases]
        if isinstance(cases, list) and all(isinstance(c, dict) for c in cases)
        else None
    )
    if (
        not isinstance(data.get("suite") if isinstance(data, dict) else None, str)
        or ids is None
        or not all(isinstance(i, str) and i.strip() for i in ids)
        or len(set(ids)) != len(ids)
    ):
        return read_suite(path)
    return data


def load_cases(spec: str) -> list[EvalCase]:
    """Every case of the suites ``spec`` names, checked; raises :class:`SuiteError` naming the problem."""
    cases: list[EvalCase] = []
    for path in resolve_suites(spec):
        data = _read(path)
        for raw in data["cases"]:
            _check(path, raw)
            inp, expect = _normalised(raw)
            cases.append(
                EvalCase(
                    suite=data["suite"],
                    id=raw["id"],
                    fixture=raw.get("fixture") or {},
                    input=inp,
                    expect=expect,
                    approve_params=raw.get("approve_params"),
                    why=raw.get("why") or "",
                    attack=raw.get("attack"),
                )
            )
    keys = [c.key for c in cases]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise SuiteError(f"case ids appear twice across the suites: {', '.join(dupes)}")
    return cases
