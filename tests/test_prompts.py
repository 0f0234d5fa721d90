"""Prompts as files: every shipped prompt renders with exactly its placeholders; strictness errors."""

from __future__ import annotations

import json

import pytest

import prompts
from prompts import Prompt, PromptError, load, names


def test_the_explanation_prompts_ship():
    assert {"explain", "explain_retry"} <= set(names())


@pytest.mark.parametrize("name", names())
def test_every_prompt_renders_with_its_placeholders(name):
    prompt = load(name)
    values = {p: f"<{p.upper()}>" for p in prompt.placeholders}
    text = prompt.render(**values)
    assert all(v in text for v in values.values())
    assert "$" not in text.replace("$$", ""), "an unfilled placeholder"
    messages = prompt.messages(**values)
    assert messages and all(m["role"] in {"system", "user", "assistant"} and m["content"] for m in messages)
    assert len(prompt.sha256) == 64


def test_missing_or_extra_values_are_errors():
    prompt = load("explain")
    with pytest.raises(PromptError, match="missing example, passages"):
        prompt.render(facts="x")
    with pytest.raises(PromptError, match="unexpected tone"):
        prompt.render(facts="x", passages="y", example="e", tone="z")


def test_sections_become_messages_and_dollars_escape():
    prompt = Prompt("t", "--- system ---\nYou cost $$5.\n--- user ---\nHi ${who}!\n")
    assert prompt.messages(who="Ann") == [
        {"role": "system", "content": "You cost $5."},
        {"role": "user", "content": "Hi Ann!"},
    ]
    assert Prompt("u", "plain $x").messages(x=1) == [{"role": "user", "content": "plain 1"}]
    with pytest.raises(PromptError, match="before the first"):
        Prompt("v", "stray\n--- user ---\n$x").messages(x=1)


def test_unknown_and_malformed_prompts_are_errors(tmp_path, monkeypatch):
    with pytest.raises(PromptError, match="no prompt named 'nope'"):
        load("nope")
    with pytest.raises(PromptError, match="bad prompt name"):
        load("../etc/passwd")
    monkeypatch.setattr(prompts, "PROMPT_DIR", tmp_path)
    (tmp_path / "broken.txt").write_text("costs $5")
    load.cache_clear()
    try:
        with pytest.raises(PromptError, match="neither a placeholder"):
            load("broken")
    finally:
        load.cache_clear()


def test_facts_json_is_compact_and_keeps_every_fact():
    from prompts import facts_json

    facts = {
        "order_id": "SO-1",
        "qty": 0,
        "held": False,
        "note": None,
        "lines": [{"sku": "A", "eta": None, "tags": []}, {"sku": "B", "price": 1.5}],
        "extra": {},
        "blank": "",
    }
    text = facts_json(facts)
    assert text == '{"order_id":"SO-1","qty":0,"held":false,"lines":[{"sku":"A"},{"sku":"B","price":1.5}]}'
    assert len(text) < len(json.dumps(facts))
    assert facts_json({"x": "é" * 10}, limit=8) == '{"x":"éé'
