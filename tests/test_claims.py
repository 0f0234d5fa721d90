"""Claim-level grounding: what a text says of the facts' numbers, exceptions, warehouses and carriers."""

from __future__ import annotations

from agent.claims import claim_errors, learn
from agent.comms.grounding import draft_errors
from agent.copilot.grounding import answer_errors, explanation_errors

CREDIT = {
    "order_id": "SO-117083",
    "exceptions": [
        {
            "type": "CREDIT_HOLD",
            "evidence": [
                "open balance 45429.31 + order value 5000.00 = 50429.31 > credit limit 45000.00 (overage 5429.31)"
            ],
            "facts": {
                "credit_limit": "45000.00",
                "open_balance": "45429.31",
                "overdue_balance": "0.00",
                "order_value": "5000.00",
                "overage": "5429.31",
            },
        }
    ],
    "recommendation": {"action": "RELEASE_CREDIT_HOLD", "params": {"order_id": "SO-117083"}},
}
SHORT = {
    "order_id": "SO1",
    "exceptions": [
        {
            "type": "INVENTORY_SHORTFALL",
            "warehouse_id": "WH1",
            "evidence": ["available 5 (on hand 5 - allocated 0) at WH1 < open qty 10 for SKU A on line 1"],
            "facts": {"open_qty": 10, "available": 5, "shortfall": 5, "warehouse_id": "WH1"},
        }
    ],
    "recommendation": {"action": "REALLOCATE_WAREHOUSE", "params": {"line_no": 1, "to_warehouse_id": "WH2"}},
}
CARRIER = {
    "order_id": "SO1",
    "exceptions": [
        {
            "type": "CARRIER_DISRUPTION",
            "evidence": ["shipment SH1 is delayed"],
            "facts": {"shipment_id": "SH1", "carrier_id": "CA1", "status": "delayed", "eta": "2026-11-18"},
        }
    ],
    "recommendation": {"action": "REBOOK_CARRIER", "params": {"shipment_id": "SH1", "carrier_id": "CA2"}},
}


def test_the_issue_s_false_claim_is_refused_and_the_true_one_passes() -> None:
    wrong = "The overdue balance of 5429.31, which exceeds the customer's credit limit of 45000.00, holds SO-117083."
    errors = claim_errors(wrong, CREDIT)
    assert any("calls 5429.31 the overdue balance" in e and "5429.31 is the overage" in e for e in errors)
    assert "'5429.31 exceeds 45000.00' is false" in errors
    right = (
        "SO-117083 is on credit hold: the open balance of 45429.31 plus the order value of 5000.00 "
        "exceeds the credit limit of 45000.00 by 5429.31, the overage."
    )
    assert claim_errors(right, CREDIT) == []


def test_roles_are_learned_from_keys_and_from_the_facts_own_sentences() -> None:
    rel = learn(CREDIT)
    assert rel.values["overage"] == {learn({"overage": "5429.31"}).values["overage"].pop()}
    assert rel.exception_types == {"CREDIT_HOLD"}
    sentences_only = {"exceptions": [], "reason": "the credit limit 100000.00 (headroom 99000.00)"}
    assert learn(sentences_only).values["credit limit"] == {
        learn({"credit_limit": 100000}).values["credit limit"].pop()
    }
    assert claim_errors("The credit limit is 99000.00.", sentences_only)


def test_wrong_exception_is_refused_unless_negated() -> None:
    assert claim_errors("SO-117083 has a pricing discrepancy.", CREDIT)
    assert claim_errors("SO-117083 is held because of an INVENTORY_SHORTFALL.", CREDIT)
    assert claim_errors("There is no pricing discrepancy; the order is on credit hold.", CREDIT) == []


def test_warehouse_and_carrier_roles() -> None:
    assert claim_errors("Reallocate line 1 to WH1, which has the stock.", SHORT)
    assert claim_errors("WH2 is short of stock.", SHORT)
    assert claim_errors("WH1 is short by 5 units, so reallocate line 1 to WH2.", SHORT) == []
    assert claim_errors("Only 10 units are available at WH1.", SHORT)  # 10 is the open quantity
    assert claim_errors("Carrier CA2 is delayed.", CARRIER)
    assert claim_errors("Rebook shipment SH1 to CA1.", CARRIER)
    assert claim_errors("CA1 is delayed, so rebook shipment SH1 to CA2.", CARRIER) == []


