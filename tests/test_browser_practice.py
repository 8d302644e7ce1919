"""A practice round in a real headless Chromium (Debian's package, driven by Playwright), as a named agent account on
a live `kb serve` with the real model: the prompt appears and the clock runs, the trainee searches with the real
search and picks with the keyboard, answers the second stage, and the review of mistakes opens the right SOP."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser_kit import wait_for_js
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
        page.fill("#d-order", "9" * (len(order) + 1))  # a slip: said beside the box, not counted as an answer
        page.press("#d-order", "Enter")
        expect(page.locator("#d-hint")).to_contain_text("每个序号各输入一次")
        expect(page.locator("#d-stage")).not_to_contain_text("答错")
        page.fill("#d-order", "".join(order) if len(order) < 10 else " ".join(order))  # "213" as a trainee types
        page.press("#d-order", "Enter")
    else:
        return
    expect(page.locator("#d-stage")).to_contain_text("答对了")


def wrong_stage(page: Page, followup: dict[str, Any]) -> None:
    """Answer the second stage wrong: the next line after the right one, or the right order reversed."""
    if followup.get("kind") == "script":
        page.keyboard.press(str((followup["answer"] + 1) % len(followup["options"]) + 1))
    elif followup.get("kind") == "order":
        page.fill("#d-order", "".join(str(i + 1) for i in reversed(followup["answer"])))
        page.press("#d-order", "Enter")
    else:
        return
    expect(page.locator("#d-stage")).to_contain_text("答错")


def any_stage(page: Page) -> None:
    """Answer the second stage shown with its first line, or its steps in the order shown."""
    if page.locator("#d-order").is_visible():
        page.fill("#d-order", "".join(str(i + 1) for i in range(page.locator("#d-stage li").count())))
        page.press("#d-order", "Enter")
    else:
        page.keyboard.press("1")


def test_a_practice_round_with_the_keyboard_and_a_review_of_mistakes(page: Page, live: Live) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})  # a trial's laptop: the Enter hint was below the fold
    page.goto(live.base + "/practice")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    expect(page.locator("#auth-msg")).to_contain_text("小王")
    page.select_option("#p-size", "3")
    page.press("#p-size", "Enter")
    expect(page.locator("#drill")).to_be_visible()

    # Drill 1: search the right SOP's title, pick it with the arrows and Enter, then the second stage.
    prompt = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    first = {**live.drill(prompt), "prompt": prompt}
    title = live.title(first["sop_id"])
    expect(page.locator("#d-search")).to_be_focused()
    page.wait_for_timeout(1200)
    assert page.locator("#d-clock").inner_text() != "0.0 s"  # the clock runs
    page.keyboard.type(title)
    target = page.locator(f"#d-results li[data-sop-id='{first['sop_id']}']")
    expect(target).to_be_visible(timeout=20_000)
    for _ in range(page.locator("#d-results li").count()):
        if "selected" in (target.get_attribute("class") or ""):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#d-feedback")).to_contain_text("正确")
    shown = page.locator("#d-clock").inner_text().removesuffix(" s")  # the clock stops on the recorded time
    expect(page.locator("#d-feedback")).to_contain_text(f"（{shown} 秒）")
    wrong_stage(page, first["followup"])  # the second stage wrong on purpose: the review says what was chosen
    expect(page.locator("#d-hint")).to_contain_text("按 Enter 进入下一题")
    expect(page.locator("#d-hint")).to_be_in_viewport()
    page.keyboard.press("Enter")

    # Drill 2: a wrong pick on purpose.
    prompt = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    second = live.drill(prompt)
    page.keyboard.type("电梯")
    wrong = page.locator(f"#d-results li:not([data-sop-id='{second['sop_id']}'])").first
    expect(wrong).to_be_visible(timeout=20_000)
    picked = live.title(wrong.get_attribute("data-sop-id") or "")
    wrong.click()
    expect(page.locator("#d-feedback")).to_contain_text("不对")
    expect(page.locator("#d-feedback")).to_contain_text(live.title(second["sop_id"]))
    # what each of the two SOPs is for, to learn the difference (a trial: only the right title was said)
    expect(page.locator("#d-feedback .scene")).to_have_count(2)
    expect(page.locator("#d-feedback .scene").nth(1)).to_contain_text(f"你选的「{picked}」适用于：")
    wrong_stage(page, second["followup"])  # both stages wrong: in practice the second still counts, said so below
    page.keyboard.press("Enter")

    # Drill 3: whatever the first result is (its second stage wrong on purpose when drill 1 had none).
    prompt3 = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    third = {**live.drill(prompt3), "prompt": prompt3}
    page.keyboard.type("房租")
    expect(page.locator("#d-results li").first).to_be_visible(timeout=20_000)
    page.keyboard.press("Enter")
    expect(page.locator("#d-feedback")).to_be_visible()
    (second_stage if first["followup"] else wrong_stage)(page, third["followup"])
    page.keyboard.press("Enter")

    # The review lists the mistake and opens the right SOP; the score is the session's (a practice round: no verdict).
    expect(page.locator("#summary")).to_be_visible()
    latest = call(live, live.key, "GET", "/v1/practice/mine?limit=1")[0]
    assert latest["finished"] and not latest["exam"]
    expect(page.locator("#s-score")).to_contain_text(f"得分 {round(latest['score'] * 100)}%")
    assert page.locator("#s-verdict").count() == 0
    expect(page.locator("#s-retake")).to_be_hidden()  # a practice round has no exam to sit again
    expect(page.locator("#s-mistakes")).to_contain_text(prompt)
    # the SOP picked beside the right one; no exam's rule said of a practice round (a training manager's trial)
    mistake = page.locator("#s-mistakes li.mistake", has_text=prompt)
    expect(mistake.locator(".chosen-sop")).to_have_text(f"你选的 SOP：{picked}")
    if second["followup"]:
        expect(page.locator("#s-score")).to_contain_text("第二步答对")
        expect(page.locator("#s-score")).not_to_contain_text("不得分")
    staged = next((d for d in (first, third) if d["followup"]), None)  # the one answered wrong on purpose
    if staged is not None:  # the right line or order beside what was chosen, each labelled
        missed = page.locator("#s-mistakes li.mistake", has_text=staged["prompt"])
        expect(missed).to_contain_text("你选的话术：" if staged["followup"]["kind"] == "script" else "你排的顺序：")
        expect(missed).to_contain_text("正确话术：" if staged["followup"]["kind"] == "script" else "正确顺序：")
    page.locator("#s-mistakes li", has_text=prompt).locator("button").click()
    expect(page.locator("#s-sop h3")).to_have_text(live.title(second["sop_id"]))
    shown = page.locator("#s-sop").inner_text()
    assert "- " not in shown and "1. " not in shown  # list markers from the text are not doubled by the list's own
    sop = call(live, live.key, "GET", f"/v1/sops/{second['sop_id']}")
    if any(s.get("qa") for s in sop["sections"]):  # questions some answers are only in
        expect(page.locator("#s-sop .sop-faq dt").first).to_be_visible()
    (ROOT / "tests" / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "tests" / "artifacts" / "practice.png"))


def add_user(live: Live, name: str, role: str) -> str:
    env = {**os.environ, "KB_DATA_DIR": str(live.data), "KB_SOPS_DIR": str(live.data.parent / "sops")}
    env.pop("KB_API_KEYS", None)
    cmd = [sys.executable, "-m", "cli.main", "users", "add", name, "--role", role]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def call(live: Live, key: str, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, live.base + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert r.status_code < 300, r.text
    return r.json()


def test_what_a_new_user_sees_on_the_practice_page_console_and_trainer_workspace(page: Page, live: Live) -> None:
    """The key warning goes once a key works; 我的练习记录 lists the agent's rounds; the console's certification line
    shows the category (not an element stringified); the trainer workspace shows Chinese roles, SOP titles among the
    confusions, and no usable 停用 on the admin's own row."""
    admin = add_user(live, "老周", "admin")
    call(live, admin, "PUT", "/v1/practice/exams/报修", {"pass_mark": 0.01, "size": 1})
    exam = call(live, live.key, "POST", "/v1/practice/sessions", {"category": "报修", "exam": True})
    drill = exam["drills"][0]
    path = f"/v1/practice/sessions/{exam['session_id']}/answers"
    out = call(
        live, live.key, "POST", path, {"drill_id": drill["drill_id"], "sop_id": live.drill(drill["prompt"])["sop_id"]}
    )
    if out["next"]:
        stage = live.drill(drill["prompt"])["followup"]
        body = {"choice": stage["answer"]} if stage["kind"] == "script" else {"order": stage["answer"]}
        out = call(live, live.key, "POST", path, {"drill_id": drill["drill_id"], "stage": stage["kind"], **body})
    assert out["session"]["certified"] is True
    practice = call(live, live.key, "POST", "/v1/practice/sessions", {"size": 1})
    first = practice["drills"][0]
    wrong = next(
        s["sop_id"]
        for s in call(live, live.key, "GET", "/v1/sops")
        if s["sop_id"] != live.drill(first["prompt"])["sop_id"]
    )
    call(
        live,
        live.key,
        "POST",
        f"/v1/practice/sessions/{practice['session_id']}/answers",
        {"drill_id": first["drill_id"], "sop_id": wrong, "ms": 400},  # a script's time, whatever the machine's load
    )

    page.goto(live.base + "/practice")
    expect(page.locator("#p-message")).to_contain_text("练习需要坐席或培训师密钥")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    expect(page.locator("#auth-msg")).to_contain_text("小王")
    expect(page.locator("#p-message")).to_be_hidden()
    expect(page.locator(f"#p-mine li[data-session-id='{practice['session_id']}']")).to_contain_text("找对 SOP 0 / 1")
    expect(page.locator(f"#p-mine li[data-session-id='{exam['session_id']}']")).to_contain_text("考试")
    expect(page.locator(f"#p-mine li[data-session-id='{exam['session_id']}'] .verdict")).to_have_text("通过")

    page.goto(live.base + "/")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    expect(page.locator("#certs")).to_contain_text("已认证：报修")
    assert "object" not in page.locator("#certs").inner_text()
    # A change to the category's procedures after the pass: the certificate stays and asks for a retake.
    src = call(live, admin, "GET", "/v1/sops/repair-air-conditioner/source")
    put = httpx.put(
        f"{live.base}/v1/sops/repair-air-conditioner",
        content=src["content"].replace("接报后 5 分钟内响应", "接报后 3 分钟内响应").encode(),
        params={"base_version": src["version"], "force": True},
        headers={"Authorization": f"Bearer {admin}", "content-type": "text/markdown"},
        timeout=60,
    )
    assert put.status_code == 200, put.text
    page.reload()
    expect(page.locator("#certs")).to_contain_text("报修（有更新）")

    # Who still needs the exam and why (a trial saw 认证 "—" alike for an agent who failed and one who never sat it)
    wu = add_user(live, "小吴", "agent")
    call(live, wu, "POST", "/v1/practice/sessions", {"category": "报修", "exam": True})  # started, never finished
    qian = add_user(live, "小钱", "agent")
    failed = call(live, qian, "POST", "/v1/practice/sessions", {"category": "报修", "exam": True})
    asked = failed["drills"][0]
    other = next(
        s["sop_id"] for s in call(live, qian, "GET", "/v1/sops") if s["sop_id"] != live.drill(asked["prompt"])["sop_id"]
    )
    answers = f"/v1/practice/sessions/{failed['session_id']}/answers"
    out = call(live, qian, "POST", answers, {"drill_id": asked["drill_id"], "sop_id": other})
    if out["next"]:  # a second stage from the SOP picked (none would tell the pick was wrong), which hands it in
        shown = out["next"]
        body = {"choice": 0} if shown["kind"] == "script" else {"order": list(range(len(shown["steps"])))}
        out = call(live, qian, "POST", answers, {"drill_id": asked["drill_id"], "stage": shown["kind"], **body})
    assert out["session"]["finished"]
    add_user(live, "小孙", "agent")

    page.goto(live.base + "/trainer#training")
    page.fill("#api-key", admin)
    page.click("#save-key")
    people = page.locator("#training-people")
    expect(people).to_contain_text("坐席")
    expect(people.locator("tr", has_text="小钱")).to_contain_text("未通过：报修（最高 0%）")
    expect(people.locator("tr", has_text="小吴")).to_contain_text("未完成：报修")
    expect(people.locator("tr", has_text="小孙")).to_contain_text("未参加：报修")
    expect(people.locator("tr", has_text="小王")).not_to_contain_text("未参加")
    expect(people.locator("th span[title]", has_text="检索成功率")).to_have_attribute("title", re.compile("查看或复制"))
    with page.expect_request(re.compile(r"/v1/practice/report\?since=\d+")) as asked:  # a week, not always 12
        page.select_option("#training-range", "7")
    since = int(re.search(r"since=(\d+)", asked.value.url).group(1))  # type: ignore[union-attr]
    assert abs(time.time() - 7 * 86400 - since) < 300
    expect(people.locator("tr", has_text="小钱")).to_contain_text("未通过：报修")
    expect(people).to_contain_text("报修（认证后 1 处变更，建议重考）")
    assert "agent" not in people.inner_text()
    expect(page.locator("#training-sops")).to_contain_text(f"{live.title(wrong)}×")
    assert f"{wrong}×" not in page.locator("#training-sops").inner_text()
    # Every exam attempt, with its result (a trial found none in the report nor the CSV)
    expect(page.locator("#training-exams tr:has(td)", has_text="小王").first).to_contain_text("通过")
    # The exam form shows what is saved (it showed 80 % / 10 whatever was set, and saving would overwrite it).
    expect(page.locator("#exam-saved")).to_contain_text("报修 1%·1 题")
    # opened afresh on a category with an exam, not on the first one's defaults (a training manager's trial)
    expect(page.locator("#exam-category")).to_have_value("报修")
    page.select_option("#exam-category", "报修")
    expect(page.locator("#exam-mark")).to_have_value("1")
    expect(page.locator("#exam-size")).to_have_value("1")
    # What the category can set, before setting it (a trial learned it from refusals, one category at a time)
    repair = next(r for r in call(live, admin, "GET", "/v1/practice/supply") if r["category"] == "报修")
    expect(page.locator("#exam-supply")).to_contain_text(f"“报修”可出考试题 {repair['exam_ready']} 道")
    expect(page.locator("#exam-category option[value='报修']")).to_have_text(f"报修（题库 {repair['exam_ready']} 题）")
    # A SOP with neither examples nor FAQ is listed by title, a link that opens it (a trial saw [object …] instead)
    bare = "---\nid: repair-balcony-rack\ntitle: 升降晾衣架维修\ncategory: 报修\naudience: agent\n---\n"
    bare += "# 升降晾衣架维修\n\n"
    bare += "## 处理步骤\n1. 问清是摇不动还是钢丝断了。\n2. 建维修工单。\n"
    put = httpx.put(
        live.base + "/v1/sops/repair-balcony-rack",
        content=bare.encode(),
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "text/markdown"},
        timeout=120,
    )
    assert put.status_code < 300, put.text
    page.click("#training-refresh")
    page.select_option("#exam-category", "报修")
    link = page.locator("#exam-supply button.linkish", has_text="升降晾衣架维修")
    expect(link).to_be_visible(timeout=20_000)
    assert "object" not in page.locator("#exam-supply").inner_text()
    link.click()
    expect(page.locator("#editor")).to_have_value(re.compile("id: repair-balcony-rack"), timeout=10_000)
    page.click("#tab-training")
    page.set_viewport_size({"width": 1366, "height": 768})  # the trial's laptop: the table is screens below the panel
    people.locator("button.linkish", has_text="小王").click()  # the person's rounds, the exam with its result
    rounds = page.locator("#training-sessions")
    expect(rounds.locator("tr:has(td)", has_text="报修")).to_contain_text("通过", timeout=10_000)
    expect(rounds.locator("tr:has(td)", has_text="练习").first).to_contain_text("0 / 1")  # the latest round first
    # ... beside the person's service figures of the same window (one page per person: a training lead's trial)
    expect(page.locator("#training-person-service")).to_contain_text("小王 的在岗服务")
    # the panel is brought to the top of the screen (a trial, scrolled down to the table, saw nothing change)
    wait_for_js(page, "() => Math.abs(document.querySelector('#training-trend').getBoundingClientRect().top) < 40")
    # The round question by question, to coach from (a trial found the review only in the API)
    rounds.locator("tr:has(td)", has_text="练习").first.locator("button", has_text="每题").click()
    review = page.locator("#training-session-items tr:has(td)")
    expect(review).to_have_count(1)
    expect(review).to_contain_text(first["prompt"])
    expect(review).to_contain_text(live.title(wrong))
    expect(review).to_contain_text(live.title(live.drill(first["prompt"])["sop_id"]))
    expect(review).to_contain_text("✗")
    missed = live.title(live.drill(first["prompt"])["sop_id"])
    # the SOP the person failed to find (×2 when the keyboard round before this test missed it too: random drills)
    expect(people.locator("tr", has_text="小王")).to_contain_text(re.compile(re.escape(missed) + r"×\d"))
    expect(people.locator("tr", has_text="小王")).to_contain_text("题过快")  # the 400 ms answer above
    page.fill("#exam-days", "-3")  # a wrong field is named alone (a trial got one sentence for any of them)
    page.click("button:has-text('设置考试')")
    expect(page.locator("#exam-message")).to_have_text("有效期应为 1–3650 天或留空。")
    page.fill("#exam-days", "30")
    page.check("#exam-every-stage")
    page.locator("#exam-scope summary").click()  # an exam on one SOP of the category (a training lead's trial)
    page.check("#exam-scope input[value='repair-air-conditioner']")
    expect(page.locator("#exam-scope summary")).to_have_text("出题范围：已选 1 份 SOP")
    # ... and what that SOP alone can set (a trial ticked 3 of 10 and read the whole category's figures)
    alone = repair["ready_by_sop"]["repair-air-conditioner"]
    expect(page.locator("#exam-supply")).to_contain_text(f"“报修”中所选 1 份 SOP 可出考试题 {alone} 道", timeout=10_000)
    assert alone < repair["exam_ready"]
    page.click("button:has-text('设置考试')")
    expect(page.locator("#exam-saved")).to_contain_text("报修 1%·1 题·1 份 SOP·30 天有效·第二步须全对", timeout=20_000)
    saved = call(live, admin, "GET", "/v1/practice/exams")[0]
    assert saved["every_stage"] is True and saved["sops"] == ["repair-air-conditioner"]
    page.click("#training-refresh")  # the form stays on the category being set (it went back to the first one)
    expect(page.locator("#exam-days")).to_have_value("30")
    expect(page.locator("#exam-every-stage")).to_be_checked()
    expect(page.locator("#exam-category")).to_have_value("报修")
    assert call(live, live.key, "GET", "/v1/practice/exams")[0]["expires_ts"] is not None
    page.once("dialog", lambda d: d.accept())
    page.click("#exam-withdraw")
    expect(page.locator("#exam-saved")).to_have_text("还没有设置任何考试。")
    assert call(live, live.key, "GET", "/v1/practice/exams") == []
    page.click("#tab-accounts")
    own = page.locator("#account-rows tr[data-name='老周'] button", has_text="停用")
    expect(own).to_be_disabled()
    assert "自己" in (own.get_attribute("title") or "")
    expect(page.locator("#account-rows tr[data-name='小王'] button", has_text="停用")).to_be_enabled()
    expect(page.locator("#account-rows tr[data-name='老周'] select")).to_have_count(0)  # one's own role stays
    add_user(live, "小赵", "agent")
    page.click("#tab-training")
    page.click("#tab-accounts")  # the list again, with the new account
    page.once("dialog", lambda d: d.accept())
    page.select_option("#account-rows tr[data-name='小赵'] select", "trainer")
    expect(page.locator("#account-rows tr[data-name='小赵'] select")).to_have_value("trainer")
    deadline = time.time() + 15  # the select shows the choice at once; the change is saved by the request it sends
    while next(a for a in call(live, admin, "GET", "/v1/users") if a["name"] == "小赵")["role"] != "trainer":
        assert time.time() < deadline, "the role change was not saved"
        time.sleep(0.2)
    # A new account's key, shown once, does not stay on screen once the account is disabled (a trial)
    page.fill("#account-name", "临时工")
    page.click("#account-add")
    expect(page.locator("#new-key")).to_be_visible()
    page.locator("#account-rows tr[data-name='临时工'] button", has_text="停用").click()
    expect(page.locator("#account-key")).to_contain_text("临时工 已停用，刚才显示的密钥已失效")
    expect(page.locator("#new-key")).to_have_count(0)


