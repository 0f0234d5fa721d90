"""`copilot seed` and `copilot demo` end to end on a small data set."""

from __future__ import annotations

import json

from tests.cli_run import run


def test_seed_refuses_to_overwrite_then_reset_replaces(monkeypatch, capsys):
    run(monkeypatch, capsys, "db", "upgrade")
    code, out, _ = run(monkeypatch, capsys, "seed", "--orders", "400", "--seed", "3", "--as-of", "2026-11-25")
    assert code == 0 and "seeded 400 orders" in out and "as of 2026-11-25 with seed 3" in out
    code, _, err = run(monkeypatch, capsys, "seed", "--orders", "400")
    assert code == 2 and "--reset" in err
    code, out, _ = run(monkeypatch, capsys, "seed", "--orders", "300", "--seed", "4", "--reset")
    assert code == 0 and "seeded 300 orders" in out


def test_seed_bad_date(monkeypatch, capsys):
    run(monkeypatch, capsys, "db", "upgrade")
    code, _, err = run(monkeypatch, capsys, "seed", "--as-of", "25/11/2026")
    assert code == 2 and "--as-of must be a date" in err


def test_demo_sets_up_seeds_and_summarises(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "demo", "--orders", "1500")
    assert code == 0
    assert "Demo data set" in out and "Open book" in out and "Open orders with at least one exception" in out
    assert "orders show SO-" in out
    # The whole open book is triaged: the work queues hold its exceptions.
    assert "triaged the open book" in out
    code, queue, _ = run(monkeypatch, capsys, "queue", "--json", "--limit", "500")
    sizes = json.loads(queue)["sizes"]
    assert code == 0 and sum(s["open"] for s in sizes.values()) > 0
    # Running it again reuses the data set instead of seeding over it.
    code, again, _ = run(monkeypatch, capsys, "demo")
    assert code == 0 and "seeding" not in again and "1,500 orders" in again
    # And the suggested order can be shown and triaged.
    order_id = next(w for w in out.split() if w.startswith("SO-"))
    code, out, _ = run(monkeypatch, capsys, "triage", order_id.rstrip(","), "--json")
    assert code == 0 and json.loads(out)[0]["exceptions"]
