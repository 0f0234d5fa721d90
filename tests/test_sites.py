"""Sites (``tools.sites``): the scoping rule as a table, the readers, triage and the order-number
reader through a scoped session, and ``copilot users scope`` — on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from agent.governance.audit import list_events, verify_chain
from agent.governance.users import factory_for, get_user, list_users, set_scope
from agent.policy import load_policy
from agent.settings import get_settings
from agent.triage.order_numbers import resolve, typed
from agent.triage.service import ORDER_NOT_FOUND, triage_orders
from tests import sites_world
from tests.cli_run import run
from tools.db import make_engine, session_factory
from tools.errors import NotFound, ToolError
from tools.models import Order
from tools.read.readers import get_customer_credit, get_order, get_stock, list_open_exceptions, search_orders
from tools.sites import ALL, Scope, customer_visible, order_condition, order_visible, scoped, warehouse_ids

ORDERS = ("SO-100001", "SO-100002", "SO-200002", "SO-300001", "SO-400001")

# scope -> the orders it sees. An order belongs to the site of its own warehouse (WH1, WH3: east;
# WH2: eu); one without a warehouse belongs to no site.
RULES = [
    (ALL, set(ORDERS)),
    (Scope.of(regions=["east"]), {"SO-100001", "SO-100002", "SO-300001"}),
    (Scope.of(regions=["eu"]), {"SO-200002"}),
    (Scope.of(warehouses=["WH1"]), {"SO-100001", "SO-100002"}),
    (Scope.of(warehouses=["WH3"]), {"SO-300001"}),
    (Scope.of(regions=["eu"], warehouses=["WH3"]), {"SO-200002", "SO-300001"}),  # the union
    (Scope.of(regions=["east"], warehouses=["WH1"]), {"SO-100001", "SO-100002", "SO-300001"}),
]


@pytest.fixture
def factory(engine):
    sites_world.load(engine)
    return session_factory(engine)


@pytest.mark.parametrize(("scope", "sees"), RULES, ids=lambda v: v.describe() if isinstance(v, Scope) else "")
def test_the_rule_table(factory, scope, sees):
    with scoped(factory, scope)() as s:
        assert {o for o in ORDERS if order_visible(s, o)} == sees
        listed = set(s.scalars(select(Order.order_id).where(order_condition(s, Order.order_id))))
        assert listed == sees
        assert not order_visible(s, "SO-999999") or scope.unrestricted  # unknown: not visible
        customers = {c for c in ("C1", "C2", "C3") if customer_visible(s, c)}
        owners = {"SO-100001": "C1", "SO-100002": "C2", "SO-200002": "C3", "SO-300001": "C1"}
        assert customers == (
            {"C1", "C2", "C3"} if scope.unrestricted else {owners[o] for o in sees if o in owners}
        )


def test_regions_resolve_to_their_warehouses(factory):
    with factory() as s:
        assert warehouse_ids(s, Scope.of(regions=["east"])) == {"WH1", "WH3"}
        assert warehouse_ids(s, Scope.of(regions=["eu"], warehouses=["WH1"])) == {"WH1", "WH2"}
        assert warehouse_ids(s, ALL) is None


def test_another_sites_order_reads_as_unknown(factory):
    eu = factory_for(factory, "eu_credit")
    with eu() as s:
        with pytest.raises(NotFound) as other:
            get_order(s, order_id="SO-100002")
        with pytest.raises(NotFound) as unknown:
            get_order(s, order_id="SO-999999")
        assert str(other.value).replace("SO-100002", "X") == str(unknown.value).replace("SO-999999", "X")
        assert get_order(s, order_id="SO-200002")["order_id"] == "SO-200002"
        assert [o["order_id"] for o in search_orders(s)["orders"]] == ["SO-200002"]
        assert search_orders(s, customer_name="acme")["total"] == 0
        with pytest.raises(NotFound):
            search_orders(s, customer_id="C1")  # Acme buys only in the east
        with pytest.raises(NotFound):
            get_customer_credit(s, customer_id="C2")
        assert get_customer_credit(s, customer_id="C3")["customer_id"] == "C3"
        stock = get_stock(s, sku="A")
        assert [w["warehouse_id"] for w in stock["warehouses"]] == ["WH2"]
        assert stock["totals"]["on_hand"] == 70 and stock["sites_only"] == "region eu"


def test_triage_and_the_order_number_reader_are_scoped(factory):
    policy = load_policy()
    with factory_for(factory, "wh1_credit")() as s:
        results = triage_orders(s, ["SO-100002", "SO-200002", "SO-999999"], policy)
        assert results[0]["exceptions"][0]["type"] == "CREDIT_HOLD"
        assert results[1] == {"order_id": "SO-200002", "error": ORDER_NOT_FOUND}
        assert results[2] == {"order_id": "SO-999999", "error": ORDER_NOT_FOUND}
        res = resolve(s, [typed("SO-200002"), typed("SO-200003")])
        assert res.found == [] and set(res.not_found) == {"SO-200002", "SO-200003"}
        # another site's id is never offered as "did you mean" (SO-200002 for SO-200003); this site's is
        assert res.near_misses == {"SO-200002": ["SO-100002"]}
        s.rollback()
    with factory() as s:  # unscoped: the same ids are there
        res = resolve(s, [typed("SO-200003")])
        assert res.near_misses == {"SO-200003": ["SO-200002"]}


def test_open_exceptions_list_is_the_sites(factory):
    policy = load_policy()
    with factory() as s:
        triage_orders(s, list(ORDERS), policy)
        s.commit()
    with factory_for(factory, "eu_credit")() as s:
        assert {e["order_id"] for e in list_open_exceptions(s)["exceptions"]} == {"SO-200002"}
    with factory() as s:
        assert {e["order_id"] for e in list_open_exceptions(s)["exceptions"]} == {"SO-100002", "SO-200002"}


def test_set_scope_checks_names_and_is_audited(factory):
    with factory() as s:
        with pytest.raises(ToolError, match="unknown region 'mars'"):
            set_scope(s, "planner", regions=["mars"])
        with pytest.raises(ToolError, match="unknown warehouse 'WH9'"):
            set_scope(s, "planner", warehouses=["WH9"])
        with pytest.raises(NotFound):
            set_scope(s, "nobody", regions=["eu"])
        s.rollback()
        user = set_scope(s, "planner", regions=["eu"], warehouses=["WH3"], actor="ops")
        assert (user["regions"], user["warehouses"]) == (["eu"], ["WH3"])
        set_scope(s, "planner", actor="ops")  # cleared: every site again
        s.commit()
        assert get_user(s, "planner")["regions"] == []
        by_name = {u["username"]: u for u in list_users(s)}
        assert by_name["eu_credit"]["regions"] == ["eu"] and by_name["wh1_credit"]["warehouses"] == ["WH1"]
        events = [
            e
            for e in list_events(s, event_type="user_scoped", limit=100)
            if e["payload"]["username"] == "planner"
        ]
        assert [e["payload"]["after"] for e in events] == [
            {"regions": ["eu"], "warehouses": ["WH3"]},
            {"regions": [], "warehouses": []},
        ]
        assert verify_chain(s)["ok"]


def test_users_scope_from_the_command_line(tmp_path, monkeypatch, capsys):
    url = sites_world.make_database(tmp_path / "cli.db")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    code, out, err = run(
        monkeypatch, capsys, "users", "scope", "planner", "--region", "eu", "--warehouse", "WH1"
    )
    assert code == 0, err
    assert out.strip() == "planner (planner): region eu, warehouse WH1"
    code, out, _ = run(monkeypatch, capsys, "users", "scope", "planner", "--json")
    assert json.loads(out) == {
        "username": "planner",
        "role": "planner",
        "regions": ["eu"],
        "warehouses": ["WH1"],
    }
    code, out, err = run(monkeypatch, capsys, "users", "scope", "planner", "--region", "atlantis")
    assert code != 0 and "unknown region 'atlantis'" in (out + err)
    code, out, _ = run(monkeypatch, capsys, "users", "scope", "planner", "--clear")
    assert code == 0 and out.strip() == "planner (planner): all sites"
    # --as: the CLI's doors take the user's sites
    code, out, _ = run(monkeypatch, capsys, "triage", "SO-100002", "--as", "eu_credit", "--json")
    assert code == 2 and json.loads(out)[0]["error"] == ORDER_NOT_FOUND
    code, out, _ = run(monkeypatch, capsys, "triage", "SO-200002", "--as", "eu_credit", "--json")
    assert code == 0 and json.loads(out)[0]["exceptions"][0]["type"] == "CREDIT_HOLD"
    assert run(monkeypatch, capsys, "triage", "SO-100002", "--as", "wh1_credit")[0] == 0
    for user, seen in (("eu_credit", {"SO-200002"}), ("wh1_credit", {"SO-100002"})):
        code, out, err = run(monkeypatch, capsys, "queue", "--as", user, "--json")
        assert code == 0 and {i["order_id"] for i in json.loads(out)["items"]} == seen, err
        code, out, err = run(monkeypatch, capsys, "kpis", "--as", user, "--json")
        assert code == 0 and json.loads(out)["exception_frequency"]["orders_with_exceptions"] == 1, err
        assert json.loads(out)["queue_sizes"]["value"] == 1  # the workflow KPIs are their sites' too
    code, out, err = run(monkeypatch, capsys, "kpis", "--json")
    assert code == 0 and json.loads(out)["exception_frequency"]["orders_with_exceptions"] == 2, err
    assert json.loads(out)["queue_sizes"]["value"] == 2 and json.loads(out)["sla_breaches"]["value"] == 0
    code, out, err = run(monkeypatch, capsys, "orders", "show", "SO-100002", "--as", "eu_credit")
    assert code == 2 and "SO-100002" in err and "not found" in err
    assert run(monkeypatch, capsys, "orders", "show", "SO-100002", "--as", "wh1_credit")[0] == 0
    code, out, err = run(monkeypatch, capsys, "actions", "request", "SO-100002", "--as", "eu_credit")
    assert code != 0 and "SO-100002" in (out + err) and "not found" in (out + err).lower()
    code, out, err = run(monkeypatch, capsys, "actions", "request", "SO-100002", "--as", "csr")
    assert code == 0, err
    code, out, err = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "eu_credit")
    assert code != 0 and "not found" in (out + err).lower()
    code, out, err = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "wh1_credit")
    assert code == 0, err
    with session_factory(make_engine(url))() as s:
        assert s.scalar(select(func.count()).select_from(Order).where(Order.credit_released.is_(True))) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("orders", "show", "SO-100002"),
        ("actions", "list"),
        ("actions", "show", "1"),
        ("kpis",),
        ("anomalies",),
        ("chat", "-m", "what is blocking SO-100002?"),
        ("triage", "SO-100002"),
        ("queue",),
    ],
)
def test_a_typod_as_user_is_refused_not_answered_for_every_site(tmp_path, monkeypatch, capsys, args):
    """`--as` names who is asking; a user that does not exist (a typo) was answered as an unscoped
    one — every site's orders, requests and KPIs — by orders show, actions list/show, kpis,
    anomalies and chat. Now one line naming the user, exit 2, as triage and queue did."""
    url = sites_world.make_database(tmp_path / "cli.db")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LLM_PROVIDER", "fake")
    get_settings.cache_clear()
    code, out, err = run(monkeypatch, capsys, *args, "--as", "eu_credt")
    assert code == 2, out + err
    assert "unknown user 'eu_credt'" in err
    assert "SO-100002" not in out