def test_change_cards_fold_after_the_first_and_strike_a_line_a_later_version_changed(page: Page, live: Live) -> None:
    trainer = add_user(live, "林培训", "trainer")
    sop = "repair-drain-blocked"
    fresh = "---\nid: parcel-locker-new\ntitle: 快递柜取件\ncategory: 社区\naudience: public\n---\n# 快递柜取件\n\n"
    fresh += "## 处理步骤\n1. 让租客报取件码。\n2. 远程开柜；柜门密码锁没电的，按 access-smart-lock 处理。\n"
    made = httpx.put(
        f"{live.base}/v1/sops/parcel-locker-new",
        content=fresh.encode(),
        headers={"Authorization": f"Bearer {trainer}", "content-type": "text/markdown"},
        timeout=120,
    )
    assert made.status_code == 200, made.text  # a new SOP, before the edits: its card comes after theirs
    for n in (2, 3, 4):  # six cards in all: five are drawn, the sixth is counted (a trial's waited unseen)
        more = fresh.replace("parcel-locker-new", f"parcel-locker-new-{n}").replace("快递柜取件", f"快递柜取件{n}号")
        made = httpx.put(
            f"{live.base}/v1/sops/parcel-locker-new-{n}",
            content=more.encode(),
            headers={"Authorization": f"Bearer {trainer}", "content-type": "text/markdown"},
            timeout=120,
        )
        assert made.status_code == 200, made.text
    edits = (("接报后 5 分钟内建单。", "接报后 3 分钟内建单。"), ("接报后 3 分钟内建单。", "接报后 4 分钟内建单。"))
    for old, new in edits:
        src = call(live, trainer, "GET", f"/v1/sops/{sop}/source")
        r = httpx.put(
            f"{live.base}/v1/sops/{sop}",
            content=src["content"].replace(old, new).encode(),
            params={"base_version": src["version"], "force": True},
            headers={"Authorization": f"Bearer {trainer}", "content-type": "text/markdown"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
    page.goto(live.base + "/")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    cards = page.locator("#change-cards .change-card")
    waiting = len(call(live, live.key, "GET", "/v1/changes"))  # ours, and any an earlier test left unread
    assert waiting >= 6
    expect(cards).to_have_count(5)
    expect(page.locator("#change-cards .more-changes")).to_contain_text(f"还有 {waiting - 5} 条变更待确认")
    expect(cards.filter(has_text="快递柜取件2号").locator("summary")).to_contain_text("新增 SOP：快递柜取件")
    # another SOP named by its id reads as its title, as on the search cards (a training manager's trial)
    lines = cards.filter(has_text="快递柜取件2号").locator(".change-lines")
    expect(lines).to_contain_text("《智能门锁没电、密码失效、指纹不识别及 App 开锁失败》")
    assert "access-smart-lock" not in (lines.text_content() or "")
    # ... also when the titles come after the cards (a CI run's cards came first and printed [object …])
    page.route(re.compile(r".*/v1/sops(\?.*)?$"), lambda route: (time.sleep(2), route.continue_()))
    page.reload()
    lines = page.locator("#change-cards .change-card").filter(has_text="快递柜取件2号").locator(".change-lines")
    expect(lines).to_contain_text("《智能门锁没电、密码失效、指纹不识别及 App 开锁失败》", timeout=15_000)
    assert "object" not in (lines.text_content() or "") and "access-smart-lock" not in (lines.text_content() or "")
    page.unroute(re.compile(r".*/v1/sops(\?.*)?$"))
    expect(cards.nth(1)).to_be_attached()
    expect(cards.first).to_have_attribute("open", "")  # the first card open, the others folded
    assert cards.nth(1).get_attribute("open") is None
    # the SOP changed last first, its two changes in the order they were made: the 3-minute line, then the 4
    stale = cards.first.locator("li.superseded")
    expect(cards.first.locator("summary")).to_contain_text("改了：时限要求")  # two cards of one SOP told apart
    expect(stale).to_contain_text("接报后 3 分钟内建单。")
    expect(stale).to_contain_text("已被 v")
    cards.nth(1).locator("summary").click()
    expect(cards.nth(1).locator("li.add")).to_contain_text("接报后 4 分钟内建单。")
    cards.first.locator("button", has_text="我已了解").click()
    more = page.locator("#change-cards .more-changes")  # the sixth is drawn now
    if waiting > 6:
        expect(more).to_contain_text(f"还有 {waiting - 6} 条")
    else:
        expect(more).to_have_count(0)
    expect(cards).to_have_count(5)
    expect(cards.first).to_have_attribute("open", "")  # the next card unfolds where the first was read
    page.fill("#search", "下水道堵了")  # a search puts one line in the cards' place: the results are not pushed down
    expect(cards.first).to_be_hidden()
    expect(page.locator("#change-pending")).to_have_text(f"{waiting - 1} 条 SOP 更新待确认（清空搜索框后查看）")
    first_result = page.locator("#results .result").first
    expect(first_result).to_be_visible()
    box = first_result.bounding_box()
    assert box is not None and box["y"] < 300, box  # near the top of a 768-pixel screen (a trial: y 389 with 4 cards)
    page.fill("#search", "")
    expect(cards.first).to_be_visible()  # back, folded to their title lines
    expect(page.locator("#change-pending")).to_be_hidden()
    assert all(cards.nth(i).get_attribute("open") is None for i in range(cards.count()))


def test_the_service_figures_tab_shows_replies_the_queue_and_the_agents(page: Page, live: Live) -> None:
    """A supervisor's 服务指标: a case answered by 小王 and one still waiting, read in the trainer workspace."""
    trainer = add_user(live, "周主管", "trainer")
    contact = {"name": "李四", "room": "2栋502", "phone": "13900139000"}
    opened = []
    for question in ("空调不制冷了", "门口的快递柜打不开，说了好几次了都没人管"):  # the second complains
        r = httpx.post(live.base + "/v1/cases", json={"session_id": "s-svc", "question": question, "contact": contact})
        assert r.status_code == 201, r.text
        opened.append(r.json()["case_id"])
    call(live, live.key, "POST", f"/v1/cases/{opened[0]}/take", {"agent": "小王"})
    call(live, live.key, "POST", f"/v1/cases/{opened[0]}/messages", {"text": "师傅下午两点上门"})
    httpx.post(live.base + "/v1/chat", json={"question": "附近有什么好吃的火锅店推荐吗"}, timeout=30).raise_for_status()
    page.goto(live.base + "/trainer#service")
    page.fill("#api-key", trainer)
    page.click("#save-key")
    expect(page.locator("#service-waiting")).to_contain_text("现在有 1 个工单等待首次回复")
    overall = page.locator("#service-overall")
    expect(overall).to_contain_text("首次回复目标：紧急 5 分钟，普通 30 分钟")
    expect(overall.locator("tr", has_text="全部")).to_contain_text("秒")  # a first reply within seconds
    expect(overall.locator("tr", has_text="其中投诉").locator("td").nth(1)).to_have_text("1")  # complaint closure
    expect(page.locator("#service-agents tr", has_text="小王")).to_be_visible()
    # the chat's hand-over replies are not read as cases (a trial set 转人工 8 个 beside a table of 3)
    said = re.compile(r"未能答复、建议转人工 \d+ 个（租客不一定提交了工单")
    expect(page.locator("#service-chat")).to_contain_text(said)


def test_a_case_another_agent_holds_shows_who_instead_of_a_reply_box(page: Page, live: Live) -> None:
    """A tenant trial: 王芳 could type a whole reply into 李明's case and only then got a refusal in two languages."""
    li, wang = add_user(live, "李明甲", "agent"), add_user(live, "王芳乙", "agent")
    body = {"session_id": "s-held", "question": "门卡刷不开了", "contact": {"room": "3栋1503", "phone": "13700137000"}}
    made = httpx.post(live.base + "/v1/cases", json=body, timeout=30).json()
    call(live, li, "POST", f"/v1/cases/{made['case_id']}/take", {})
    page.goto(live.base + "/")
    page.fill("#api-key", wang)
    page.click("#save-key")
    expect(page.locator("#auth-msg")).to_contain_text("王芳乙", timeout=10_000)
    page.locator("#cases-toggle").click()
    page.locator(".case-open", has_text="门卡刷不开了").click()
    held = page.locator(".case-held")
    expect(held).to_contain_text("李明甲 正在处理", timeout=10_000)
    expect(page.locator(".case-reply")).to_have_count(0)
    expect(page.locator(".case-close")).to_have_count(0)  # nor a 关闭 the server would refuse
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    held.locator(".case-take-over").click()  # taking it over on purpose, after a question, gives the reply box
    expect(page.locator(".case-reply")).to_be_visible(timeout=10_000)
    assert asked and "仍要接管" in asked[0]
    detail = call(live, wang, "GET", f"/v1/cases/{made['case_id']}")
    assert detail["taken_by"] == "王芳乙"
    # Taken back while she types: what she typed is kept in sight, and there again once she takes the case back
    page.locator(".case-reply").fill("刘先生，安保马上到，请在楼下稍等。")
    call(live, li, "POST", f"/v1/cases/{made['case_id']}/take", {"force": True})
    expect(page.locator(".case-draft")).to_contain_text("安保马上到", timeout=15_000)
    page.once("dialog", lambda d: d.accept())
    page.locator(".case-held .case-take-over").click()
    expect(page.locator(".case-reply")).to_have_value("刘先生，安保马上到，请在楼下稍等。", timeout=10_000)
    # Taken by another agent while this one looked at it: 接入 is refused and the case is shown as it is now (a trial's
    # detail still said 待接入 with a live 接入 button under the refusal)
    body = {**body, "session_id": "s-race", "question": "楼道灯不亮了"}
    race = httpx.post(live.base + "/v1/cases", json=body, timeout=30).json()
    page.reload()
    page.locator("#cases-toggle").click()
    page.locator(".case-open", has_text="楼道灯不亮了").click()
    expect(page.locator(".case-take")).to_be_visible(timeout=10_000)
    call(live, li, "POST", f"/v1/cases/{race['case_id']}/take", {})
    page.locator(".case-take").click()
    expect(page.locator(".case-error")).to_be_visible(timeout=10_000)
    # at once, not at the next poll of the open case (every 4 s)
    expect(page.locator(".case-held")).to_contain_text("李明甲 正在处理", timeout=2500)
    expect(page.locator(".case-take")).to_have_count(0, timeout=500)


def test_a_failed_exam_can_be_sat_again_from_its_result(page: Page, live: Live) -> None:
    """A trial: after a failed exam the only button was 再练一轮, which starts a practice round."""
    admin = add_user(live, "老钱", "admin")
    call(live, admin, "PUT", "/v1/practice/exams/报修", {"pass_mark": 1.0, "size": 1})
    page.goto(live.base + "/practice")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    page.locator("#p-exams li[data-category='报修'] button", has_text="参加考试").click()
    expect(page.locator("#d-progress")).to_contain_text("（考试）")
    drill = live.drill(page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”"))
    page.keyboard.type("电梯")
    wrong = page.locator(f"#d-results li:not([data-sop-id='{drill['sop_id']}'])").first
    expect(wrong).to_be_visible(timeout=20_000)
    wrong.click()
    # a one-question exam: a wrong pick is not told either; a second stage from the SOP picked (the right SOP's
    # would show it) is asked and hands the exam in, the pick and the stage then judged
    expect(page.locator("#d-feedback")).to_contain_text("考试交卷后公布")
    expect(page.locator("#d-stage")).to_be_visible()
    any_stage(page)
    expect(page.locator("#d-stage")).to_contain_text("SOP 选错了")
    page.keyboard.press("Enter")
    expect(page.locator("#s-verdict")).to_have_text("未通过")
    expect(page.locator("#s-score")).to_contain_text("（其中 1 题 SOP 选错，第二步不得分）")  # not read as its own
    page.click("#s-retake")
    expect(page.locator("#d-progress")).to_contain_text("第 1 / 1 题（考试）")
    page.fill("#d-search", "电梯")  # the retake's SOP picked, its second stage left open
    expect(page.locator("#d-results li.selected")).to_be_visible(timeout=20_000)
    page.press("#d-search", "Enter")
    expect(page.locator("#d-stage")).to_be_visible()
    gone = httpx.delete(live.base + "/v1/practice/exams/报修", headers={"Authorization": f"Bearer {admin}"})
    assert gone.status_code == 204
    # the retake left open is not to be continued with 参加考试 any more: the exam was withdrawn (a trial was told to)
    page.reload()
    latest = page.locator("#p-mine li").first
    expect(latest).to_contain_text("这门考试现在不能参加", timeout=20_000)
    assert "再点「参加考试」" not in latest.inner_text()


def test_an_exam_is_taken_in_ones_own_words_and_judged_when_handed_in(page: Page, live: Live) -> None:
    """A trial passed an exam's find stage by pasting each prompt into the search and a retake on the answers shown
    after each wrong one: in an exam the prompt is not pasted nor copied word for word into the search, and right,
    wrong and the right SOP show once the last question is answered."""
    trainer = add_user(live, "考官", "trainer")
    call(live, trainer, "PUT", "/v1/practice/exams/报修", {"pass_mark": 0.5, "size": 2})
    key = add_user(live, "小李", "agent")
    page.goto(live.base + "/practice")
    page.fill("#api-key", key)
    page.click("#save-key")
    page.locator("#p-exams li[data-category='报修'] button").click()
    expect(page.locator("#d-progress")).to_contain_text("（考试）")
    prompt = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    first = live.drill(prompt)
    pasted = page.evaluate(
        """() => { const e = new ClipboardEvent('paste', {cancelable: true, clipboardData: new DataTransfer()});
                  document.querySelector('#d-search').dispatchEvent(e); return e.defaultPrevented; }"""
    )
    assert pasted is True
    expect(page.locator("#d-hint")).to_contain_text("不能粘贴")
    if len(re.sub(r"[\W_]", "", prompt)) >= 4:  # the whole prompt typed word for word, short ones too
        page.keyboard.type(prompt)
        expect(page.locator("#d-hint")).to_contain_text("不要照抄")
        page.wait_for_timeout(600)
        expect(page.locator("#d-results li")).to_have_count(0)
        page.fill("#d-search", "")
    # A wrong SOP on purpose: recorded, not judged yet.
    page.keyboard.type("电梯")
    wrong = page.locator(f"#d-results li:not([data-sop-id='{first['sop_id']}'])").first
    expect(wrong).to_be_visible(timeout=20_000)
    wrong.click()
    expect(page.locator("#d-feedback")).to_contain_text("考试交卷后公布")
    assert live.title(first["sop_id"]) not in page.locator("#d-feedback").inner_text()
    # the right SOP's lines or steps would give it away, no stage at all would tell it was wrong: the picked SOP's
    expect(page.locator("#d-stage")).to_be_visible()
    any_stage(page)
    expect(page.locator("#d-stage")).to_contain_text("已作答")
    page.keyboard.press("Enter")
    # The second drill answered from the database; the summary then judges both.
    prompt2 = page.locator("#d-prompt").inner_text().strip().removeprefix("租客：“").removesuffix("”")
    second = live.drill(prompt2)
    page.keyboard.type(live.title(second["sop_id"]))
    target = page.locator(f"#d-results li[data-sop-id='{second['sop_id']}']")
    expect(target).to_be_visible(timeout=20_000)
    target.click()
    expect(page.locator("#d-feedback")).to_be_visible()
    second_stage(page, second["followup"])  # the last stage hands the exam in: judged at once
    page.keyboard.press("Enter")
    expect(page.locator("#summary")).to_be_visible()
    expect(page.locator("#s-score")).to_contain_text("找对 SOP 1 / 2")
    expect(page.locator("#s-mistakes")).to_contain_text(prompt)


STOVE = """---
id: repair-gas-stove
title: 燃气灶维修
category: 报修
audience: agent
---
# 燃气灶维修

## 处理步骤
1. 核实房号，在工单系统建立维修单。
2. 通知工程部48小时内上门维修。
"""


def test_a_trainer_ticks_suggested_tenant_phrasings_into_a_terse_sops_examples(page: Page, live: Live) -> None:
    """A trial: a terse knowledge base without `examples` had whole categories with nothing to practise. The SOP's
    练习问法 offers tenant phrasings to tick; adding them publishes a version whose examples are drills."""
    trainer = add_user(live, "周培训", "trainer")
    put = httpx.put(
        live.base + "/v1/sops/repair-gas-stove",
        content=STOVE.encode(),
        headers={"Authorization": f"Bearer {trainer}", "content-type": "text/markdown"},
        timeout=60,
    )
    assert put.status_code in (200, 201), put.text
    page.goto(live.base + "/trainer")
    item = page.locator('.doc-item[data-sop-id="payment-rent"] .doc-item-meta')  # a public document
    expect(item).to_be_visible(timeout=10_000)
    # without a key the list is the public view, which hides versions: no 「v0」 (a trainer's trial worried at it)
    expect(item).not_to_contain_text(re.compile(r"v\d"))
    page.fill("#api-key", trainer)
    page.click("#save-key")
    expect(item).to_contain_text(re.compile(r"v[1-9]"))
    page.locator('.doc-item[data-sop-id="repair-gas-stove"]').click()
    page.locator("#drills-title").click()
    box = page.locator("#drills-suggested")
    expect(page.locator("#drills-title")).to_have_text("练习问法（0）", timeout=10_000)
    expect(box).to_be_visible(timeout=30_000)  # suggestions are worked out from the lexicons: slow on a busy machine
    page.click("#drills-add")  # nothing ticked: said, nothing published
    expect(box).to_contain_text("请先勾选")
    first, second = box.locator("input[type=checkbox]").nth(0), box.locator("input[type=checkbox]").nth(1)
    chosen = [first.get_attribute("value"), second.get_attribute("value")]
    first.check()
    second.check()
    page.click("#drills-add")
    msg = box.locator(".learned-msg")
    expect(msg).to_contain_text(re.compile("已加入|仍然加入"), timeout=30_000)
    if "仍然加入" in msg.inner_text():  # the publish's example regression: a trainer may add them anyway
        msg.locator("button", has_text="仍然加入").click()
    expect(page.locator("#drills-list .drill-item[data-source='example']")).to_have_count(2, timeout=30_000)
    shown = page.locator("#drills-list .drill-item .learned-text").all_inner_texts()
    assert sorted(shown) == sorted(chosen)
    src = call(live, trainer, "GET", "/v1/sops/repair-gas-stove/source")
    assert src["version"] == put.json()["version"] + 1 and all(c in src["content"] for c in chosen if c)


def test_a_trainer_assigns_a_practice_round_and_the_agent_does_it_from_the_practice_page(
    page: Page, live: Live
) -> None:
    """Training assignments: the trainer picks a SOP, a person and a date in the training tab; the agent's console
    says a task is due, the practice page starts the round it asks for, and once finished both sides read 已完成."""
    trainer = add_user(live, "老林", "trainer")
    page.goto(live.base + "/trainer#training")
    page.fill("#api-key", trainer)
    page.click("#save-key")
    panel = page.locator("#assign-panel")
    expect(panel.locator("input[name=assignee][value='小王']")).to_be_visible(timeout=30_000)
    page.select_option("#assign-category", "报修")
    page.locator("#assign-sops summary").click()
    page.locator("#assign-sops input[value='repair-leak-ceiling']").check()
    page.locator("input[name=assignee][value='小王']").check()
    page.fill("#assign-size", "3")
    page.fill("#assign-note", "上周两次没找到漏水流程")
    page.click("#assign-submit")
    expect(page.locator("#assign-message")).to_contain_text("已布置给 小王")
    expect(panel.locator("input[name=assignee][value='小王']")).not_to_be_checked()  # the next task starts afresh
    expect(page.locator("#assign-note")).to_have_value("")
    row = page.locator("#training-assignments tr", has_text="小王")
    expect(row).to_contain_text("未完成")
    expect(row).to_contain_text(live.title("repair-leak-ceiling"))
    # the people table's 培训任务 column follows without 刷新 (a trial read 「—」 there)
    expect(page.locator("#training-people tr", has_text="小王")).to_contain_text("1 项未完成")

    page.goto(live.base + "/")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    expect(page.locator("#tasks-due")).to_contain_text("培训任务 1 项待完成")

    page.goto(live.base + "/practice")
    task = page.locator("#p-tasks li[data-status='open']")
    expect(task).to_contain_text("上周两次没找到漏水流程")
    task.locator("button", has_text="开始练习").click()
    expect(page.locator("#d-progress")).to_contain_text("第 1 / 3 题")
    with sqlite3.connect(live.data / "service.sqlite3") as conn:
        (session_id,) = conn.execute(
            "SELECT session_id FROM practice_sessions WHERE who = '小王' AND assignment_id IS NOT NULL"
        ).fetchone()
    answers = f"/v1/practice/sessions/{session_id}/answers"
    left = False
    for drill in call(live, live.key, "GET", f"/v1/practice/sessions/{session_id}"):
        assert live.drill(drill["prompt"])["sop_id"] == "repair-leak-ceiling"  # the task's SOP only
        out = call(live, live.key, "POST", answers, {"drill_id": drill["drill_id"], "sop_id": "repair-leak-ceiling"})
        if out["next"] and not left:
            # The agent leaves with the second stage on screen (a trial: a call came in) and comes back: 开始练习
            # shows that stage again, not the next drill (the task could never be finished)
            left = True
            page.reload()
            page.locator("#p-tasks li[data-status='open']").locator("button", has_text="开始练习").click()
            expect(page.locator("#d-feedback")).to_contain_text("接着答第二步")
            expect(page.locator("#d-stage")).to_contain_text(out["next"]["question"])
        if out["next"]:
            stage = live.drill(drill["prompt"])["followup"]
            body = {"choice": stage["answer"]} if stage["kind"] == "script" else {"order": stage["answer"]}
            call(live, live.key, "POST", answers, {"drill_id": drill["drill_id"], "stage": stage["kind"], **body})
    assert left, "no drill of the round had a second stage"
    page.reload()
    expect(page.locator("#p-tasks li[data-status='done']")).to_contain_text("已完成")

    page.goto(live.base + "/trainer#training")
    page.fill("#api-key", trainer)
    page.click("#save-key")
    expect(page.locator("#training-assignments tr", has_text="小王")).to_contain_text("已完成")
    # A withdrawn task stays on record for the trainer
    page.locator("input[name=assignee][value='小王']").check()
    page.click("#assign-submit")
    expect(page.locator("#training-assignments tr", has_text="未完成")).to_have_count(1)
    page.once("dialog", lambda d: d.accept())
    page.locator("#training-assignments tr", has_text="未完成").locator("button", has_text="撤下").click()
    expect(page.locator("#assign-message")).to_contain_text("已撤下")
    page.click("text=查看已撤下的任务")
    expect(page.locator("#training-assignments-withdrawn tr", has_text="小王")).to_have_count(1)


def test_a_key_saved_in_another_tab_is_named_on_every_page(page: Page, live: Live) -> None:
    """A trial on a shared PC: a trainer saved her key in another tab, the practice page still said 已验证：小王 and
    the next round was recorded under the trainer. The page now names whoever its requests go out as."""
    trainer = add_user(live, "李敏", "trainer")
    page.goto(live.base + "/practice")
    page.fill("#api-key", live.key)
    page.click("#save-key")
    expect(page.locator("#auth-msg")).to_contain_text("已验证：小王")
    other = page.context.new_page()
    other.goto(live.base + "/trainer")
    expect(other.locator("#api-key")).to_have_value(live.key)  # one key per browser, as saved
    other.fill("#api-key", trainer)
    other.click("#save-key")
    expect(other.locator("#auth-msg")).to_contain_text("李敏")
    expect(page.locator("#auth-msg")).to_contain_text("已验证：李敏（培训师）")
    expect(page.locator("#auth-msg")).to_contain_text("其他标签页")
    expect(page.locator("#api-key")).to_have_value(trainer)
