"""Run eval cases hermetically and score them on outcomes (tau-bench style).

Each case gets a fresh SQLite database — a copy of one migrated template file — holding only its
fixture, the run's SOP index and the default policy. Its input goes through the entry a user hits
(triage by order id, or the free-text path for a ``message``); the runner checks every ``expect``
key, then approves the recommendation as the demo user holding the approver role through the real
approval step, approves it once more (a retry must not execute again), and checks the records
(``after_approval``), the actions that must not have executed (``never``) and the invariants.

A check whose machinery is missing (a contract not committed yet) is reported as ``not_run`` with
the reason — never as passed. A case passes when every check ran and passed and no invariant broke.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.governance.users import add_user
from evals.attacks import run_attack
from evals.notice_checks import notice_checks
from evals.state import check_after, executed_actions, invariant_violations
from evals.suite import EvalCase
from tools.db import make_engine, session_factory, upgrade
from tools.fixtures import load_fixture
from tools.writes import missing_inputs

__all__ = [
    "REQUESTER",
    "CaseResult",
    "Check",
    "NotRun",
    "RunEnv",
    "run_case",
    "run_cases",
    "template_database",
]

# The eval's own user: it proposes every action (role planner) and, since nobody decides their own
# request, never approves one; the demo user named after the approver role decides.
REQUESTER = "qa-eval"

PASS, FAIL, NOT_RUN, SKIPPED = "pass", "fail", "not_run", "skipped"


class NotRun(Exception):
    """A step cannot run here (e.g. a contract is not committed yet); the reason is reported."""


@dataclass
class Check:
    name: str
    status: str  # pass | fail | not_run | skipped (not asked of the case; the detail says why)
    detail: str = ""


@dataclass
class CaseResult:
    suite: str
    id: str
    status: str  # pass | fail | incomplete | error
    checks: list[Check]
    violations: list[str]
    seconds: float
    expected_types: list[str] = field(default_factory=list)
    detected_types: list[str] = field(default_factory=list)
    expected_action: list[str] | None = None
    action: str | None = None
    expected_role: str | None = None
    role: str | None = None
    executed: list[dict[str, Any]] = field(default_factory=list)
    explanation: str | None = None  # the text (first 800 characters), for the reader of the report
    citations: list[str] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    fallback: bool | None = None
    grounding_failure: bool | None = None
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        """The result ``as_dict`` wrote (e.g. a line of a run's journal)."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["checks"] = [Check(**c) for c in data.get("checks") or []]
        return cls(**values)


@dataclass
class RunEnv:
    """What every case of a run shares: the migrated template, the SOP index, the policy."""

    workdir: Path
    template: Path
    policy: Any
    collection: Any = None
    valid_citations: frozenset[str] = frozenset()
    applies_to: dict[str, frozenset[str]] = field(default_factory=dict)
    engine: Any = field(init=False)
    factory: Any = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(f"sqlite:///{self.db_path}")
        self.factory = session_factory(self.engine)

    @property
    def db_path(self) -> Path:
        return self.workdir / "case.db"

    def case_files(self) -> list[Path]:
        """The case database and what lives beside it (WAL, shared memory, graph checkpoints)."""
        return [p for p in self.workdir.iterdir() if p.name.startswith("case.")]

    def close(self) -> None:
        self.engine.dispose()


def template_database(workdir: Path) -> Path:
    """A migrated, empty SQLite file that each case copies (migrating per case would cost ~1 s)."""
    path = workdir / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            add_user(
                session, REQUESTER, "planner", "QA eval runner (proposes; never decides its own requests)"
            )
            session.commit()
    finally:
        engine.dispose()  # last connection closed: the WAL is checkpointed into the file
    return path


@contextmanager
def _case_db(env: RunEnv, name: str) -> Iterator[sessionmaker[Session]]:
    """The case's fresh database: the template copied to the run's one database path.

    Every case uses the same path, engine and session factory (the engine's connections are closed
    and the files replaced between cases), so SQLAlchemy compiles each statement once per run
    instead of once per case; the graph checkpoints beside the database are removed with it.
    """
    env.engine.dispose()
    for path in env.case_files():
        path.unlink(missing_ok=True)
    shutil.copyfile(env.template, env.db_path)
    try:
        yield env.factory
    finally:
        env.engine.dispose()


# ------------------------------------------------------------------------------------------------
# checks of one order's triage result
# ------------------------------------------------------------------------------------------------


def _types(result: dict[str, Any]) -> list[str]:
    return sorted({e["type"] for e in result.get("exceptions") or []})


def _plan_actions(result: dict[str, Any]) -> list[str]:
    return [a["action"] for a in result.get("plan") or []]


def doc_ids(citations: Iterable[Any]) -> list[str]:
    """``SOP-CREDIT-001`` from ``SOP-CREDIT-001 §3.2`` (or from a citation dict's ``citation``)."""
    out = []
    for c in citations:
        out.append(_citation_text(c).strip("[]").split(" ", 1)[0])
    return out


def _citation_text(c: Any) -> str:
    return str(c.get("citation") or c.get("doc_id") or "") if isinstance(c, dict) else str(c)


def order_checks(prefix: str, result: dict[str, Any], expect: dict[str, Any], env: RunEnv) -> list[Check]:
    """The ``expect`` keys that concern one order's triage (exceptions, action, risk, role, SOP, plan)."""
    checks: list[Check] = []
    rec = result.get("recommendation") or None

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append(Check(f"{prefix}{name}", PASS if ok else FAIL, "" if ok else detail))

    if "exceptions" in expect:
        types, want = _types(result), sorted(set(expect["exceptions"]))
        add("exceptions", types == want, f"detected {types}, expected {want}")
    if "action" in expect:
        got = rec["action"] if rec else None
        add("action", got == expect["action"], f"recommended {got}, expected {expect['action']}")
    if "action_any_of" in expect:
        got = rec["action"] if rec else None
        add(
            "action",
            got in expect["action_any_of"],
            f"recommended {got}, expected one of {expect['action_any_of']}",
        )
    if "risk" in expect:
        got = rec.get("risk") if rec else None
        add("risk", got == expect["risk"], f"risk {got}, expected {expect['risk']}")
    if "approver_role" in expect:
        got = rec.get("approver_role") if rec else None
        add(
            "approver_role",
            got == expect["approver_role"],
            f"approver {got}, expected {expect['approver_role']}",
        )
    if "in_plan" in expect:
        plan = _plan_actions(result)
        missing = [a for a in expect["in_plan"] if a not in plan]
        add("in_plan", not missing, f"plan {plan} lacks {missing}")
    if "plan" in expect:
        plan = _plan_actions(result)
        add("plan", plan == expect["plan"], f"plan {plan}, expected {expect['plan']}")
    if "cites_sop_for" in expect:
        checks.append(_cites_check(prefix, result, expect["cites_sop_for"], env))
    return checks


def _cites_check(prefix: str, result: dict[str, Any], kind: str, env: RunEnv) -> Check:
    name = f"{prefix}cites_sop_for"
    explanation = result.get("explanation")
    if explanation is None:
        return Check(name, NOT_RUN, "no explanation in the triage result")
    cited = doc_ids(explanation.get("citations") or [])
    fitting = [d for d in cited if kind in env.applies_to.get(d, ())]
    if fitting:
        return Check(name, PASS)
    return Check(name, FAIL, f"explanation cites {cited or 'nothing'}, none applies to {kind}")


# ------------------------------------------------------------------------------------------------
# one case
# ------------------------------------------------------------------------------------------------


def run_case(case: EvalCase, subject, env: RunEnv) -> CaseResult:
    """Run one case against ``subject`` (see evals.subjects) in a fresh database and score it."""
    checks: list[Check] = []
    expect = case.expect
    res = CaseResult(
        case.suite,
        case.id,
        FAIL,
        checks,
        [],
        0.0,
        expected_types=sorted(set(expect.get("exceptions") or [])),
        expected_action=[expect["action"]] if "action" in expect else expect.get("action_any_of"),
        expected_role=expect.get("approver_role"),
    )
    with _case_db(env, case.key) as factory:
        with factory() as session:
            load_fixture(session, case.fixture, case_id=case.id)
        subject.bind(factory, env)
        started = time.perf_counter()
        first: dict[str, Any] | None = None
        named: list[str] = []
        try:
            if "order_id" in case.input:
                first = subject.triage(case.input["order_id"])
                if "error" in first:
                    checks.append(Check("triage", FAIL, f"{case.input['order_id']}: {first['error']}"))
                    first = None
            else:
                out = subject.triage_text(case.input["message"])
                named = list(out.get("order_ids") or [])
                if "orders" in expect:
                    ok = named == list(expect["orders"])
                    checks.append(
                        Check(
                            "orders",
                            PASS if ok else FAIL,
                            "" if ok else f"named {named}, expected {expect['orders']}",
                        )
                    )
                by_id = {r.get("order_id"): r for r in out.get("results") or []}
                first = by_id.get(named[0]) if named else None
                for oid, sub in (expect.get("per_order") or {}).items():
                    if oid in by_id:
                        checks.extend(order_checks(f"{oid}.", by_id[oid], sub, env))
                    else:
                        checks.append(Check(f"{oid}.triage", FAIL, f"{oid} was not triaged"))
        except NotRun as exc:
            _not_run_all(checks, expect, str(exc))
            res.seconds = time.perf_counter() - started
            res.status = _status(checks, res.violations)
            _usage(res, subject)
            return res
        res.seconds = time.perf_counter() - started
        _usage(res, subject)
        if first is not None:
            checks.extend(
                order_checks(
                    "", first, {k: v for k, v in expect.items() if k not in ("per_order", "orders")}, env
                )
            )
            _record_outcome(res, first, env)
        elif "message" in case.input and not named:
            # domain.md §5: a message naming no existing order triages nothing (the copilot asks for
            # an order number): no exception is detected and there is no recommendation
            nothing: dict[str, Any] = {"exceptions": [], "plan": [], "recommendation": None}
            checks.extend(
                order_checks(
                    "", nothing, {k: v for k, v in expect.items() if k not in ("per_order", "orders")}, env
                )
            )
        elif any(k in expect for k in ("exceptions", "action", "risk", "approver_role", "cites_sop_for")):
            checks.append(Check("triage", FAIL, "no order was triaged"))

        with factory() as session:
            before = executed_actions(session)
        checks.append(
            Check(
                "nothing executed before approval",
                PASS if not before else FAIL,
                "" if not before else f"executed without a decision: {[e['action'] for e in before]}",
            )
        )
        if before:
            res.violations.append(f"executed before any approval: {[e['action'] for e in before]}")
        if case.attack is not None:
            checks.extend(_attack_checks(case, env, factory))

        approval_note = None
        unsupplied = _unsupplied_inputs(factory, first, case.approve_params)
        if first is not None and unsupplied and "after_approval" not in expect:
            # Only an approver can supply these values and the case asks nothing of the approval:
            # it is judged on what it states, and the report says the approval was skipped.
            checks.append(
                Check(
                    "approval",
                    SKIPPED,
                    f"{first['recommendation']['action']} needs values an approver supplies "
                    f"({', '.join(unsupplied)}); the case states no approve_params and no after_approval",
                )
            )
        elif first is not None and first.get("recommendation"):
            try:
                request = subject.approve(first, case.approve_params)
                ok = request.get("status") == "executed"
                why = f"request {request.get('id')} {request.get('action')} is {request.get('status')}"
                reasons = (request.get("guard") or {}).get("reasons") or []
                error = (request.get("execution") or {}).get("error") or request.get("error")
                checks.append(
                    Check(
                        "approval",
                        PASS if ok else FAIL,
                        "" if ok else "; ".join([why, *map(str, reasons), *([str(error)] if error else [])]),
                    )
                )
            except NotRun as exc:
                approval_note = str(exc)
            except Exception as exc:  # an approval step that fails is a failed case, not a crash of the run
                checks.append(Check("approval", FAIL, f"{type(exc).__name__}: {exc}"))
        with factory() as session:
            if "after_approval" in expect:
                if approval_note:
                    checks.append(Check("after_approval", NOT_RUN, approval_note))
                else:
                    problems = check_after(session, expect["after_approval"])
                    checks.append(Check("after_approval", FAIL if problems else PASS, "; ".join(problems)))
            executed = executed_actions(session)
            res.executed = executed
            if "never" in expect:
                if approval_note:
                    checks.append(Check("never", NOT_RUN, approval_note))
                else:
                    bad = [e["action"] for e in executed if e["action"] in expect["never"]]
                    checks.append(Check("never", FAIL if bad else PASS, f"executed {bad}" if bad else ""))
            if "notice" in expect:
                if approval_note:
                    checks.append(Check("notice", NOT_RUN, approval_note))
                else:
                    session.close()
                    for name, ok, detail in notice_checks(
                        factory, env.policy, getattr(subject, "llm", None), expect["notice"]
                    ):
                        checks.append(Check(name, PASS if ok else FAIL, "" if ok else detail))
            violations, audit_ok, audit_note = invariant_violations(session)
            res.violations.extend(violations)
            checks.append(
                Check(
                    "audit chain",
                    NOT_RUN if audit_ok is None else PASS if audit_ok else FAIL,
                    "" if audit_ok else audit_note or "",
                )
            )
            if approval_note and first is not None and first.get("recommendation"):
                checks.append(Check("approval", NOT_RUN, approval_note))
    res.status = _status(checks, res.violations)
    return res


def _attack_checks(case: EvalCase, env: RunEnv, factory) -> list[Check]:
    """Carry out the case's attack on the approval step; check how it ended and the records after."""
    if case.attack is None:
        return []
    outcome, detail = run_attack(factory, env.policy, case.attack, case.input.get("order_id"), REQUESTER)
    want = case.expect.get("attack")
    checks = [
        Check("attack", PASS if outcome == want else FAIL, "" if outcome == want else f"{outcome}: {detail}")
    ]
    if "after_attack" in case.expect:
        with factory() as session:
            problems = check_after(session, case.expect["after_attack"])
        checks.append(Check("after_attack", FAIL if problems else PASS, "; ".join(problems)))
    return checks


def _unsupplied_inputs(
    factory, result: dict[str, Any] | None, approve_params: dict[str, Any] | None
) -> list[str]:
    """The values only an approver can supply (FIX_MASTER_DATA's empty ship-to fields) that the
    recommendation needs and the case does not give, read from the records (any subject)."""
    rec = (result or {}).get("recommendation") or {}
    if not rec.get("action") or not isinstance(rec.get("params"), dict):
        return []
    with factory() as session:
        return missing_inputs(session, rec["action"], {**rec["params"], **(approve_params or {})})


def _not_run_all(checks: list[Check], expect: dict[str, Any], reason: str) -> None:
    for key in expect:
        checks.append(Check(key, NOT_RUN, reason))


def _usage(res: CaseResult, subject) -> None:
    usage = subject.usage()
    res.llm_calls, res.prompt_tokens, res.completion_tokens = (
        usage.get("calls", 0),
        usage.get("prompt_tokens", 0),
        usage.get("completion_tokens", 0),
    )


def _record_outcome(res: CaseResult, result: dict[str, Any], env: RunEnv) -> None:
    rec = result.get("recommendation") or None
    res.detected_types = _types(result)
    res.action = rec["action"] if rec else None
    res.role = rec.get("approver_role") if rec else None
    explanation = result.get("explanation")
    if explanation is not None:
        res.explanation = str(explanation.get("text") or "")[:800]
        cited = [_citation_text(c) for c in explanation.get("citations") or []]
        res.citations = cited
        res.invalid_citations = [c for c in cited if c not in env.valid_citations]
        res.fallback = bool(explanation.get("fallback"))
        reason = str(explanation.get("reason") or "").lower()
        res.grounding_failure = res.fallback and (
            "ground" in reason or "unsupported" in reason or "cite" in reason
        )


def _status(checks: list[Check], violations: list[str]) -> str:
    if violations or any(c.status == FAIL for c in checks):
        return "fail"
    if any(c.status == NOT_RUN for c in checks):
        return "incomplete"
    return "pass"


def run_cases(
    cases: list[EvalCase],
    subject,
    env: RunEnv,
    *,
    repeat: int = 1,
    on_result: Callable[[int, CaseResult], None] | None = None,
    done: dict[tuple[int, str], CaseResult] | None = None,
) -> list[list[CaseResult]]:
    """Every case ``repeat`` times; returns one list of results per repetition.

    ``done``: results already recorded by an interrupted run, by (repetition, case key); those cases
    are not run again. ``on_result(repetition, result)`` is called after each case that ran.
    """
    runs: list[list[CaseResult]] = []
    done = done or {}
    for rep in range(repeat):
        results = []
        for case in cases:
            if (rep, case.key) in done:
                results.append(done[(rep, case.key)])
                continue
            try:
                result = run_case(case, subject, env)
            except Exception as exc:  # one broken case is reported, the run goes on
                result = CaseResult(
                    case.suite,
                    case.id,
                    "error",
                    [Check("run", FAIL, f"{type(exc).__name__}: {exc}")],
                    [],
                    0.0,
                    error=f"{type(exc).__name__}: {exc}",
                    expected_types=sorted(set(case.expect.get("exceptions") or [])),
                )
            results.append(result)
            if on_result:
                on_result(rep, result)
        runs.append(results)
    return runs


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="copilot-eval-"))
