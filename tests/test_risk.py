"""The risk model: deterministic training and scoring with a fixed seed on a small generated data
set, features free of outcome leakage, explanations, the artifact's hash check, monitoring, CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update

from agent.ops.monitoring import OVERRIDE_MIN_DECIDED, monitoring, psi
from agent.ops.risk import (
    FEATURES,
    MIN_CONTRIBUTION,
    RiskModelError,
    explain,
    load_model,
    model_dir,
    score_open_orders,
    train,
)
from agent.ops.risk_features import build_features, load_frames
from agent.policy import load_policy
from tests.cli_run import run
from tools.db import make_engine, session_factory, upgrade
from tools.demo import generate
from tools.models import ActionRequest, Approval, ExceptionRecord, Order, OrderLine, Shipment

AS_OF = dt.date(2026, 3, 2)
CATALOG = set(load_policy().actions)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('risk') / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, orders=2000, seed=11, as_of=AS_OF, progress=False)
    engine.dispose()
    return url


@pytest.fixture
def factory(demo_url):
    engine = make_engine(demo_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """OpenMP on a shared 2-core machine thrashes: the booster trains on one thread here."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP, so that the limit reaches it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frames(demo_url):
    engine = make_engine(demo_url)
    with session_factory(engine)() as session:
        out = load_frames(session)
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def trained(demo_url, frames, tmp_path_factory):
    """(var_dir, report) of a model trained with seed 0 on the module's data set."""
    folder = tmp_path_factory.mktemp("model")
    engine = make_engine(demo_url)
    with session_factory(engine)() as session:
        report = train(session, seed=0, var_dir=folder, frames=frames)
    engine.dispose()
    return folder, report


def test_training_is_deterministic_and_time_split(factory, trained):
    a = trained[1]
    with factory() as session:
        b = train(session, seed=0, save=False, frames=load_frames(session))
    for key in ("test", "train", "split", "mean_abs_contribution"):
        assert a[key] == b[key], key
    assert a["split"]["train"]["to"] < a["split"]["test"]["from"]
    assert a["split"]["test"]["orders"] > 0.2 * (a["split"]["train"]["orders"] + a["split"]["test"]["orders"])
    m = a["test"]
    assert 0 <= m["roc_auc"] <= 1 and 0 <= m["pr_auc"] <= 1 and 0 <= m["brier"] <= 1
    assert sum(b["orders"] for b in m["reliability"]) == m["orders"]
    assert set(a["mean_abs_contribution"]) == set(FEATURES)


def test_saved_model_scores_deterministically(factory, frames, trained):
    tmp_path, report = trained
    with factory() as session:
        first = score_open_orders(session, var_dir=tmp_path, frames=frames)
        second = score_open_orders(session, var_dir=tmp_path)
        top = score_open_orders(session, var_dir=tmp_path, top=5, frames=frames)
        unreleased = set(session.scalars(select(Order.order_id).where(Order.status.in_(("open", "held")))))
    assert json.loads((model_dir(tmp_path) / "report.json").read_text())["sha256"] == report["sha256"]
    assert first == second
    assert top == first[:5]
    assert {o["order_id"] for o in first} == unreleased
    risks = [o["risk"] for o in first]
    assert risks == sorted(risks, reverse=True) and all(0 <= r <= 1 for r in risks)
    assert any(o["drivers"] for o in first)
    for o in first:
        assert all(d["contribution"] >= MIN_CONTRIBUTION and d["feature"] in FEATURES for d in o["drivers"])
        action = o["suggested_action"]["action"]
        assert action is None or action in CATALOG
        if action:
            assert o["suggested_action"]["why"]


def test_features_use_nothing_the_order_did_later(factory, frames, demo_url):
    """Changing a closed order's outcome (shipped quantities, a substitution, a late shipment, its
    exceptions, its status) changes none of its features."""
    before = build_features(frames)
    with factory() as session:
        oid, sku = session.execute(
            select(OrderLine.order_id, OrderLine.sku)
            .join(Order)
            .where(Order.status == "shipped")
            .order_by(Order.order_date.desc())
            .limit(1)
        ).one()
        day = session.scalar(select(Order.order_date).where(Order.order_id == oid))
        other = session.scalar(select(OrderLine.sku).where(OrderLine.sku != sku).limit(1))
        session.execute(
            update(OrderLine)
            .where(OrderLine.order_id == oid, OrderLine.line_no == 1)
            .values(shipped_qty=0, original_sku=sku, sku=other)
        )
        session.execute(update(Order).where(Order.order_id == oid).values(status="cancelled"))
        session.add(
            Shipment(
                shipment_id="SH-LATE",
                order_id=oid,
                carrier_id=None,
                status="delivered",
                planned_ship_date=day,
                eta=day + dt.timedelta(days=2),
                delivered_date=day + dt.timedelta(days=9),
            )
        )
        session.add(
            ExceptionRecord(
                order_id=oid,
                type="INVENTORY_SHORTFALL",
                instance_key="line:99",
                evidence=[],
                status="resolved",
                first_seen_at=dt.datetime.now(dt.UTC),
                detected_at=dt.datetime.now(dt.UTC),
            )
        )
        after = build_features(load_frames(session))
        session.rollback()
    pd.testing.assert_series_equal(before.loc[oid], after.loc[oid])


class _Linear:
    """p = 0.2 + 0.01 × x0 + 0.05 × x1 (a stand-in with known attributions)."""

    def predict_proba(self, x):
        p = 0.2 + 0.01 * x[:, 0] + 0.05 * x[:, 1]
        return np.column_stack([1 - p, p])


