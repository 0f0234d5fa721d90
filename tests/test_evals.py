"""Evals: the suites' coverage and format, the scorers, reports, the CLI, the baseline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from evals.suite import SUITES_DIR, load_cases, resolve_suites
from tests.cli_run import run
from tools.db import session_factory
from tools.domain import EXCEPTION_TYPES
from tools.fixtures import SuiteError, load_fixture

ALL = load_cases("all")

# Every branch of domain.md §4's decision order: (exception type, recommended action, ESCALATE role).
BRANCHES = {
    ("INVENTORY_SHORTFALL", "REALLOCATE_WAREHOUSE", None),
    ("INVENTORY_SHORTFALL", "APPROVE_SUBSTITUTION", None),
    ("INVENTORY_SHORTFALL", "SPLIT_SHIPMENT", None),
    ("INVENTORY_SHORTFALL", "UPDATE_PROMISE_DATE", None),
    ("INVENTORY_SHORTFALL", "ESCALATE", "procurement_buyer"),
    ("SUBSTITUTION_REQUEST", "APPROVE_SUBSTITUTION", None),
    ("SUBSTITUTION_REQUEST", "ESCALATE", "csr"),
    ("CREDIT_HOLD", "RELEASE_CREDIT_HOLD", None),
    ("PRICING_DISCREPANCY", "CORRECT_PRICE", None),
    ("CARRIER_DISRUPTION", "REBOOK_CARRIER", None),
    ("CARRIER_DISRUPTION", "EXPEDITE_FREIGHT", None),
    ("CARRIER_DISRUPTION", "UPDATE_PROMISE_DATE", None),
    ("CARRIER_DISRUPTION", "ESCALATE", "logistics_coordinator"),
    ("PROCUREMENT_DELAY", "EXPEDITE_PO", None),
    ("PROCUREMENT_DELAY", "ESCALATE", "procurement_buyer"),
    ("MASTER_DATA_INCOMPLETE", "FIX_MASTER_DATA", None),
    ("COMPLIANCE_HOLD", "COMPLIANCE_REVIEW", None),
}


def test_suites_hold_at_least_100_cases_covering_every_type_and_branch():
    assert len(ALL) >= 100
    assert {t for c in ALL for t in c.expect.get("exceptions") or []} == set(EXCEPTION_TYPES)
    covered = set()
    for c in ALL:
        types = c.expect.get("exceptions") or []
        if types and "action" in c.expect:
            role = c.expect.get("approver_role") if c.expect["action"] == "ESCALATE" else None
            covered.add((types[0], c.expect["action"], role))
    assert BRANCHES <= covered, BRANCHES - covered
    # RECURRING_ANOMALY's branch (ESCALATE to ops_manager) comes after the base exception's action.
    assert any(
        "ESCALATE" in (c.expect.get("in_plan") or [])
        and "RECURRING_ANOMALY" in c.expect.get("exceptions", [])
        for c in ALL
    )
    suites = {c.suite for c in ALL}
    assert {"multi", "free_text", "adversarial"} <= suites
    assert sum("message" in c.input for c in ALL) >= 8
    assert sum(len(c.expect.get("exceptions") or []) > 1 for c in ALL) >= 15
    for edge in (
        "stock-no-stock-anywhere",
        "price-expired-contract-still-charged",
        "carrier-no-alternative-escalate",
        "credit-zero-limit",
    ):
        assert any(c.id == edge for c in ALL)


def test_every_case_states_what_it_checks_and_every_fixture_loads(sqlite_engine):
    from tools.demo import reset

    factory = session_factory(sqlite_engine)
    for case in ALL:
        assert case.why and case.expect, case.key
        with factory() as s:
            load_fixture(s, case.fixture, case_id=case.id)
        reset(sqlite_engine)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["expect"].update(exception=["CREDIT_HOLD"]), "unknown key(s) exception"),
        (lambda c: c.update(input={"order": "SO1"}), "input must be"),
        (lambda c: c["expect"].update(after_approval={"orders.SO1": 1}), "table.KEY.field"),
        (lambda c: c.update(expected={}), "unknown key(s) expected"),
        # Found by the outside contract check (audit-decide): a misspelt name in a value was a
        # silently passing `never` check, a failing case (exit 1) or a traceback, not bad input.
        (
            lambda c: c["expect"].update(never=["REALOCATE_WAREHOUSE"]),
            "expect.never[0]: 'REALOCATE_WAREHOUSE' is not an action",
        ),
        (
            lambda c: c["expect"].update(exceptions=["CREDIT_HLD"]),
            "expect.exceptions[0]: 'CREDIT_HLD' is not an exception type",
        ),
        (
            lambda c: c["expect"].update(exceptions=[{"a": 1}]),
            "expect.exceptions[0]: {'a': 1} is not an exception type",
        ),
        (
            lambda c: c["expect"].update(action="CORRECT_PRCE"),
            "expect.action: 'CORRECT_PRCE' is not an action",
        ),
        (
            lambda c: c["expect"].update(action=["CORRECT_PRICE"]),
            "expect.action: ['CORRECT_PRICE'] is not an action",
        ),
        (
            lambda c: c["expect"].update(plan=["FIX_MASTERDATA"]),
            "expect.plan[0]: 'FIX_MASTERDATA' is not an action",
        ),
        (
            lambda c: c["expect"].update(risk="medum"),
            "expect.risk: 'medum' is not one of none, low, medium, high",
        ),
        (
            lambda c: c["expect"].update(approver_role="planer"),
            "expect.approver_role: 'planer' is not a role",
        ),
        (
            lambda c: c["expect"].update(cites_sop_for="CREDIT"),
            "expect.cites_sop_for: 'CREDIT' is not an exception type",
        ),
        (
            lambda c: c["expect"].update(per_order={"SO2": {"action": "ESCALAT"}}),
            "expect.per_order.SO2.action: 'ESCALAT' is not an action",
        ),
        (
            lambda c: c["expect"].update(after_approval={"ordrs.SO1.status": "released"}),
            "expect.after_approval: 'ordrs.SO1.status': unknown table ordrs",
        ),
        (
            lambda c: c["expect"].update(after_approval={"orders.SO1.statu": "released"}),
            "expect.after_approval: 'orders.SO1.statu': unknown field statu of orders",
        ),
        # A fixture that cannot load is bad input of the suite (exit 2), not a failed case (exit 1).
        (lambda c: c["fixture"].update(custmers=[]), "fixture.custmers: unknown table"),
        (
            lambda c: c["fixture"].update(items=[{"sku": "A", "prize": 1}]),
            "fixture.items[0].prize: unknown field of items",
        ),
        (
            lambda c: c["fixture"].update(items=[{"sku": "A", "list_price": "ten"}]),
            "fixture.items[0].list_price: expected an amount",
        ),
        (lambda c: c["fixture"].update(items={"sku": "A"}), "fixture.items: expected a list of records"),
        (lambda c: c.update(fixture=[1]), "fixture: expected a mapping of table name"),
        (
            lambda c: c["fixture"].update(orders=[{"order_id": "SO1", "customer_id": "C9"}]),
            "fixture.orders[0].customer_id: 'C9' is not in customers.customer_id (dangling reference)",
        ),
    ],
)
def test_a_malformed_case_is_refused_with_its_id(tmp_path, mutate, message):
    case = {"id": "c1", "fixture": {}, "input": {"order_id": "SO1"}, "expect": {"exceptions": []}}
    mutate(case)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"suite": "bad", "cases": [case]}))
    with pytest.raises(SuiteError, match=r"case c1: .*" + re.escape(message)):
        load_cases(str(path))


def test_suites_resolve_by_name_file_folder_and_all(tmp_path):
    assert resolve_suites("credit") == [SUITES_DIR / "credit.yaml"]
    assert len(resolve_suites("all")) == len(list(SUITES_DIR.glob("*.yaml")))
    assert resolve_suites(str(SUITES_DIR)) == resolve_suites("all")
    with pytest.raises(SuiteError, match="no suite 'nope'"):
        resolve_suites("nope")


def test_after_approval_paths_read_composite_keys_and_compare_by_meaning(session):
    from evals.state import check_after

    case = next(c for c in ALL if c.id == "stock-partially-allocated-line")
    load_fixture(session, case.fixture, case_id=case.id)
    assert (
        check_after(
            session,
            {
                "order_lines.SO1/1.allocated_qty": 4,
                "inventory.A/WH1.allocated": 4,
                "order_lines.SO1/1.unit_price": 100,
                "orders.SO1.promised_date": "2026-11-20",
                "orders.SO1.credit_released": False,
                "order_lines.SO1/1.warehouse_id": None,
            },
        )
        == []
    )
    problems = check_after(
        session,
        {
            "orders.SO1.status": "held",
            "inventory.A/WH9.allocated": 0,
            "orders.SO1.nope": 1,
            "order_lines.SO1/1.unit_price": "100.01",
        },
    )
    assert problems == [
        "orders.SO1.status: 'open', expected 'held'",
        "inventory.A/WH9.allocated: no such record (expected 0)",
        "orders.SO1.nope: expected orders.order_id.<field of orders>",
        "order_lines.SO1/1.unit_price: Decimal('100.00'), expected '100.01'",
    ]


def test_scripted_explainer_copies_facts_and_cites_the_first_passage():
    from agent.copilot.explain import build_messages
    from evals.subjects import scripted_explainer
    from knowledge.retrieve import Passage

    result = {
        "order_id": "SO1",
        "status": "open",
        "exceptions": [{"type": "CREDIT_HOLD", "evidence": ["customer C1 is on credit hold"]}],
        "recommendation": {"action": "RELEASE_CREDIT_HOLD", "params": {"order_id": "SO1"}},
    }
    passage = Passage(
        citation="SOP-CREDIT-001 §3.2",
        score=0.9,
        doc_id="SOP-CREDIT-001",
        section="3.2",
        title="Credit holds",
        heading="Release",
        text="text",
        source="knowledge/sops/sop-credit-001.md",
    )
    text = scripted_explainer(build_messages(result, [passage]))  # the shipped prompt, as the model gets it
    assert text == "CREDIT_HOLD: customer C1 is on credit hold. See [SOP-CREDIT-001 §3.2]."


def test_metrics_per_type_confusion_and_pass_hat_k():
    from evals.metrics import summarize
    from evals.runner import CaseResult, Check

    def r(key, status, exp, det, action="A", want="A"):
        return CaseResult(
            "s",
            key,
            status,
            [Check("exceptions", "pass"), Check("action", "pass")],
            [],
            0.1,
            expected_types=exp,
            detected_types=det,
            expected_action=[want],
            action=action,
        )

    run1 = [r("a", "pass", ["CREDIT_HOLD"], ["CREDIT_HOLD"]), r("b", "fail", ["CREDIT_HOLD"], [], "B")]
    run2 = [
        r("a", "fail", ["CREDIT_HOLD"], ["CREDIT_HOLD", "COMPLIANCE_HOLD"]),
        r("b", "pass", ["CREDIT_HOLD"], []),
    ]
    s = summarize([run1, run2])
    assert (
        s["cases"] == 2
        and s["passed"] == 0
        and s["pass_hat_k"] == 0.0
        and s["pass_rate_per_run"] == [0.5, 0.5]
    )
    assert s["failed"] == ["s/a", "s/b"]
    assert s["per_type"]["CREDIT_HOLD"] == {
        "support": 4,
        "tp": 2,
        "fp": 0,
        "fn": 2,
        "precision": 1.0,
        "recall": 0.5,
    }
    assert (
        s["per_type"]["COMPLIANCE_HOLD"]["fp"] == 1 and s["per_type"]["COMPLIANCE_HOLD"]["precision"] == 0.0
    )
    assert s["confusion"] == {
        "CREDIT_HOLD": {"CREDIT_HOLD": 2, "(none)": 2},
        "(none)": {"COMPLIANCE_HOLD": 1},
    }
    assert s["action_accuracy"] == 0.75


# ------------------------------------------------------------------------------------------------
# runs (fake model; SOP index with the deterministic fake embedding, built once for this module)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sops(tmp_path_factory):
    from knowledge.embeddings import FakeEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection

    collection = open_collection(FakeEmbeddingFunction(), var_dir=tmp_path_factory.mktemp("sops"))
    ingest(collection, None, echo=lambda _: None, progress=False)
    return collection


def _suite_file(tmp_path: Path, *cases) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(
        yaml.safe_dump({"suite": "mini", "cases": list(cases)}, sort_keys=False, allow_unicode=True)
    )
    return path


def _raw(case_id: str) -> dict:
    for path in SUITES_DIR.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["cases"]:
            if case["id"] == case_id:
                return case
    raise KeyError(case_id)


def test_a_wrong_expectation_fails_the_case_and_the_report_says_why(tmp_path, sops):
    from evals.evaluate import evaluate

    wrong = _raw("credit-flag-only")
    wrong["id"] = "credit-wrong-role"
    wrong["expect"]["approver_role"] = "credit_manager"
    path = _suite_file(tmp_path, _raw("credit-flag-only"), wrong)
    report = evaluate(str(path), collection=sops, report_dir=tmp_path / "out")
    s = report["summary"]
    assert s["cases"] == 2 and s["failed"] == ["mini/credit-wrong-role"] and s["violations"] == 0
    by_id = {r["id"]: r for r in report["runs"][0]}
    bad = [c for c in by_id["credit-wrong-role"]["checks"] if c["status"] == "fail"]
    assert [(c["name"], c["detail"]) for c in bad] == [
        ("approver_role", "approver credit_analyst, expected credit_manager")
    ]
    assert by_id["credit-flag-only"]["executed"][0]["action"] == "RELEASE_CREDIT_HOLD"
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 3 and "http://" not in page.split("<svg", 1)[0] and "<script" not in page
    md = (tmp_path / "out" / "report.md").read_text()
    assert "credit-wrong-role" in md and "approver credit_analyst, expected credit_manager" in md
    meta = json.loads((tmp_path / "out" / "report.json").read_text())["meta"]
    assert meta["provider"] == "fake" and meta["policy_hash"] and meta["commit"] and meta["prompt_hashes"]


_cli = run


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["fixture"].update(custmers=[]),
            "case price-above-tolerance: fixture.custmers: unknown table",
        ),
        (
            lambda c: c["fixture"]["customers"][0].update(teir="gold"),
            "case price-above-tolerance: fixture.customers[0].teir: unknown field of customers",
        ),
        (
            lambda c: c["expect"].update(exceptions=[{"type": "CREDIT_HOLD"}]),
            "case price-above-tolerance: expect.exceptions[0]: {'type': 'CREDIT_HOLD'} is not an exception type",
        ),
    ],
)
def test_cli_a_malformed_suite_exits_2_in_one_line_naming_case_and_path(
    tmp_path, monkeypatch, capsys, mutate, message
):
    # Found by the outside contract check (audit-decide): a fixture error ran as a failed case
    # (exit 1, three lines of summary) and a non-text exception type crashed with a traceback.
    case = _raw("price-above-tolerance")
    mutate(case)
    path = _suite_file(tmp_path, case)
    code, out, err = _cli(monkeypatch, capsys, "eval", "--suite", str(path), "--no-progress")
    assert code == 2, (out, err)
    assert out == ""
    assert err.strip().count("\n") == 0 and message in err and str(path) in err, err


def test_cli_json_last_line_is_the_summary_and_failures_exit_1(tmp_path, sops, monkeypatch, capsys):
    from evals import evaluate as ev

    monkeypatch.setattr(ev, "sop_index", lambda *a, **k: sops)
    wrong = _raw("price-above-tolerance")
    wrong["expect"]["exceptions"] = ["PRICING_DISCREPANCY", "CREDIT_HOLD"]
    path = _suite_file(tmp_path, wrong)
    code, out, _ = _cli(
        monkeypatch, capsys, "eval", "--suite", str(path), "--json", "--report", str(tmp_path / "r1")
    )
    assert code == 1, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert {"cases", "passed", "failed", "violations", "pass_rate"} <= set(summary)
    assert summary["failed"] == ["mini/price-above-tolerance"] and summary["pass_rate"] == 0.0

    path.write_text(
        yaml.safe_dump({"suite": "mini", "cases": [_raw("price-above-tolerance")]}, allow_unicode=True)
    )
    code, out, _ = _cli(monkeypatch, capsys, "eval", "--suite", str(path), "--report", str(tmp_path / "r2"))
    assert code == 0, out
    assert "1/1 passed" in out
    code, out, _ = _cli(
        monkeypatch,
        capsys,
        "eval",
        "compare",
        str(tmp_path / "r1" / "report.json"),
        str(tmp_path / "r2" / "report.json"),
    )
    assert code == 0 and "mini/price-above-tolerance: fail -> pass" in out
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "eval",
        "compare",
        str(tmp_path / "r1" / "report.json"),
        str(tmp_path / "r2" / "report.json"),
        "--report",
        str(tmp_path / "cmp"),
    )
    assert code == 0 and "compare.html" in err
    md = (tmp_path / "cmp" / "compare.md").read_text()
    row = next(line for line in md.splitlines() if "`mini/price-above-tolerance`" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "fail" and cells[5] == "pass" and all(c for c in cells), (
        row
    )  # status, calls, tokens, s per side
    side = json.loads((tmp_path / "cmp" / "compare.json").read_text())["cases"][0]
    assert set(side["a"]) >= {"status", "llm_calls", "tokens", "seconds", "violations"}
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "class='changed'" in page and "<script" not in page and "http" not in page
    code, _, err = _cli(monkeypatch, capsys, "eval", "--suite", "no-such-suite")
    assert code == 2 and "no suite 'no-such-suite'" in err
    code, _, err = _cli(monkeypatch, capsys, "eval", "--suite", str(path), "--case", "nope")
    assert code == 2 and "no case nope in suite" in err
    code, _, err = _cli(monkeypatch, capsys, "eval", "compare", str(path), str(path))
    assert code == 2 and "not a JSON eval report" in err


def test_an_interrupted_run_resumes_from_its_journal_and_a_foreign_journal_is_refused(
    tmp_path, sops, monkeypatch
):
    """Each finished case lands in cases.jsonl at once; --resume runs only the cases it lacks."""
    from evals import runner
    from evals.evaluate import evaluate

    path = _suite_file(
        tmp_path,
        _raw("credit-flag-only"),
        _raw("price-above-tolerance"),
        _raw("credit-overage-just-above-10pct"),
    )
    out = tmp_path / "out"
    first = evaluate(str(path), collection=sops, report_dir=out)
    journal = (out / "cases.jsonl").read_text().splitlines()
    assert len(journal) == 4 and json.loads(journal[0])["cases"] == [
        f"mini/{c['id']}" for c in yaml.safe_load(path.read_text())["cases"]
    ]
    # the run stopped during its third case: two results and half a line were written
    (out / "cases.jsonl").write_text("\n".join(journal[:2]) + "\n" + journal[2][:40])
    ran = []
    real = runner.run_case
    monkeypatch.setattr(runner, "run_case", lambda case, *a: (ran.append(case.id), real(case, *a))[1])
    again = evaluate(str(path), collection=sops, report_dir=out, resume=True)
    assert ran == ["price-above-tolerance", "credit-overage-just-above-10pct"]
    assert again["summary"]["passed"] == first["summary"]["passed"] == 3
    assert [r["key"] for r in again["runs"][0]] == [r["key"] for r in first["runs"][0]]
    assert again["runs"][0][0] == first["runs"][0][0]  # the kept result, as it was recorded
    assert len((out / "cases.jsonl").read_text().splitlines()) == 4
    assert again["meta"]["resumed_cases"] == 1 and "resumed_cases" not in first["meta"]
    assert again["meta"]["commit"] == first["meta"]["commit"]

    ran.clear()
    with pytest.raises(SuiteError, match=r"another run .*cases"):
        evaluate(str(path), collection=sops, report_dir=out, resume=True, only=["credit-flag-only"])
    with pytest.raises(SuiteError, match="--resume needs the --report folder"):
        evaluate(str(path), collection=sops, resume=True)
    (out / "cases.jsonl").write_text("not json\n")
    with pytest.raises(SuiteError, match="not an eval journal"):
        evaluate(str(path), collection=sops, report_dir=out, resume=True)
    assert ran == []


def test_the_report_names_the_commit_that_was_loaded_when_the_run_started(tmp_path, sops, monkeypatch):
    """A long run must not take the commit the checkout moved to while it ran."""
    from evals import report as rep
    from evals.evaluate import evaluate

    heads = iter(["a" * 40] + ["b" * 40] * 10)
    monkeypatch.setattr(rep, "_git", lambda *args: next(heads) if args[0] == "rev-parse" else "")
    out = evaluate(str(_suite_file(tmp_path, _raw("credit-flag-only"))), collection=sops)
    assert out["meta"]["commit"] == "a" * 40 and out["meta"]["dirty"] is False


def test_an_approval_needing_approver_values_is_skipped_when_the_case_asks_nothing_of_it(tmp_path, sops):
    """FIX_MASTER_DATA needs ship-to values only an approver can supply: a case stating neither
    approve_params nor after_approval is judged on what it states, and the report says the
    approval was skipped; a case that states after_approval still needs the values."""
    from evals.evaluate import evaluate

    silent = _raw("md-blank-street")
    silent["id"] = "md-blank-street-no-values"
    del silent["approve_params"], silent["expect"]["after_approval"]
    asked = _raw("md-blank-street")
    asked["id"] = "md-blank-street-no-values-but-after"
    del asked["approve_params"]
    path = _suite_file(tmp_path, silent, asked)
    report = evaluate(str(path), collection=sops, report_dir=tmp_path / "out")
    by_id = {r["id"]: r for r in report["runs"][0]}
    assert by_id["md-blank-street-no-values"]["status"] == "pass", by_id["md-blank-street-no-values"]
    skipped = [c for c in by_id["md-blank-street-no-values"]["checks"] if c["status"] == "skipped"]
    assert [c["name"] for c in skipped] == ["approval"] and "ship_to_street" in skipped[0]["detail"]
    assert by_id["md-blank-street-no-values"]["executed"] == []
    assert by_id["md-blank-street-no-values-but-after"]["status"] == "fail"
    assert report["summary"]["failed"] == ["mini/md-blank-street-no-values-but-after"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Checks skipped" in md and "md-blank-street-no-values" in md


def test_a_message_naming_no_order_meets_an_expectation_of_nothing_detected(tmp_path, sops):
    """domain.md §5: a message naming no existing order is triaged for no order (the copilot asks
    for one). A case that states it as `exceptions: []` and `action: null` passes; one that expects
    a recommendation still fails, naming what was recommended."""
    from evals.evaluate import evaluate

    nothing = _raw("text-no-order-number")
    nothing["id"] = "text-no-order-stated-as-nothing"
    nothing["expect"] = {"exceptions": [], "action": None}
    wrong = _raw("text-no-order-number")
    wrong["id"] = "text-no-order-expects-an-action"
    wrong["expect"] = {"exceptions": ["CREDIT_HOLD"], "action": "RELEASE_CREDIT_HOLD"}
    report = evaluate(
        str(_suite_file(tmp_path, nothing, wrong)), collection=sops, report_dir=tmp_path / "out"
    )
    by_id = {r["id"]: r for r in report["runs"][0]}
    assert by_id["text-no-order-stated-as-nothing"]["status"] == "pass", by_id[
        "text-no-order-stated-as-nothing"
    ]
    bad = [
        (c["name"], c["detail"])
        for c in by_id["text-no-order-expects-an-action"]["checks"]
        if c["status"] == "fail"
    ]
    assert bad == [
        ("exceptions", "detected [], expected ['CREDIT_HOLD']"),
        ("action", "recommended None, expected RELEASE_CREDIT_HOLD"),
    ]


def test_after_approval_reads_a_composite_key_whose_parts_hold_a_slash(session):
    """domain.md §5 joins a composite key's parts with '/': an order id of the shape DE/2026/00017
    (one the policy's order numbers read) still names its line, and a missing one is reported."""
    from evals.state import check_after

    case = _raw("credit-flag-only")
    fixture = case["fixture"]
    fixture["orders"][0]["order_id"] = "DE/2026/00017"
    load_fixture(session, fixture, case_id=case["id"])
    assert (
        check_after(
            session,
            {
                "orders.DE/2026/00017.status": "open",
                "order_lines.DE/2026/00017/1.unit_price": 100,
                "order_lines.DE/2026/00017/1.sku": "A",
            },
        )
        == []
    )
    assert check_after(session, {"order_lines.DE/2026/00017/2.sku": "A"}) == [
        "order_lines.DE/2026/00017/2.sku: no such record (expected 'A')"
    ]
    assert check_after(session, {"order_lines.SO1/x.sku": "A"}) == [
        "order_lines.SO1/x.sku: 'SO1/x' is not a key of order_lines"
    ]


def test_an_order_id_yaml_reads_as_a_number_names_the_order(tmp_path, sops):
    """YAML reads an unquoted 4500098761 as a number; the fixture takes it as the order's id, and so
    do the case's input, its expected orders and its per-order expectations."""
    from evals.evaluate import evaluate

    case = _raw("credit-flag-only")
    case["id"] = "credit-numeric-order-id"
    case["fixture"]["orders"][0]["order_id"] = 4500098761
    case["input"] = {"order_id": 4500098761}
    case["expect"]["after_approval"] = {"orders.4500098761.status": "released"}
    text = _raw("credit-flag-only")
    text["id"] = "credit-numeric-order-in-a-message"
    text["fixture"]["orders"][0]["order_id"] = 4500098761
    text["input"] = {"message": "what holds 4500098761?"}
    text["expect"] = {"orders": [4500098761], "exceptions": ["CREDIT_HOLD"]}
    cases = load_cases(str(_suite_file(tmp_path, case, text)))
    assert cases[0].input == {"order_id": "4500098761"} and cases[1].expect["orders"] == ["4500098761"]
    report = evaluate(str(tmp_path / "mini.yaml"), collection=sops)
    by_id = {r["id"]: r for r in report["runs"][0]}
    for cid in ("credit-numeric-order-id", "credit-numeric-order-in-a-message"):
        assert by_id[cid]["status"] == "pass", by_id[cid]["checks"]


def test_the_confusion_matrix_counts_only_cases_that_state_their_exceptions():
    """A case checks only what it states (domain.md §5): one stating no ``exceptions`` is in neither
    the per-type figures nor the confusion matrix."""
    from evals.metrics import summarize
    from evals.runner import CaseResult, Check

    stated = CaseResult(
        "s", "a", "pass", [Check("exceptions", "pass")], [], 0.1, ["CREDIT_HOLD"], ["CREDIT_HOLD"]
    )
    silent = CaseResult("s", "b", "pass", [Check("action", "pass")], [], 0.1, [], ["PRICING_DISCREPANCY"])
    s = summarize([[stated, silent]])
    assert s["per_type"]["PRICING_DISCREPANCY"]["fp"] == 0
    assert s["confusion"] == {"CREDIT_HOLD": {"CREDIT_HOLD": 1}}
