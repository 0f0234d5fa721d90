"""The panel in a real browser (Playwright driving Debian's headless Chromium): a planner signs in,
asks the chat about an order, pastes an order number, requests approval of the recommendation; the approver signs in, approves,
and sees the execution in the audit view. Every request the page makes stays on 127.0.0.1.

Screenshots go to ``$COPILOT_TEST_ARTIFACTS/screenshots`` (default: the test's tmp folder); the
test prints where. Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests import api_world
from ui.server import create_app

CHROMIUM = "/usr/bin/chromium"
T = api_world.TOKENS
TIMEOUT_MS = 30_000


@pytest.fixture
def live(tmp_path, monkeypatch):
    svc = api_world.services(monkeypatch, tmp_path / "browser.db")
    with api_world.LiveServer(create_app(services=svc, warm_up=True)) as server:
        yield server


def test_planner_requests_approver_approves_audit_shows_execution(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    shots = Path(os.environ.get("COPILOT_TEST_ARTIFACTS") or tmp_path) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")
    hosts: set[str] = set()
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", lambda req: hosts.add(urlparse(req.url).hostname or req.url.split(":", 1)[0]))
        # the page throws nothing and logs no error (a 404 for /favicon.ico was one on every load)
        page.on("console", lambda m: m.type == "error" and console_errors.append(f"{m.text} {m.location}"))
        page.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))

        taken: list[Path] = []

        def shot(name: str) -> None:
            taken.append(shots / f"{name}.png")
            page.screenshot(path=str(taken[-1]), full_page=True)

        def sign_in(token: str, role: str) -> None:
            page.locator("#token input, #token textarea").first.fill(token)
            page.locator("#sign-in").click()
            expect(page.locator("#who")).to_contain_text(f"role {role}")

        page.goto(f"{live.url}/ui/")
        sign_in(T["planner"], "planner")
        page.get_by_role("tab", name="Chat").click()
        page.locator("#chat-input textarea").fill("What is blocking SO-100002?")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#chat-side")).to_contain_text("triage_order")
        expect(page.locator("#chatbot")).to_contain_text("CREDIT_HOLD")
        shot("01-chat-planner")

        page.get_by_role("tab", name="Orders").click()
        page.locator("#paste textarea").fill("SO-100002")
        page.locator("#triage").click()
        expect(page.locator("#orders-status")).to_contain_text("1 order(s) triaged")
        expect(page.locator("#orders-table")).to_contain_text("RELEASE_CREDIT_HOLD")
        expect(page.locator("#order-detail")).to_contain_text("CREDIT_HOLD")
        shot("02-triaged")

        page.locator("#request-approval").click()
        expect(page.locator("#request-status")).to_contain_text("pending")
        request_id = re.search(r"#(\d+)", page.locator("#request-status").inner_text()).group(1)
        shot("03-approval-requested")

        sign_in(T["credit_analyst"], "credit_analyst")
        page.get_by_role("tab", name="Approvals").click()
        page.locator("#refresh-queue").click()
        expect(page.locator("#queue-status")).to_contain_text("1 pending")
        expect(page.locator("#request-detail")).to_contain_text(f"Request #{request_id}")
        page.locator("#reason input, #reason textarea").first.fill("customer paid the overdue invoice")
        shot("04-queue")
        page.locator("#approve").click()
        expect(page.locator("#decision-status")).to_contain_text("executed")
        shot("05-approved")

        page.get_by_role("tab", name="Audit").click()
        page.locator("#audit-order input, #audit-order textarea").first.fill("SO-100002")
        page.locator("#audit-search").click()
        expect(page.locator("#audit-table")).to_contain_text("credit_analyst")
        expect(page.locator("#audit-table")).to_contain_text(re.compile("execut", re.I))
        page.locator("#audit-verify").click()
        expect(page.locator("#audit-status")).to_contain_text("Chain intact")
        shot("06-audit")
        browser.close()

    assert hosts <= {"127.0.0.1", "data", "blob"}, f"the page loaded from elsewhere: {sorted(hosts)}"
    assert console_errors == [], console_errors
    assert len(taken) == 6 and all(p.stat().st_size > 0 for p in taken)