def test_explanation_is_the_occlusion_attribution():
    medians = {name: 0.0 for name in FEATURES}
    artifact = {"model": _Linear(), "features": list(FEATURES), "medians": medians}
    x = pd.DataFrame([[0.0] * len(FEATURES)], columns=list(FEATURES))
    x.iloc[0, 0], x.iloc[0, 1] = 2.0, 3.0  # contributions 0.02 and 0.15
    proba, drivers = explain(artifact, x)
    assert proba[0] == pytest.approx(0.37)
    assert [d["feature"] for d in drivers[0]] == [FEATURES[1], FEATURES[0]]
    assert [d["contribution"] for d in drivers[0]] == [0.15, 0.02]
    x.iloc[0, 0] = 0.1  # 0.001: below the listing threshold
    assert [d["feature"] for d in explain(artifact, x)[1][0]] == [FEATURES[1]]


def test_artifact_is_checked_before_unpickling(trained, tmp_path):
    shutil.copytree(model_dir(trained[0]), model_dir(tmp_path))
    path = model_dir(tmp_path) / "model.pkl"
    assert load_model(tmp_path)[1]["sha256"]
    path.chmod(0o666)
    with pytest.raises(RiskModelError, match="writable by other users"):
        load_model(tmp_path)
    path.chmod(0o600)
    report_path = model_dir(tmp_path) / "report.json"
    report = json.loads(report_path.read_text())
    report_path.write_text(json.dumps({**report, "features": {"n_lines": "lines"}}))
    with pytest.raises(RiskModelError, match="other features"):
        load_model(tmp_path)
    report_path.write_text(json.dumps(report))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(RiskModelError, match="SHA-256"):
        load_model(tmp_path)


def test_clear_errors_without_model_or_history(session, tmp_path):
    with pytest.raises(RiskModelError, match="copilot risk train"):
        score_open_orders(session, var_dir=tmp_path)
    with pytest.raises(RiskModelError, match="too little history"):
        train(session, var_dir=tmp_path)


def test_psi():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * np.log(1.8) + 0.4 * np.log(5))


def test_monitoring_drift_and_overrides(factory, trained, tmp_path):
    now = dt.datetime.now(dt.UTC)
    with factory() as session:
        assert monitoring(session, var_dir=tmp_path)["drift"]["status"] == "no_model"
        tmp_path = trained[0]
        oid = session.scalar(select(Order.order_id).limit(1))
        for i in range(OVERRIDE_MIN_DECIDED):  # 4 of 10 recommended reallocations rejected: 40 % > 30 %
            req = ActionRequest(
                action="REALLOCATE_WAREHOUSE",
                params={},
                params_hash="x",
                order_id=oid,
                risk="low",
                approver_role="planner",
                requested_by="csr",
                is_recommendation=True,
                recommended={"action": "REALLOCATE_WAREHOUSE"},
                status="rejected" if i < 4 else "executed",
                created_at=now,
                updated_at=now,
            )
            session.add(req)
            session.flush()
            session.add(
                Approval(
                    request_id=req.id,
                    decision="reject" if i < 4 else "approve",
                    decided_by="planner",
                    role="planner",
                    params={},
                    params_hash="x",
                    decided_at=now,
                )
            )
        session.flush()
        result = monitoring(session, var_dir=tmp_path)
        session.rollback()
    drift = result["drift"]
    assert drift["status"] == "ok" and set(drift["features"]) == set(FEATURES)
    assert all(f["level"] in ("stable", "moderate", "drift") for f in drift["features"].values())
    entry = result["override_rate"]["by_action"]["REALLOCATE_WAREHOUSE"]
    assert (entry["decided"], entry["overridden"], entry["override_rate"], entry["warning"]) == (
        10,
        4,
        0.4,
        True,
    )
    assert any("REALLOCATE_WAREHOUSE" in w for w in result["warnings"])


_cli = run


def test_cli(monkeypatch, capsys, demo_url):
    monkeypatch.setenv("DATABASE_URL", demo_url)
    code, out, err = _cli(monkeypatch, capsys, "risk", "list")
    assert code == 2 and "copilot risk train" in err
    code, out, _ = _cli(monkeypatch, capsys, "risk", "train", "--json")
    assert code == 0 and json.loads(out)["test"]["roc_auc"] is not None
    code, out, _ = _cli(monkeypatch, capsys, "risk", "list", "--top", "3", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    code, out, _ = _cli(monkeypatch, capsys, "risk", "list", "--top", "2")
    assert code == 0 and "risk" in out
    code, out, _ = _cli(monkeypatch, capsys, "monitor", "--json")
    assert code == 0 and json.loads(out)["drift"]["status"] == "ok"
    code, out, _ = _cli(monkeypatch, capsys, "kpis", "--json")
    assert code == 0 and json.loads(out)["fill_rate"]["value"] is not None
    code, out, _ = _cli(monkeypatch, capsys, "kpis", "--since", "2026-02-20")
    assert code == 0 and "fill rate" in out
    code, _, err = _cli(monkeypatch, capsys, "kpis", "--since", "yesterday")
    assert code == 2 and "--since" in err
    code, out, _ = _cli(monkeypatch, capsys, "anomalies", "--json")
    assert code == 0 and isinstance(json.loads(out), list)


@pytest.mark.postgres
def test_features_are_the_same_on_postgresql(sqlite_engine, pg_engine):
    """The same generated records give the same features on both backends (dates, money, joins)."""
    built = []
    for engine in (sqlite_engine, pg_engine):
        generate(engine, orders=500, seed=5, as_of=AS_OF, progress=False)
        with session_factory(engine)() as session:
            built.append(build_features(load_frames(session)).sort_index())
    pd.testing.assert_frame_equal(built[0], built[1])
