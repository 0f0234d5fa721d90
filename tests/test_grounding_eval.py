"""The hand-written grounding set (evals/grounding/explanations.yaml): every wrong explanation refused,
every right one passed, checked against each eval case's real triage (no model, no embeddings)."""

from __future__ import annotations

from collections import Counter

from evals.grounding.check import main, run_hand_written


def test_every_wrong_explanation_is_refused_and_every_right_one_passes() -> None:
    report = run_hand_written()
    wrong = [o for o in report.outcomes if o.expected == "refuse"]
    assert len(wrong) >= 100
    kinds = Counter(o.why for o in wrong)
    for kind in ("swapped numbers", "wrong exception", "wrong warehouse", "wrong carrier", "invented SOP"):
        assert kinds[kind] >= 4, kinds
    assert report.count("pass") >= 10
    failures = [(o.case, o.expected, o.text, o.errors) for o in report.outcomes if not o.ok]
    assert failures == []


def test_the_runner_exits_1_when_a_wrong_explanation_passes(tmp_path, capsys) -> None:
    listing = tmp_path / "explanations.yaml"
    listing.write_text(
        "cases:\n- case: credit-over-limit-small\n  wrong:\n"
        "  - {why: none, text: 'SO1 is on credit hold with an overage of 500.00 [SOP-CREDIT-001 §3.2].'}\n",
        encoding="utf-8",
    )
    import evals.grounding.check as check

    report = check.run_hand_written(listing)
    assert [o.ok for o in report.outcomes] == [False]  # a true explanation listed as wrong is caught
    assert main([]) == 0
    assert "wrong explanations refused" in capsys.readouterr().out