def test_dates_keep_their_roles() -> None:
    facts = {"new_promised_date": "2026-11-28", "promised_date": "2026-11-20"}
    assert claim_errors("Your new delivery date is 2026-11-20.", facts)
    assert (
        claim_errors("Your order, promised for 2026-11-20, now ships by the new date 2026-11-28.", facts)
        == []
    )


def test_one_checker_serves_explanations_chat_answers_and_drafts() -> None:
    wrong = "The credit limit of 5429.31 is exceeded."
    assert any("credit limit" in e for e in explanation_errors(wrong, CREDIT, [], str(CREDIT)))
    assert any("credit limit" in e for e in answer_errors(wrong, CREDIT))
    facts = {
        "kind": "customer",
        "order_id": "SO1",
        "new_promised_date": "2026-11-28",
        "promised_date": "2026-11-20",
    }
    errors = draft_errors("SO1", "Your order SO1 has a new delivery date: 2026-11-20.", facts)
    assert any("new promised date" in e for e in errors)


def test_chat_answers_read_numbers_inside_lists_of_the_facts_and_counts_are_list_lengths() -> None:
    """A search_sops result holds its passages in a JSON list: "USD 5,000" in one of them supports
    the answer (square brackets in the facts are lists, not citations; the number was refused and
    the SOP answer fell back). A small count must be the length of a list, not any number."""
    from agent.copilot.grounding import answer_errors

    facts = {
        "passages": [
            {
                "citation": "SOP-CREDIT-001 §3.4",
                "text": "No open invoice dispute above USD 5,000 on the account.",
            },
            {"citation": "SOP-CREDIT-001 §3.3", "text": "A credit_manager approves a high-risk release."},
        ]
    }
    cited = ["SOP-CREDIT-001 §3.4", "SOP-CREDIT-001 §3.3"]
    right = "Check that no invoice dispute above USD 5,000 is open [SOP-CREDIT-001 §3.4]; 2 passages apply."
    assert answer_errors(right, facts, citations=cited) == []
    assert answer_errors("Disputes above USD 6,000 block it.", facts, citations=cited) == [
        "the number 6000 is not in the facts (written 6,000)"
    ]
    assert answer_errors("3 passages apply.", facts, citations=cited) == ["the number 3 is not in the facts"]


def test_a_list_length_counts_only_as_a_count_of_records() -> None:
    """Review finding: every list length passed as any number ("short 12 units" with 12 orders)."""
    from agent.copilot.chat_focus import asks_lookup
    from agent.copilot.grounding import answer_errors

    facts = {"orders": [{"order_id": f"SO-1000{i:02d}"} for i in range(12)]}
    assert answer_errors("12 open orders of this customer.", facts) == []
    assert answer_errors("SO-100003 is short 12 units.", facts) == ["the number 12 is not in the facts"]
    # a lookup the rules chose is its own answer only when the words ask for it
    assert asks_lookup("get_stock", "how much stock of ABC-1234 is there?")
    assert not asks_lookup("get_stock", "What's the price of ABC-1234?")
    assert not asks_lookup("get_stock", "stock of ABC-1234? and who approves a split?")


def test_a_number_in_brackets_is_checked_like_any_other() -> None:
    """Only SOP citations in brackets are set aside: "[40] available" was never number-checked."""
    from agent.copilot.grounding import answer_errors

    cited = ["SOP-INV-001 §2"]
    facts = {"sku": "FAS-1001", "available": 30}
    assert answer_errors("FAS-1001: 30 available [SOP-INV-001 §2].", facts, citations=cited) == []
    assert answer_errors("FAS-1001: [40] available.", facts, citations=cited) == [
        "the number 40 is not in the facts"
    ]


def test_stock_said_to_cover_a_quantity_or_not_must_be_so() -> None:
    """A shipped model's text passed before: "WH-TOR has 57 … available, which is not enough for …
    qty 3" — enough is a comparison too, in other words."""
    wrong = "WH-TOR has 57 units of SKU FAS-1 available, which is not enough for the open qty 3."
    assert any("57 available" in e and "is false" in e for e in claim_errors(wrong, SHORT))
    assert claim_errors("WH1 has 4 available, enough for the open quantity of 10.", SHORT)
    assert claim_errors("available 57 at WH1 does not cover qty 3", SHORT)
    for right in (
        "WH1 has 5 available, which is not enough for the open qty 10.",
        "WH1 has 5 available, not enough for the open quantity of 10.",
        "WH2 has 10 available, enough for the open quantity of 10.",
        "Only 5 available at WH1 cannot cover qty 10.",
    ):
        assert not [e for e in claim_errors(right, SHORT) if "…" in e], right
