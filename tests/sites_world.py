"""A world of three sites for the scoping tests: warehouses WH1 and WH3 in region ``east`` (US),
WH2 in region ``eu`` (DE), and users limited to some of them (``tools.sites``).

- ``SO-100001`` (WH1, Acme C1): clean.
- ``SO-100002`` (WH1, Bolt C2): 5 % over the credit limit → ``CREDIT_HOLD``.
- ``SO-200002`` (WH2, Nord C3): over its credit limit → ``CREDIT_HOLD``; C3 buys only in the eu.
- ``SO-300001`` (WH3, Acme C1): clean.
- ``SO-400001`` (no warehouse, Acme): belongs to no site.

Users (besides the api_world ones, all unscoped): ``eu_credit`` (credit_analyst, region eu),
``wh1_credit`` (credit_analyst, warehouse WH1), ``east_compliance`` (compliance_officer, region east).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests import api_world
from tests.factories import clean_fixture, edit, line, order
from tools.db import make_engine, session_factory, upgrade
from tools.fixtures import load_fixture
from tools.models import User

SCOPED = {
    "eu_credit": ("credit_analyst", ["eu"], []),
    "wh1_credit": ("credit_analyst", [], ["WH1"]),
    "east_compliance": ("compliance_officer", ["east"], []),
}
TOKENS = {
    **api_world.TOKENS,
    "eu_credit": "tok-eu-credit-0123456789abcdef",
    "wh1_credit": "tok-wh1-credit-0123456789abcdef",
    "east_compliance": "tok-east-compliance-0123456789",
}
HEADERS = {u: {"Authorization": f"Bearer {t}"} for u, t in TOKENS.items()}


def fixture() -> dict:
    world = clean_fixture(
        order("SO-100001"),
        order("SO-100002", customer_id="C2", lines=[line(qty=10, unit_price=100)]),
        order("SO-200002", customer_id="C3", warehouse_id="WH2", ship_to_country="DE", lines=[line(qty=10)]),
        order("SO-300001", warehouse_id="WH3"),
        order("SO-400001", warehouse_id=None),
    )
    edit(
        world, "customers", "C2", credit_limit=10_000, open_balance=9_500, overdue_balance=0, email="b@b.test"
    )
    edit(
        world,
        "customers",
        "C3",
        name="Nord",
        tier="standard",
        credit_limit=10_000,
        open_balance=9_800,
        overdue_balance=0,
        country="DE",
        email="n@nord.test",
    )
    edit(world, "warehouses", "WH3", name="Albany", region="east", country="US")
    edit(world, "inventory", "A/WH2", sku="A", warehouse_id="WH2", on_hand=70, allocated=0)
    edit(world, "inventory", "A/WH3", sku="A", warehouse_id="WH3", on_hand=40, allocated=0)
    return world


def load(engine) -> None:
    """The world and every user (scoped ones with their sites) into an upgraded, empty database."""
    from agent.governance.users import set_scope

    with session_factory(engine)() as session:
        load_fixture(session, fixture(), case_id="sites-world")
    api_world.ensure_users(engine)
    with session_factory(engine)() as session:
        for name, (role, regions, warehouses) in SCOPED.items():
            session.add(User(username=name, role=role, active=True, created_at=dt.datetime.now(dt.UTC)))
            session.flush()
            set_scope(session, name, regions=regions, warehouses=warehouses, actor="test")
        session.commit()


def make_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    load(engine)
    engine.dispose()
    return url


def token_setting() -> str:
    return ",".join(f"{t}={u}" for u, t in TOKENS.items())
