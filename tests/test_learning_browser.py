"""Learning from use in a real headless Chromium: the agent console records opens and copies with the search's
query_id, lets the agent pick and 👍 a SOP the search missed, and the next search finds it first; the trainer
workspace lists the learned phrasing and the hit test shows that it decided the ranking."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.test_browser import (  # noqa: F401 - fixtures shared with the other browser tests
    AGENT,
    ARTIFACTS,
    TRAINER,
    Page,
    browser,
    expect,
    login,
    page,
    server,
    site_port,
)

pytestmark = pytest.mark.browser
# The outdoor unit of an air conditioner drips onto the flat below: the agent treats it as a neighbour dispute.
QUERY, MISSED = "空调外机在滴水滴到楼下", "neighbor-dispute"


def test_agent_picks_a_missed_sop_and_the_trainer_sees_what_was_learned(page: Page, server: str) -> None:  # noqa: F811
    login(page, server, AGENT)
    page.reload()
    events: list[dict[str, object]] = []
    page.on(
        "request", lambda r: events.append(json.loads(r.post_data or "{}")) if r.url.endswith("/v1/events") else None
    )
    page.locator("#search").press_sequentially(QUERY, delay=20)
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "repair-air-conditioner", timeout=10_000)
    assert MISSED not in page.locator(".result").evaluate_all("cards => cards.map(c => c.dataset.sopId)")
    query_id = int(page.locator("#results").get_attribute("data-query-id") or 0)
    assert query_id > 0

    # Opening a result and copying one of its script lines are recorded against the search.
    first.locator(".script-line .copy-btn").first.click()
    first.locator(".open-btn").click()
    expect(page.locator("#sop-view")).to_be_visible()
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    assert {"query_id": query_id, "sop_id": "repair-air-conditioner", "type": "copy"} in events
    assert {"query_id": query_id, "sop_id": "repair-air-conditioner", "type": "open"} in events

    # The right SOP was not among the results: pick it from the list, open it and 👍 it from the drawer.
    page.locator(".learn-pick-btn").click()
    page.locator(".learn-pick-input").fill("邻里")
    page.locator(".learn-pick-item", has_text=MISSED).click()
    expect(page.locator("#sop-view-title")).to_contain_text("邻里纠纷")
    page.locator(".learn-foot .vote-up").click()
    expect(page.locator(".learn-foot .vote-msg")).to_contain_text("以后类似的问法会优先显示", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "console-learned.png"), full_page=False)
    page.keyboard.press("Escape")

    # Within seconds the same words find it first.
    search = page.locator("#search")
    search.fill("")
    search.press_sequentially(QUERY, delay=20)
    expect(page.locator(".result").first).to_have_attribute("data-sop-id", MISSED, timeout=10_000)

    # The trainer sees who taught what, and the hit test says the learned channel decided the ranking.
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator(f'.doc-item[data-sop-id="{MISSED}"]').click()
    item = page.locator("#learned-list .learned-item", has_text=QUERY)
    expect(item).to_contain_text("坐席", timeout=10_000)
    expect(item).to_contain_text("确认 1 次")
    page.screenshot(path=str(ARTIFACTS / "trainer-learned.png"), full_page=False)
    page.click("#tab-hittest")
    page.fill("#hit-query", QUERY)
    page.click("#hit-run")
    expect(page.locator(".hit-row").first.locator(".learned-badge")).to_contain_text("决定了第一名", timeout=10_000)

    # Removing it in the workspace takes it out of agent search.
    page.click("#tab-docs")
    page.once("dialog", lambda d: d.accept())
    item.locator(".btn.danger").click()
    expect(page.locator("#learned-list .learned-item", has_text=QUERY)).to_have_count(0, timeout=10_000)
    headers = {"Authorization": f"Bearer {AGENT}"}

    def top() -> str:
        body = httpx.post(f"{server}/v1/search", json={"query": QUERY, "top_k": 5}, headers=headers).json()
        return str(body["results"][0]["sop_id"])

    page.wait_for_timeout(2500)
    assert top() != MISSED
