"""A practice round in a real headless Chromium (Debian's package, driven by Playwright), as a named agent account on
a live `kb serve` with the real model: the prompt appears and the clock runs, the trainee searches with the real
search and picks with the keyboard, answers the second stage, and the review of mistakes opens the right SOP."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ROOT, SOPS, serving

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (make test installs it)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from kb_service.store import files  # noqa: E402


class Live:
    def __init__(self, base: str, data: Path, key: str) -> None:
        self.base, self.data, self.key = base, data, key

    def drill(self, prompt: str) -> dict[str, Any]:
        """What only the server knows about the drill showing this prompt (the test reads it to answer on purpose)."""
        with sqlite3.connect(self.data / "service.sqlite3") as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT sop_id, followup FROM practice_drills WHERE prompt = ? ORDER BY created_ts DESC", (prompt,)
            ).fetchone()
        return {"sop_id": row["sop_id"], "followup": json.loads(row["followup"])}

    def title(self, sop_id: str) -> str:
        r = httpx.get(f"{self.base}/v1/sops/{sop_id}", headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        return str(r.json()["title"])


@pytest.fixture(scope="module")
def live(use_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("practice")
    files.copy_tree(use_data, work / "data", ignore=shutil.ignore_patterns("*.lock", "service.sqlite3*"))
    shutil.copytree(SOPS, work / "sops")
    env = {**os.environ, "KB_DATA_DIR": str(work / "data"), "KB_SOPS_DIR": str(work / "sops"), "KB_WORKERS": "1"}
    env.pop("KB_API_KEYS", None)
    made = subprocess.run(
        [sys.executable, "-m", "cli.main", "users", "add", "小王", "--role", "agent"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    with serving(work / "data", work / "sops", work / "serve.log", workers=1, embedder=None) as svc:
        yield Live(svc.url, work / "data", made.stdout.strip())


@pytest.fixture
def page(live: Live) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        p = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN").new_page()
        yield p
        browser.close()


def second_stage(page: Page, followup: dict[str, Any]) -> None:
    if followup.get("kind") == "script":
        page.keyboard.press(str(followup["answer"] + 1))
    elif followup.get("kind") == "order":
        order = [str(i + 1) for i in followup["answer"]]
        page.fill("#d-order", "".join(order) if len(order) < 10 else " ".join(order))  # "213" as a trainee types
        page.press("#d-order", "Enter")
    else:
        return
    expect(page.locator("#d-stage")).to_contain_text("答对了")


def test_a_practice_round_with_the_keyboard_and_a_review_of_mistakes(page: Page, live: Live) -> None:
    page.goto(live.base + "/practice")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    expect(page.locator("#auth-msg")).to_contain_text("小王")
    page.select_option("#p-size", "3")
    page.press("#p-size", "Enter")
    expect(page.locator("#drill")).to_be_visible()

    # Drill 1: search the right SOP's title, pick it with the arrows and Enter, then the second stage.
    prompt = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    first = live.drill(prompt)
    title = live.title(first["sop_id"])
    expect(page.locator("#d-search")).to_be_focused()
    page.wait_for_timeout(1200)
    assert page.locator("#d-clock").inner_text() != "0 s"  # the clock runs
    page.keyboard.type(title)
    target = page.locator(f"#d-results li[data-sop-id='{first['sop_id']}']")
    expect(target).to_be_visible(timeout=20_000)
    for _ in range(page.locator("#d-results li").count()):
        if "selected" in (target.get_attribute("class") or ""):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#d-feedback")).to_contain_text("正确")
    second_stage(page, first["followup"])
    page.keyboard.press("Enter")

    # Drill 2: a wrong pick on purpose.
    prompt = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    second = live.drill(prompt)
    page.keyboard.type("电梯")
    wrong = page.locator(f"#d-results li:not([data-sop-id='{second['sop_id']}'])").first
    expect(wrong).to_be_visible(timeout=20_000)
    wrong.click()
    expect(page.locator("#d-feedback")).to_contain_text("不对")
    expect(page.locator("#d-feedback")).to_contain_text(live.title(second["sop_id"]))
    if second["followup"]:
        second_stage(page, second["followup"])
    page.keyboard.press("Enter")

    # Drill 3: whatever the first result is.
    third = live.drill(page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”"))
    page.keyboard.type("房租")
    expect(page.locator("#d-results li").first).to_be_visible(timeout=20_000)
    page.keyboard.press("Enter")
    expect(page.locator("#d-feedback")).to_be_visible()
    second_stage(page, third["followup"])
    page.keyboard.press("Enter")

    # The review lists the mistake and opens the right SOP.
    expect(page.locator("#summary")).to_be_visible()
    expect(page.locator("#s-mistakes")).to_contain_text(prompt)
    page.locator("#s-mistakes li", has_text=prompt).locator("button").click()
    expect(page.locator("#s-sop h3")).to_have_text(live.title(second["sop_id"]))
    (ROOT / "tests" / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "tests" / "artifacts" / "practice.png"))
