"""The agent console, the tenant widget on another origin and the trainer workspace in a real headless Chromium
(Debian's package, driven by Playwright). Screenshots go to tests/artifacts/."""

# ruff: noqa: F811 - the fixtures imported from tests/browser_kit.py are parameters of the tests below
from __future__ import annotations

import json
import re
import time
from datetime import date
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Route, expect

from tests.browser_kit import (  # noqa: F401 - fixtures
    ARTIFACTS,
    SERVED_DATA,
    Browser,
    Page,
    browser,
    login,
    page,
    server,
    site_port,
    tenant_site,
    wait_for_js,
)
from tests.helpers import AGENT, NEW, TRAINER, auth
from tests.test_publishing import hold_the_writer_lock

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"KB_PUBLISH_WAIT_SECONDS": "2"}  # (a publish meeting a held writer lock is refused sooner)


def test_agent_finds_the_leak_procedure_and_copies_a_script_line(page: Page, server: str) -> None:
    page.goto(server + "/")
    expect(page.locator("#auth-msg")).to_contain_text("API 密钥")  # asks for a key
    page.fill("#api-key", "wrong-key-000000")
    page.click("#save-key")
    expect(page.locator("#auth-msg")).to_contain_text("无效")
    login(page, server, AGENT)
    page.reload()  # the key is kept in the browser; the search box has focus on load
    search = page.locator("#search")
    expect(search).to_be_focused()
    page.keyboard.press("/")  # the key bar's "/ 搜索" in the focused, empty box: nothing typed (it was searched)
    expect(search).to_have_value("")
    # The example buttons are this knowledge base's own example queries (each the first of a SOP's `examples`)
    examples = httpx.get(server + "/v1/sops", headers={"Authorization": f"Bearer {AGENT}"}).json()
    first_examples = {s["example"] for s in examples if s["example"]}
    by_category = {s["category"]: s["example"] for s in reversed(examples) if s["example"]}  # each category's first
    first_example = next(iter(sorted(by_category.items())))[1]
    expect(page.locator(".example").first).to_have_text(first_example)
    expect(search).to_have_attribute("placeholder", f"输入租客说的话，例如：{first_example}")
    assert all(t in first_examples for t in page.locator(".example:visible").all_inner_texts())
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    expect(search).to_be_focused()
    search.press_sequentially("我家天花板一直在往下滴水，地上都湿了", delay=20)
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "repair-leak-ceiling", timeout=10_000)
    expect(first.locator("li").first).to_be_visible()  # the steps, as an ordered list
    line = first.locator(".script-line").first
    line.locator(".copy-btn").click()
    expect(line.locator(".copy-done")).to_contain_text("已复制")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied and copied in line.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=False)
    page.keyboard.press("Escape")
    search.focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator(".result.selected")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#sop-view")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-sop.png"), full_page=False)
    page.keyboard.press("Escape")
    # An emergency procedure first for a danger in the words says so, not a low percentage (a trial: 置信度 15%)
    search.fill("厨房里有一股臭鸡蛋味，是不是煤气漏了，我好害怕")
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "emergency-gas-leak", timeout=10_000)
    expect(first.locator(".badge.conf")).to_have_text("险情优先")
    # A second card whose calibrated confidence is above the first's is called an alternative, not given a higher
    # percentage than the card above it (a trial read that as a wrong order)
    search.fill("嗯就是我朋友来了要那个临时密码怎么弄")
    cards = page.locator(".result")
    expect(cards.first.locator(".badge.conf")).to_contain_text("置信度", timeout=10_000)
    expect(cards.nth(1).locator(".badge", has_text="备选")).to_have_count(1)
    expect(cards.nth(1).locator(".badge.conf")).to_have_count(0)

    # ... and so is a later card whose figure is above a card's between: the percentages shown never rise down the
    # list. A re-check read 92 %, 55 %, 76 %; the sample corpus gives no such search, so the real response's figures
    # are set to those.
    def figures(route: Route) -> None:
        body = route.fetch().json()
        for hit, p in zip(body["results"], [0.92, 0.55, 0.76, 0.5, 0.6], strict=False):
            hit["match_confidence"] = p
        route.fulfill(json=body)

    page.route("**/v1/search", figures)
    search.fill("中途不租了押金退不退")
    expect(cards.nth(1).locator(".badge.conf")).to_have_text("置信度 55%", timeout=10_000)
    expect(cards.nth(2).locator(".badge", has_text="备选")).to_have_count(1)
    expect(cards.nth(3).locator(".badge.conf")).to_have_text("置信度 50%")
    expect(cards.nth(4).locator(".badge", has_text="备选")).to_have_count(1)
    page.unroute("**/v1/search")
    # A middling figure is not shown in the green of a sure one (a new agent's trial read 44 % as "this is right")
    search.fill("跳闸")
    expect(page.locator(".result").first.locator(".badge.conf.mid")).to_contain_text("置信度", timeout=10_000)
    # The synonyms the search added take one line, the rest on hover (they pushed the first card down: same trial)
    search.fill("卫生间漏水 马桶堵了 门禁卡丢了 跳闸了 空调不制冷")
    synonyms = page.locator("#expansions")
    expect(synonyms).to_contain_text("空调不制冷", timeout=10_000)
    assert len(synonyms.inner_text()) > 150  # wider than the page: without the rule it takes two lines or more
    box = synonyms.bounding_box()
    assert box is not None and box["height"] < 24, box
    assert (synonyms.get_attribute("title") or "").startswith("同义词扩展")
    search.fill("卫生间的灯不亮了")
    expect(page.locator(".result").first.locator(".badge.conf")).to_contain_text("置信度", timeout=10_000)
    expect(page.locator(".result").first.locator(".badge.conf.mid")).to_have_count(0)
    # Off-topic words on a weak page: an emergency procedure among the results is no red alarm (a trial's weather)
    search.fill("明天会不会下雨啊")
    flood = page.locator('.result[data-sop-id="emergency-flooding"]')
    expect(flood.locator(".badge.urgent-muted")).to_have_text("应急", timeout=10_000)
    expect(flood.locator(".badge.urgent")).to_have_count(0)


def test_widget_on_another_origin_answers_with_source_and_hands_over(browser: Browser, tenant_site: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.goto(tenant_site)
    page.locator(".kb-launcher").click()
    expect(page.locator(".kb-panel")).to_be_visible()
    page.locator(".kb-input").fill("房租可以开发票吗？")
    page.locator(".kb-send").click()
    expect(page.locator(".kb-source").first).to_contain_text("发票", timeout=10_000)
    page.locator(".kb-input").fill("附近有什么好吃的火锅店推荐吗")
    page.keyboard.press("Enter")
    expect(page.locator(".kb-handoff").first).to_contain_text("人工", timeout=10_000)
    # the host page's styles do not leak in, and the widget adds at most one global
    assert page.evaluate("Object.keys(window).filter(k => k.startsWith('Kb') || k.startsWith('kb'))") in (
        [],
        ["KbChatWidget"],
    )
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily") == "serif"
    page.screenshot(path=str(ARTIFACTS / "widget.png"))
    context.close()


def test_trainer_publishes_a_change_sees_it_found_and_rolls_back(page: Page, server: str) -> None:
    phrase = "夜间漏水由楼层巡检员先行关闭总阀"
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator('.doc-item[data-sop-id="repair-leak-ceiling"]').click()
    editor = page.locator("#editor")
    wait_for_js(page, "() => document.querySelector('#editor').value.includes('repair-leak-ceiling')")
    text = editor.input_value()
    editor.fill(text.replace("## 注意事项", f"## 注意事项\n- {phrase}。", 1))
    asked = httpx.post(
        f"{server}/v1/search", json={"query": "天花板在滴水"}, headers={"Authorization": f"Bearer {AGENT}"}
    )
    assert asked.status_code == 200
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("已发布", timeout=20_000)
    # what the change did to the questions asked lately (a trial's deletion moved them silently)
    expect(page.locator("#publish-msg .impact")).to_contain_text("近期常问的")
    found = httpx.post(
        f"{server}/v1/search", json={"query": phrase, "top_k": 1}, headers={"Authorization": f"Bearer {AGENT}"}
    ).json()["results"][0]
    assert found["sop_id"] == "repair-leak-ceiling" and any(phrase in s["text"] for s in found["sections"])
    # The editor loaded and saved the file's exact text: the new version differs by the added line and the stamp.
    history = httpx.get(f"{server}/v1/sops/repair-leak-ceiling/history", headers=auth(TRAINER)).json()
    old, new = history[-2]["version"], history[-1]["version"]
    diff = httpx.get(
        f"{server}/v1/sops/repair-leak-ceiling/diff", params={"from": old, "to": new}, headers=auth(TRAINER)
    ).json()
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    stamped = f"updated: {date.today().isoformat()}"  # a publish is the SOP's latest update
    before = re.search(r"^updated:.*$", text, re.MULTILINE)
    was = [f"-{before.group(0)}"] if before else []
    stamps = [] if before and before.group(0) == stamped else [f"+{stamped}", *was]
    assert sorted(changed) == sorted([f"+- {phrase}。", f"+version: {new}", f"-version: {old}", *stamps]), diff
    page.screenshot(path=str(ARTIFACTS / "trainer.png"))
    page.click("#history-btn")
    items = page.locator("#history-list .history-item")
    expect(items).to_have_count(2, timeout=10_000)
    assert items.first.locator(".rollback-btn").is_disabled()  # the current version: nothing to roll back to
    page.once("dialog", lambda d: d.accept())  # the rollback asks first
    items.last.locator(".rollback-btn").click()  # newest first: the last row is the original version
    expect(page.locator("#publish-msg")).to_contain_text("已回滚到", timeout=20_000)
    sop = httpx.get(f"{server}/v1/sops/repair-leak-ceiling", headers={"Authorization": f"Bearer {AGENT}"}).json()
    assert phrase not in str(sop)
    # the history's new row says which version it brought back (a trial read 「v3 回滚」 only)
    expect(items.first.locator(".hi-head")).to_contain_text(f"回滚到 v{old}", timeout=10_000)
    # an id with a space is named invalid, not missing (a trial was told 文件头缺少 id)
    read = "async (t) => (await import('/static/trainer/messages.js')).frontMatterId(t)"
    assert page.evaluate(read, "---\nid: QC_Parcel 2\ntitle: x\n---\n") == "QC_Parcel 2"
    assert page.evaluate(read, "---\nid: 'repair-x' # note\n---\n") == "repair-x"
    assert page.evaluate(read, "---\ntitle: x\n---\n") is None
    # an example regression's rows read as the service writes them (a trial saw them whole, quotes doubled)
    rows = "async (d) => (await import('/static/trainer/messages.js')).regressionRows({details: d})"
    assert page.evaluate(rows, ["“健身房几点开门” → community-rules、access-lost-key", "“门禁坏了” → （无结果）"]) == [
        {"query": "健身房几点开门", "top": ["community-rules", "access-lost-key"]},
        {"query": "门禁坏了", "top": []},
    ]
    # after a conflict, the trainer's own change is shown as the lines it removed and added (a trial had the whole text)
    diff = "async ([a, b]) => (await import('/static/lib/text.js')).lineDiff(a, b)"
    assert page.evaluate(diff, ["标题\n30 分钟到场\n结尾", "标题\n20 分钟到场\n结尾\n新行"]) == [
        "-30 分钟到场",
        "+20 分钟到场",
        "+新行",
    ]


def test_a_trainer_finds_every_document_that_states_a_rule_and_opens_its_line(page: Page, server: str) -> None:
    """A trial's rule change was written in five SOPs and the filter (titles, ids, tags) found two."""
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    expect(page.locator(".doc-item").first).to_be_visible(timeout=10_000)
    page.fill("#doc-filter", "30 分钟")
    page.click("#text-search-btn")
    expect(page.locator("#text-search-head")).to_contain_text("份文档", timeout=10_000)
    first = page.locator(".text-hits .issue-line").first
    line = int(first.inner_text().strip("第 行"))
    first.click()
    wait_for_js(page, "() => document.querySelector('#editor').value.length > 0")
    selected = page.evaluate(
        "() => { const e = document.querySelector('#editor'); return e.value.slice(e.selectionStart, e.selectionEnd); }"
    )
    assert "30" in selected and selected == page.locator("#editor").input_value().split("\n")[line - 1]


def new_sop_in_editor(page: Page, server: str) -> Locator:
    """The trainer workspace with 新建 SOP's template in the editor."""
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    expect(page.locator(".doc-item").first).to_be_visible(timeout=10_000)
    page.click("#new-btn")
    wait_for_js(page, "() => document.querySelector('#editor').value.includes('audience:')")
    return page.locator("#editor")


def test_a_new_sop_with_a_taken_id_is_refused_and_the_published_one_is_kept(page: Page, server: str) -> None:
    before = httpx.get(f"{server}/v1/sops/access-lost-key", headers=auth(TRAINER)).json()
    editor = new_sop_in_editor(page, server)
    template = editor.input_value()
    taken = re.sub(r"^id: .*$", "id: access-lost-key", template, count=1, flags=re.MULTILINE)
    assert taken != template
    editor.fill(taken)
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("已被", timeout=10_000)
    after = httpx.get(f"{server}/v1/sops/access-lost-key", headers=auth(TRAINER)).json()
    assert after["meta"] == before["meta"]  # same version, title, tags and examples


def test_a_publish_whose_answer_is_lost_is_settled_with_the_service(page: Page, server: str) -> None:
    """An operator's trial killed the service mid-publish: the trainer read 发布失败 although the version had gone
    live. A publish whose answer never arrives is now checked with the service: one that never reached it is
    未发布 with 重新发布; one that went live is 已发布 with its version, and the editor holds it."""
    sop = "unsettled-publish-test"
    editor = new_sop_in_editor(page, server)
    editor.fill(re.sub(r"^id: .*$", f"id: {sop}", editor.input_value(), count=1, flags=re.MULTILINE))
    lost = {"before": True}

    def cut(route: Route) -> None:
        if route.request.method != "PUT":
            route.continue_()
            return
        if not lost["before"]:
            route.fetch(timeout=120_000)  # the service publishes; its answer never reaches the page
        route.abort("connectionreset")

    page.route(lambda url: f"/v1/sops/{sop}" in url, cut)
    page.click("#publish-btn")  # the request never reaches the service
    expect(page.locator("#publish-msg")).to_contain_text("未发布：服务中断时这次发布没有完成", timeout=20_000)
    assert httpx.get(f"{server}/v1/sops/{sop}", headers=auth(TRAINER)).status_code == 404
    lost["before"] = False
    page.click("#republish-btn")  # now the answer is lost after the publish
    expect(page.locator("#publish-msg")).to_contain_text("已发布（v1）", timeout=30_000)
    expect(page.locator("#publish-msg")).to_contain_text("连接中断")
    history = httpx.get(f"{server}/v1/sops/{sop}/history", headers=auth(TRAINER)).json()
    assert [h["version"] for h in history] == [1]
    wait_for_js(page, "() => document.querySelector('#editor').value.includes('version: 1')")  # the live text
    page.unroute_all()
    httpx.delete(f"{server}/v1/sops/{sop}", headers=auth(TRAINER), timeout=60)  # it re-indexes


def test_a_publish_during_an_ingest_says_so_at_once_and_publishes_when_tried_again(page: Page, server: str) -> None:
    """An operator's trial: a publish sent during a 9-minute `kb ingest` waited for it without a word. The service
    refuses it after KB_PUBLISH_WAIT_SECONDS naming what holds the index; the workspace says so (it does not ask for
    90 s what became of it, as for an answer that never arrived) and keeps the draft for another try."""
    sop = "writer-busy-test"
    editor = new_sop_in_editor(page, server)
    editor.fill(re.sub(r"^id: .*$", f"id: {sop}", editor.input_value(), count=1, flags=re.MULTILINE))
    draft = editor.input_value()
    ingest = hold_the_writer_lock(SERVED_DATA[server], "同步 SOP 文件夹 /srv/sops / ingesting /srv/sops")
    try:
        started = time.monotonic()
        page.click("#publish-btn")
        msg = page.locator("#publish-msg")
        expect(msg).to_contain_text("发布没有进行", timeout=15_000)
        expect(msg).to_contain_text("同步 SOP 文件夹 /srv/sops")
        assert time.monotonic() - started < 12
        assert editor.input_value() == draft
        assert httpx.get(f"{server}/v1/sops/{sop}", headers=auth(TRAINER)).status_code == 404
    finally:
        assert ingest.stdin is not None
        ingest.stdin.close()
        ingest.wait(10)
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("已发布", timeout=30_000)
    httpx.delete(f"{server}/v1/sops/{sop}", headers=auth(TRAINER), timeout=60)  # it re-indexes


def test_a_delete_and_a_rollback_whose_answers_are_lost_are_settled_with_the_service(page: Page, server: str) -> None:
    """As a publish: a delete that went through with its answer lost was reported as failed, and a rollback cut off
    before it reached the service gave no way to tell. Both are checked with the service now."""
    sop = "unsettled-delete-test"
    doc = NEW.replace("id: wifi-router-reset", f"id: {sop}").replace("路由器重启指引", "断线后确认的路由器指引")
    url = f"{server}/v1/sops/{sop}"
    put = httpx.put(url, content=doc.encode(), headers={**auth(TRAINER), "content-type": "text/markdown"}, timeout=60)
    assert put.is_success
    lost = {"before": False}

    def cut(route: Route) -> None:
        if route.request.method not in ("DELETE", "POST"):
            route.continue_()
            return
        if not lost["before"]:
            route.fetch(timeout=120_000)  # the service does it; its answer never reaches the page
        route.abort("connectionreset")

    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator(".doc-item", has_text=sop).click()
    expect(page.locator("#editor")).to_have_value(re.compile(f"id: {sop}"), timeout=10_000)
    # the confirm dialog tells what the delete takes away (a trial's said only that history is kept)
    found = httpx.post(f"{server}/v1/search", json={"query": "断线后确认的路由器指引"}, headers=auth(AGENT), timeout=30)
    assert found.json()["results"][0]["sop_id"] == sop
    page.route(lambda u: f"/v1/sops/{sop}" in u, cut)
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#delete-btn")
    expect(page.locator("#publish-msg")).to_contain_text(f"已删除 {sop}（记录为 v2）", timeout=30_000)
    expect(page.locator("#publish-msg")).to_contain_text("连接中断")
    assert "坐席检索 1 次把它排在第一" in asked[0]
    assert httpx.get(url, headers=auth(TRAINER), timeout=30).status_code == 404
    lost["before"] = True
    page.locator(".rollback-btn:enabled").first.click()  # the request never reaches the service
    expect(page.locator("#publish-msg")).to_contain_text("未回滚：服务中断时这次回滚没有完成", timeout=30_000)
    assert httpx.get(url, headers=auth(TRAINER), timeout=30).status_code == 404
    lost["before"] = False
    page.click("#redo-rollback-btn")  # now the answer is lost after the rollback
    expect(page.locator("#publish-msg")).to_contain_text("已恢复（用 v1 的内容）：发布为新版本 v3", timeout=30_000)
    expect(page.locator("#publish-msg")).to_contain_text("恢复已经生效")  # a deleted SOP is restored, not rolled back
    assert httpx.get(url, headers=auth(TRAINER), timeout=30).status_code == 200
    history = httpx.get(f"{url}/history", headers=auth(TRAINER)).json()
    assert [(h["version"], h["action"]) for h in history] == [(1, "publish"), (2, "delete"), (3, "rollback")]
    page.unroute_all()
    httpx.delete(url, headers=auth(TRAINER), timeout=60)


def test_a_preview_issue_selects_its_line_in_the_editor(page: Page, server: str) -> None:
    editor = new_sop_in_editor(page, server)
    broken = re.sub(r"^audience: .*$", "audience: everyone", editor.input_value(), count=1, flags=re.MULTILINE)
    line = broken.split("\n").index("audience: everyone") + 1
    editor.fill(broken)
    page.click("#preview-btn")
    issue = page.locator(".issues li.error", has_text="everyone")
    expect(issue).to_be_visible(timeout=10_000)
    expect(issue.locator(".issue-line")).to_have_text(f"第 {line} 行")  # not "preview.md:{line}"
    issue.locator(".issue-line").click()
    chosen = page.evaluate(
        "() => { const e = document.querySelector('#editor'); return e.value.slice(e.selectionStart, e.selectionEnd); }"
    )
    assert chosen == "audience: everyone"
    assert page.evaluate("document.activeElement.id") == "editor"


def test_a_draft_is_hit_tested_from_the_preview_without_publishing(page: Page, server: str) -> None:
    """A trainer's trial had to publish a new SOP to learn whether agents' words find it."""
    editor = new_sop_in_editor(page, server)
    doc = "---\nid: wifi-draft-test\ntitle: 宽带报装与网速测试\ncategory: 网络\naudience: agent\n---\n"
    doc += "# 宽带报装与网速测试\n\n## 适用场景\n租客想新装宽带或测网速。\n\n"
    doc += "## 处理步骤\n1. 确认房号。\n2. 预约上门。\n"
    editor.fill(doc)
    page.click("#preview-btn")
    page.locator("#draft-queries").fill("宽带报装与网速测试\n楼上邻居装修太吵了\n- 楼上邻居半夜太吵了")
    page.click("#draft-hits-btn")
    hits = page.locator("#draft-hits li")
    expect(hits.first).to_contain_text("第 1 名", timeout=20_000)
    expect(hits.nth(1)).to_contain_text("楼上邻居装修太吵了")
    expect(hits.nth(1)).not_to_contain_text("第 1 名")
    # what ranks above the draft, without the draft itself (a trial read it among them)
    assert "宽带报装与网速测试" not in hits.nth(1).locator(".faint").inner_text()
    # a line starting with - is a control that should not find the draft: said so in green, not as a red rank
    expect(hits.nth(2)).to_contain_text(re.compile(r"对照：(第 [4-5] 名|前 5 名里没有) ✓"))
    expect(hits.nth(2).locator(".badge.public")).to_have_count(1)
    listed = httpx.get(f"{server}/v1/sops", headers=auth(TRAINER)).json()
    assert "wifi-draft-test" not in str(listed)  # nothing published


def test_publishing_a_section_whose_staff_marker_does_not_count_asks_first(page: Page, server: str) -> None:
    """A trainer's trial: 「## 内部备注（内部）」 was warned about and stayed public, and one click on 发布 put an
    internal phone number in front of tenants. Such a heading is now read as staff-only (session 37); a marker that
    still counts for nothing (a line inside a paragraph of the introduction) needs a second yes."""
    editor = new_sop_in_editor(page, server)
    doc = re.sub(r"^id: .*$", "id: gym-booking-test", editor.input_value(), count=1, flags=re.MULTILINE)
    doc = re.sub(r"^audience: .*$", "audience: public", doc, count=1, flags=re.MULTILINE)
    doc += "\n## 内部备注（内部）\n- 工程主管李工 13800001234\n"
    intro = "\n健身房使用须知\n[内部]\n- 值班 13900005678\n\n## 适用场景"  # a marker line in the introduction
    doc = doc.replace("\n## 适用场景", intro, 1)
    editor.fill(doc)
    asked: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("未发布", timeout=10_000)
    assert asked and "[内部]" in asked[0] and "租客可以看到" in asked[0] and "内部备注" not in asked[0]
    assert httpx.get(f"{server}/v1/sops/gym-booking-test", headers=auth(TRAINER)).status_code == 404
    page.once("dialog", lambda d: answer(d, True))
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("已", timeout=20_000)
    assert httpx.get(f"{server}/v1/sops/gym-booking-test", headers=auth(TRAINER)).status_code == 200
    tenant = httpx.get(f"{server}/v1/sops/gym-booking-test").text
    assert "13800001234" not in tenant and "13900005678" in tenant  # read as staff-only; public as confirmed
    httpx.delete(f"{server}/v1/sops/gym-booking-test", headers=auth(TRAINER), timeout=60)  # it re-indexes


def test_publishing_a_section_made_staff_only_whose_sums_are_still_public_asks_first(page: Page, server: str) -> None:
    """A trial moved 收费标准 under [内部]: the FAQ answer and the script line went on telling tenants the e-bike
    charge. Publishing it now needs a second yes, naming the lines; declined, nothing is published."""
    login(page, server, TRAINER, "/trainer")
    page.locator('.doc-item[data-sop-id="parking"]').click(timeout=10_000)
    editor = page.locator("#editor")
    expect(editor).to_have_value(re.compile("id: parking"), timeout=10_000)
    before = httpx.get(f"{server}/v1/sops/parking/source", headers=auth(TRAINER)).json()["version"]
    editor.fill(editor.input_value().replace("## 收费标准\n", "## 收费标准 [内部]\n", 1))
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("未发布：请把这些行一并改为内部", timeout=10_000)
    assert asked and "改为内部的小节里的金额" in asked[0] and "1元/4小时" in asked[0]
    assert httpx.get(f"{server}/v1/sops/parking/source", headers=auth(TRAINER)).json()["version"] == before


def test_a_deleted_sop_is_listed_to_open_and_restore(page: Page, server: str) -> None:
    """A trial deleted a SOP and, after a reload, could not find it again: the dialog had promised a restore."""
    doc = NEW.replace("id: wifi-router-reset", "id: router-deleted-test")
    doc = doc.replace("路由器重启指引", "删了再找回的路由器指引")
    doc = doc.replace("\n## ", "\n补偿说明\n[内部]\n- 经理电话 8800\n\n## ", 1)  # a marker in the introduction
    headers, url = {**auth(TRAINER), "content-type": "text/markdown"}, f"{server}/v1/sops/router-deleted-test"
    assert httpx.put(url, content=doc.encode(), headers=headers, timeout=60).is_success
    assert httpx.delete(url, headers=auth(TRAINER), timeout=60).is_success
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    item = page.locator(".doc-item.deleted", has_text="router-deleted-test")
    expect(item).to_contain_text("删了再找回的路由器指引", timeout=10_000)
    page.fill("#doc-filter", "找回")  # the filter finds it by its title too
    expect(item).to_be_visible()
    item.click()
    expect(page.locator("#editor")).to_have_value(re.compile("id: router-deleted-test"), timeout=10_000)
    expect(page.locator("body")).to_contain_text("这份文档已在 v2 删除")
    # Restoring asks about a staff marker that does not count, as a publish does (a trial's rollback published
    # 「补偿标准（内部）」 to tenants with one click)
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if "租客可以看到" in dialog.message and len(asked) < 3 else dialog.accept()

    page.on("dialog", answer)
    page.locator(".rollback-btn:enabled").first.click()
    expect(page.locator("#publish-msg")).to_contain_text("未发布", timeout=10_000)
    assert len(asked) == 2 and "[内部]" in asked[1]
    assert httpx.get(url, headers=auth(TRAINER), timeout=30).status_code == 404  # still deleted
    page.locator(".rollback-btn:enabled").first.click()  # asked again; this time both yes
    # a restore says so (a training lead's trial read 「回滚」 for it)
    expect(page.locator("#publish-msg")).to_contain_text("已恢复（用 v1 的内容）", timeout=20_000)
    assert len(asked) == 4 and "确定要恢复" in asked[2]
    assert httpx.get(url, headers=auth(TRAINER), timeout=30).status_code == 200
    httpx.delete(url, headers=auth(TRAINER), timeout=60)


SLOW_WITHOUT_KEY = """
const realFetch = window.fetch;
window.fetch = async (url, init) => {
  const resp = await realFetch(url, init);
  const keyed = init && init.headers && init.headers.Authorization;
  if (!keyed && String(url).includes('/v1/')) await new Promise((r) => setTimeout(r, 1500));
  return resp;
};
"""


def test_answers_from_before_the_key_was_saved_do_not_undo_the_page(page: Page, server: str) -> None:
    # The page asks who it is and for the list at load, with no key; the trainer saves a key at once. The keyless
    # answers (401) arrive after the keyed ones and must not replace the verified banner or the loaded list.
    page.add_init_script(SLOW_WITHOUT_KEY)
    login(page, server, TRAINER, "/trainer")
    expect(page.locator(".doc-item").first).to_be_visible(timeout=10_000)
    page.wait_for_timeout(2500)  # the keyless answers have arrived by now
    expect(page.locator("#auth-msg")).to_contain_text("已验证")
    assert page.locator(".doc-item").count() > 5
    page.locator('.doc-item[data-sop-id="repair-leak-ceiling"]').click(timeout=5_000)


def test_the_gap_report_says_where_its_questions_were_asked(page: Page, server: str) -> None:
    """A supervisor's trial read 服务指标's chat count against the gap report's total and found them apart: the
    total is split by where the questions were asked."""
    httpx.post(f"{server}/v1/chat", json={"question": "附近有没有好吃的火锅店"}, timeout=30).raise_for_status()
    httpx.post(f"{server}/v1/search", json={"query": "天花板漏水"}, headers=auth(AGENT), timeout=30).raise_for_status()
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-gaps")
    page.locator("#gap-refresh").click()
    expect(page.locator("#gap-summary")).to_contain_text(re.compile(r"次提问：坐席检索 \d+ · 租客聊天 \d+"))
    # A group dealt with is marked 已处理 with a note, and moves to its own list; 撤销 brings it back (a training
    # manager's trial fixed a gap and the report went on listing it)
    row = page.locator("#gap-unanswered tr", has_text="附近有没有好吃的火锅店")
    row.locator(".gap-mark").click()
    row.locator(".gap-note").fill("不属于物业服务，已加寒暄回复")
    row.locator(".gap-note").press("Enter")
    done = page.locator("#gap-resolved tr", has_text="附近有没有好吃的火锅店")
    expect(done).to_contain_text("标记已处理：不属于物业服务，已加寒暄回复")
    expect(page.locator("#gap-unanswered tr", has_text="附近有没有好吃的火锅店")).to_have_count(0)
    done.locator(".gap-mark").click()
    expect(page.locator("#gap-unanswered tr", has_text="附近有没有好吃的火锅店")).to_have_count(1)
    expect(page.locator("#gap-resolved")).to_have_count(0)


def test_an_agent_in_the_workspace_is_told_history_needs_a_trainer_key(page: Page, server: str) -> None:
    """A trainer's trial: with an agent's key the history panel said 「还没有历史版本」 of a SOP with 3 versions."""
    login(page, server, AGENT, "/trainer")
    page.click("#tab-docs")
    page.locator('.doc-item[data-sop-id="repair-leak-ceiling"]').click(timeout=10_000)
    expect(page.locator("#history-btn")).to_be_disabled()  # (its title says a trainer key is needed)
    expect(page.locator("#history-note")).to_contain_text("培训师 API 密钥", timeout=10_000)


def test_a_minor_publish_from_the_workspace_asks_no_agent_to_acknowledge(page: Page, server: str) -> None:
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator('.doc-item[data-sop-id="repair-no-hot-water"]').click()
    editor = page.locator("#editor")
    wait_for_js(page, "() => document.querySelector('#editor').value.includes('repair-no-hot-water')")
    text = editor.input_value()
    head, steps = text.split("## 处理步骤", 1)
    editor.fill(head + "## 处理步骤" + steps.replace("1. ", "1. （错别字修正）", 1))  # a step's text changes
    page.check("#minor-check")
    page.click("#publish-btn")
    expect(page.locator("#publish-msg")).to_contain_text("小改动", timeout=20_000)
    assert not page.locator("#minor-check").is_checked()  # the next publish notifies agents unless marked again
    version = httpx.get(f"{server}/v1/sops/repair-no-hot-water/history", headers=auth(TRAINER)).json()[-1]
    assert version["version"] >= 2
    cards = httpx.get(f"{server}/v1/changes/status", headers=auth(TRAINER)).json()
    assert not [c for c in cards if c["sop_id"] == "repair-no-hot-water" and c["version"] == version["version"]]


# -- learning from use (console picker, drawer 👍, events; trainer's learned list) ---------------------------------
# The outdoor unit of an air conditioner drips onto the flat below: the agent treats it as a neighbour dispute.
QUERY, MISSED = "空调外机在滴水滴到楼下", "neighbor-dispute"


def test_agent_picks_a_missed_sop_and_the_trainer_sees_what_was_learned(page: Page, server: str) -> None:
    login(page, server, AGENT)
    page.reload()
    events: list[dict[str, object]] = []
    page.on(
        "request", lambda r: events.append(json.loads(r.post_data or "{}")) if r.url.endswith("/v1/events") else None
    )
    page.locator("#search").press_sequentially(QUERY, delay=20)
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "repair-air-conditioner", timeout=10_000)
    # The right SOP is not first (asserted above). It may be fourth or fifth: those places vary between index
    # builds (a CI run found it fourth), and the picker below lists every SOP whether it is among the cards or not.
    # Typing fires debounced searches: on a loaded machine the one for the whole text can land after the first
    # results show, with a new query_id. Take the id once it stays the same for a second.
    query_id, previous = 0, -1
    while query_id != previous:
        previous = query_id
        page.wait_for_timeout(1000)
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

    # The right SOP was not first: pick it from the list, open it and 👍 it from the drawer.
    page.locator(".learn-pick-btn").click()
    # Words only in a SOP's text find it too (a trial's 朋友 listed nothing: the filter read titles and tags only)
    page.locator(".learn-pick-input").fill("走廊的纸箱")
    expect(page.locator(".learn-pick-item", has_text=MISSED)).to_contain_text("内容相关", timeout=10_000)
    page.locator(".learn-pick-input").fill("邻里")
    page.locator(".learn-pick-item", has_text=MISSED).click()
    expect(page.locator("#sop-view-title")).to_contain_text("邻里纠纷")
    page.locator(".learn-foot .vote-up").click()
    expect(page.locator(".learn-foot .vote-msg")).to_contain_text("以后同样或几乎相同的问法会优先显示", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "console-learned.png"), full_page=False)
    page.keyboard.press("Escape")

    # Within seconds the same words find it first (searched again until the worker has read the learned pair: it
    # polls every second, later on a loaded machine).
    search = page.locator("#search")
    first = page.locator(".result").first
    for _ in range(6):
        search.fill("")
        search.press_sequentially(QUERY, delay=20)
        page.wait_for_timeout(1500)
        if first.get_attribute("data-sop-id") == MISSED:
            break
    expect(first).to_have_attribute("data-sop-id", MISSED, timeout=5_000)

    # The trainer sees who taught what, and the hit test says the learned channel decided the ranking.
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator(f'.doc-item[data-sop-id="{MISSED}"]').click()
    item = page.locator("#learned-list .learned-item", has_text=QUERY)
    expect(item).to_contain_text("坐席", timeout=10_000)
    expect(item).to_contain_text("确认 1 次")
    page.screenshot(path=str(ARTIFACTS / "trainer-learned.png"), full_page=False)
    # ... and every SOP's learned phrasings together in the gap report, the SOP one click away
    page.click("#tab-gaps")
    row = page.locator("#gap-learned tr", has_text=QUERY)
    expect(row).to_contain_text("邻里纠纷", timeout=10_000)
    expect(row).to_contain_text("坐席")
    page.locator("#gap-learned").screenshot(path=str(ARTIFACTS / "trainer-gaps-learned.png"))
    row.locator(".linkish", has_text="邻里纠纷").click()
    expect(page.locator("#panel-docs")).to_be_visible()
    expect(item).to_contain_text("确认 1 次", timeout=10_000)
    page.click("#tab-hittest")
    page.fill("#hit-query", QUERY)
    page.click("#hit-run")
    expect(page.locator(".hit-row").first.locator(".learned-badge")).to_contain_text("决定了第一名", timeout=10_000)
    expect(page.locator("#hit-confidence")).to_contain_text("置信度")  # what the console would say of this match
    # A SOP the learned ranker lifted says where fused evidence had it; the rows it pushed down carry no badge.
    page.fill("#hit-query", "楼顶那个能跑步的屋子怎么进去")
    page.click("#hit-run")
    first_row = page.locator(".hit-row").first
    expect(first_row).to_have_attribute("data-sop-id", "community-activities", timeout=10_000)
    expect(first_row.locator(".badge.reranked")).to_contain_text(re.compile(r"排序模型：原第 [2-9] 位"))
    for n, row in enumerate(page.locator(".hit-row").all()):
        badge = row.locator(".badge.reranked")
        if badge.count():
            assert int(re.search(r"原第 (\d+) 位", badge.inner_text()).group(1)) > n + 1  # type: ignore[union-attr]

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

    # The search whose first result the agent opened is now a practice utterance of that SOP: the trainer sees it
    # among the SOP's 练习问法 and withdraws it from practice and exams (then brings it back).
    page.locator('.doc-item[data-sop-id="repair-air-conditioner"]').click()
    page.locator("#drills-title").click()
    drill = page.locator("#drills-list .drill-item", has_text=QUERY)
    expect(drill).to_contain_text("坐席检索", timeout=10_000)
    drill.locator(".btn.danger").click()
    expect(drill).to_contain_text("已撤出练习和考试", timeout=10_000)
    drill.locator(".btn").click()
    expect(drill).not_to_contain_text("已撤出", timeout=10_000)
    expect(page.locator("#drills-list .drill-item[data-source='example']").first.locator(".btn")).to_have_count(0)


def test_tenant_hand_over_reaches_the_agent_and_the_reply_appears_in_the_widget(
    browser: Browser, tenant_site: str, page: Page, server: str
) -> None:
    """A question the chat cannot answer → the contact form → a case in the console's 待接入 queue → the agent takes
    it and replies → the reply appears in the tenant's widget; the host page saw the `kb-handover` event."""
    question = "附近有什么好吃的火锅店推荐吗"
    tenant = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN").new_page()
    tenant.goto(tenant_site)
    tenant.evaluate("window.addEventListener('kb-handover', (e) => { window.__handover = e.detail.question; })")
    tenant.locator(".kb-launcher").click()
    tenant.locator(".kb-input").fill(question)
    tenant.keyboard.press("Enter")
    form = tenant.locator(".kb-case-form")
    expect(form).to_be_visible(timeout=15_000)
    assert tenant.evaluate("window.__handover") == question
    form.locator("input[name=name]").fill("李四")
    form.locator("input[name=room]").fill("5栋802")
    form.locator("input[name=phone]").fill("13900139000")
    form.locator(".kb-case-submit").click()
    expect(tenant.locator(".kb-handoff").last).to_contain_text("客服已收到", timeout=10_000)

    login(page, server, AGENT)
    toggle = page.locator("#cases-toggle")
    expect(toggle).to_contain_text("待接入 1", timeout=15_000)
    expect(page).to_have_title(re.compile(r"^（待接入 1）"))  # seen from another window too (a supervisor's trial)
    toggle.click()
    # How long it has waited, before anyone takes it (a trial's overdue lift emergency showed only its start time)
    expect(page.locator(".case-open", has_text=question).locator(".case-wait")).to_contain_text("已等")
    page.locator(".case-open", has_text=question).click()
    expect(page.locator(".case-contact")).to_contain_text("13900139000")  # staff see the contact details
    # The chat before the hand-over came with the form: its bot lines are the widget's record, not the service's.
    reported = page.locator(".case-msg.by-bot.reported")
    expect(reported.first).to_contain_text("租客端记录，未核实")
    page.locator(".case-take").click()
    page.locator(".case-reply").fill("您好，附近的推荐请看 App 的周边生活页面。")
    page.locator(".case-reply").press("Control+Enter")  # sends, as the 发送 button does
    expect(page.locator(".case-messages")).to_contain_text("周边生活", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "console-cases.png"))

    expect(tenant.locator(".kb-agent")).to_contain_text("周边生活", timeout=15_000)
    tenant.screenshot(path=str(ARTIFACTS / "widget-handover.png"))
    # The tenant writes again while the agent looks elsewhere: the queue button and the case say so until it is read
    toggle.click()  # the panel closes
    tenant.locator(".kb-input").fill("好的，谢谢。那附近有停车场吗")
    tenant.keyboard.press("Enter")
    expect(toggle).to_contain_text("新消息 1", timeout=15_000)
    expect(page.locator(".case-open", has_text=question).locator(".case-unread")).to_be_attached()
    toggle.click()  # the panel opens on the case: read
    expect(page.locator(".case-messages")).to_contain_text("停车场", timeout=10_000)
    expect(page.locator(".case-msg", has_text="停车场")).to_be_in_viewport()  # the newest line in sight (a trial)
    expect(toggle).not_to_contain_text("新消息", timeout=10_000)
    page.locator(".case-close").click()
    expect(page.locator(".case-close")).to_contain_text("确认关闭")  # one click only asks
    expect(page.locator(".case-close")).to_contain_text("秒内再点一次")  # and counts down (a trial: it lapsed unsaid)
    page.wait_for_timeout(500)
    assert httpx.get(f"{server}/v1/cases", headers=auth(AGENT)).json()["cases"][0]["status"] == "taken"
    # An emergency the tenant reports just before the close is not closed unanswered: the console says so and
    # closing anyway is a second, deliberate click (a supervisor's trial)
    tenant.locator(".kb-input").fill("等等，插座冒火花了，还有焦糊味")
    tenant.keyboard.press("Enter")
    expect(page.locator(".case-messages")).to_contain_text("插座冒火花", timeout=15_000)
    page.locator(".case-close").click()
    expect(page.locator(".case-error")).to_contain_text("紧急情况", timeout=10_000)
    page.wait_for_timeout(5_000)  # the queue refreshes meanwhile: the refusal and its button stay (a re-check trial)
    expect(page.locator(".case-error")).to_contain_text("紧急情况")
    assert httpx.get(f"{server}/v1/cases", headers=auth(AGENT)).json()["cases"][0]["status"] == "taken"
    page.locator(".case-error button", has_text="仍要关闭").click()
    expect(tenant.locator(".kb-handoff").last).to_contain_text("结束", timeout=15_000)
    # the number the tenant was given, six characters to read out on the phone (a phone trial: 16 were too many)
    number = re.search(r"编号 ([0-9A-F]{6})）", tenant.locator(".kb-handoff", has_text="编号").first.inner_text())
    assert number, tenant.locator(".kb-handoff", has_text="编号").first.inner_text()
    assert tenant.locator(".kb-handoff", has_text="编号").first.locator(".kb-tel").count() == 0  # no tel:4728
    tenant.context.close()
    # The closed case leaves the queue and is read back under 已关闭 (a trial's closed case vanished from the console)
    # (listed by the emergency that raised it, its first question on hover: session 56)
    raised = "等等，插座冒火花了，还有焦糊味"
    expect(page.locator(".case-list .case-open", has_text=raised)).to_have_count(0, timeout=10_000)
    page.locator(".case-tab", has_text="已关闭").click()
    closed = page.locator(".case-list .case-open", has_text=raised)
    expect(closed.locator(".case-question")).to_have_attribute("title", question, timeout=10_000)
    expect(closed).to_contain_text("关闭于", timeout=10_000)
    page.locator(".case-filter").fill("5栋802")
    expect(closed).to_be_visible()
    page.locator(".case-filter").fill("9栋101")
    expect(closed).to_have_count(0)
    page.locator(".case-filter").fill("尾号9000")  # the tenant calls again and gives the phone's last digits
    expect(closed).to_be_visible()
    expect(closed).to_contain_text("尾号9000")  # told apart from another tenant's case without opening it
    page.locator(".case-filter").fill("139-0013-9000")
    expect(closed).to_be_visible()
    page.locator(".case-filter").fill(f"编号 {number.group(1)}")  # as the receipt prints it
    expect(closed).to_be_visible()
    page.locator(".case-filter").fill(number.group(1).lower())  # the tenant calls and reads it out
    expect(closed).to_be_visible()
    expect(closed).to_contain_text(f"编号 {number.group(1)}")
    page.locator(".case-filter").fill("")
    closed.click()
    expect(page.locator(".case-messages")).to_contain_text("周边生活", timeout=10_000)
    expect(page.locator(".case-reply")).to_have_count(0)  # read only: no reply box, no 接入
    expect(page.locator(".case-take")).to_have_count(0)


# True when the element's first and last lines are on screen and not under anything (a sticky reply box, say).
SEEN = """(n) => { const r = n.getBoundingClientRect(); const x = r.left + Math.min(40, r.width / 2);
  return [r.top + 4, r.bottom - 4].every((y) => { const hit = document.elementFromPoint(x, y);
    return y > 0 && y < innerHeight && hit !== null && n.contains(hit); }); }"""


def test_the_newest_message_of_a_long_conversation_is_in_sight_above_the_reply_box(
    browser: Browser, server: str
) -> None:
    """A supervisor's trial at 1366×768: with six messages the tenant's newest was hidden behind the script lines. The
    conversation ends where the reply box begins, scrolled to its newest line; who and which SOP stay in sight."""
    said = ["押金啥时候退", "上周五退的房", "押金到现在还没到账", "交接单也签了", "能帮我催一下吗"]
    body = {"session_id": "s-long", "question": said[0], "contact": {"room": "3栋1101", "phone": "13700137001"}}
    case = httpx.post(f"{server}/v1/cases", json=body).json()
    staff, tenant = auth(AGENT), {"X-Case-Token": case["token"]}
    httpx.post(f"{server}/v1/cases/{case['case_id']}/take", json={}, headers=staff).raise_for_status()
    httpx.post(f"{server}/v1/cases/{case['case_id']}/messages", json={"text": "您好，请问哪天退的房？"}, headers=staff)
    for text in said[1:]:
        httpx.post(f"{server}/v1/cases/{case['case_id']}/messages", json={"text": text}, headers=tenant)
    page = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
    login(page, server, AGENT)
    page.locator("#cases-toggle").click()
    page.locator(".case-open", has_text=case["case_id"][:6].upper()).click()
    newest = page.locator(".case-msg", has_text=said[-1])
    expect(newest).to_be_visible(timeout=10_000)
    deadline = time.monotonic() + 6  # within a poll of the case view
    while not newest.evaluate(SEEN):
        assert time.monotonic() < deadline, "the newest message is covered or out of sight at 1366×768"
        page.wait_for_timeout(200)
    for part in (".case-contact", ".case-sop", ".case-head h3"):
        assert page.locator(part).evaluate(SEEN), f"{part} is covered or out of sight at 1366×768"
    page.wait_for_timeout(4500)  # a poll draws the case again: still in sight
    assert page.locator(".case-msg", has_text=said[-1]).evaluate(SEEN)
    page.context.close()


def test_an_agents_reply_survives_the_queue_polling_and_the_suggested_sop_opens(browser: Browser, server: str) -> None:
    """At 1366×768: the reply box is in view, what the agent types is kept while the case view refreshes (every 4 s),
    and 查看 SOP opens the suggested procedure in the drawer above the case panel."""
    body = {
        "session_id": "s-poll",
        "question": "空调不制冷了，吹出来都是热风",
        "contact": {"room": "3栋1201", "phone": "13700137000"},
    }
    case = httpx.post(f"{server}/v1/cases", json=body).json()
    detail = httpx.get(f"{server}/v1/cases/{case['case_id']}", headers=auth(AGENT)).json()
    assert detail["sop_id"]
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    login(page, server, AGENT)
    page.locator("#cases-toggle").click()
    page.locator(".case-open", has_text=body["question"]).click()
    page.locator(".case-take").click()
    reply = page.locator(".case-reply")
    reply.fill("师傅今天下午三点前上门")
    expect(reply).to_be_in_viewport()
    # who the tenant is and the suggested SOP in sight beside the reply box, not under it (a trial had them below)
    for part in (".case-contact", ".case-sop", ".case-head h3"):
        seen = page.locator(part).evaluate(SEEN)
        assert seen, f"{part} is covered or out of sight at 1366×768"
    expect(page.locator(".case-contact")).to_contain_text("3栋1201")
    page.wait_for_timeout(5000)  # a poll redraws the case
    expect(reply).to_have_value("师傅今天下午三点前上门")
    expect(reply).to_be_focused()
    page.locator(".case-view-sop").click()
    expect(page.locator("#sop-view")).to_be_visible()
    expect(page.locator("#sop-view")).to_have_attribute("data-sop-id", detail["sop_id"])
    reply.click()  # the drawer opens beside the panel: the agent reads the SOP and goes on typing
    page.keyboard.type("，请保持电话畅通")
    expect(reply).to_have_value("师傅今天下午三点前上门，请保持电话畅通")
    expect(page.locator("#sop-view")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-case-sop.png"))
    # The suggested SOP's script lines put the trained wording into the reply, where the cursor is.
    sop = httpx.get(f"{server}/v1/sops/{detail['sop_id']}", headers=auth(AGENT)).json()
    first = next(line for s in sop["sections"] if s["kind"] == "script" for line in s["scripts"])
    reply.fill("")
    page.locator(".case-line").first.click()
    expect(reply).to_have_value(first)
    expect(reply).to_be_focused()
    page.wait_for_timeout(4500)  # a poll redraws the case: the lines stay with the reply form
    expect(page.locator(".case-line").first).to_have_text(first)
    page.screenshot(path=str(ARTIFACTS / "console-case-lines.png"))
    context.close()


def test_the_console_without_a_key_asks_for_no_staff_queue(page: Page, server: str) -> None:
    denied: list[str] = []
    page.on("response", lambda r: denied.append(r.url) if r.status in (401, 403) else None)
    page.goto(server + "/")
    expect(page.locator("#auth-msg")).to_contain_text("API 密钥")
    page.wait_for_timeout(5000)  # the queue polls every 4 s once a staff key is known
    assert denied == [] and page.locator("#cases-toggle").is_hidden()
    login(page, server, AGENT)
    expect(page.locator("#cases-toggle")).to_be_visible(timeout=10_000)


def test_a_search_ends_for_the_training_report_with_a_thumbs_up_or_a_new_query(page: Page, server: str) -> None:
    """A trainer's trial: agents searched, voted and opened SOPs, and the report's 在岗检索 stayed 0 until one copied a
    script line. A 👍 ends a search as found; a new query typed over the old one ends it as searched again."""
    reported: list[dict] = []
    page.on(
        "request",
        lambda r: reported.append(r.post_data_json) if r.url.endswith("/v1/practice/activity") else None,
    )
    login(page, server, AGENT)
    box = page.locator("#search")
    box.fill("空调不制冷")
    first = page.locator("article.result").first
    expect(first).to_be_visible(timeout=10_000)
    sop_id = first.get_attribute("data-sop-id")
    first.locator(".vote-up").click()
    expect(first.locator(".vote-msg")).not_to_have_text("提交中…", timeout=10_000)
    page.wait_for_timeout(500)
    assert [(r["outcome"], r.get("sop_id")) for r in reported] == [("open", sop_id)]
    box.fill("门卡丢了")  # typed over the last query: a new search
    expect(page.locator("article.result").first).to_be_visible(timeout=10_000)
    box.fill("停车月卡怎么办")  # and another, without opening anything
    page.wait_for_timeout(800)
    assert [r["outcome"] for r in reported] == ["open", "research"]
    box.fill("")  # cleared without opening anything: searched again
    box.press_sequentially("门锁没电了", delay=150)  # typed key by key: 门, 门锁 … are one search being typed
    expect(page.locator("article.result").first).to_be_visible(timeout=10_000)
    page.wait_for_timeout(800)
    assert [r["outcome"] for r in reported] == ["open", "research", "research"], reported


def test_an_agent_takes_a_mis_clicked_thumbs_up_back(page: Page, server: str) -> None:
    """A trial: a 👍 on the wrong card put that SOP first for the whole team, and its 没用 stayed disabled, so the
    agent who clicked could not take it back. The other button stays usable; a 👎 removes the pair just taught."""
    login(page, server, AGENT)
    page.locator("#search").fill("洗澡的时候水忽冷忽热")
    cards = page.locator("article.result")
    expect(cards.nth(2)).to_be_visible(timeout=10_000)
    wrong = cards.nth(2)
    sop_id = wrong.get_attribute("data-sop-id")
    wrong.locator(".vote-up").click()
    expect(wrong.locator(".vote-msg")).to_contain_text("点错了？点「没用」撤销", timeout=10_000)
    expect(wrong.locator(".vote-up")).to_be_disabled()
    down = wrong.locator(".vote-down")
    expect(down).to_be_enabled()
    assert "洗澡的时候水忽冷忽热" in _learned(server, sop_id)
    down.click()
    expect(wrong.locator(".vote-msg")).to_contain_text("不再因为这个问法优先显示这份 SOP", timeout=10_000)
    expect(down).to_be_disabled()
    expect(wrong.locator(".vote-up")).to_be_enabled()
    assert "洗澡的时候水忽冷忽热" not in _learned(server, sop_id)


def _learned(server: str, sop_id: str | None) -> list[str]:
    r = httpx.get(f"{server}/v1/sops/{sop_id}/learned", headers=auth(TRAINER), timeout=30)
    r.raise_for_status()
    return [p["phrasing"] for p in r.json()]


def test_an_open_after_a_search_left_for_other_words_names_that_search(page: Page, server: str) -> None:
    """What an agent opens after leaving a search unused for other words counts for the first words too: the event
    names the search left (`previous_query_id`); not after the box was cleared, which also ends a call."""
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/events") else None)
    login(page, server, AGENT)
    box, results = page.locator("#search"), page.locator("#results")
    box.fill("卫生间那个排风的扇子不转了")
    expect(page.locator("article.result").first).to_be_visible(timeout=10_000)
    wait_for_js(page, "() => Number(document.querySelector('#results').dataset.queryId) > 0")
    missed = int(results.get_attribute("data-query-id") or 0)
    box.fill("开关按了没反应")  # typed over: other words
    wait_for_js(page, f"() => Number(document.querySelector('#results').dataset.queryId) > {missed}")
    box.press("Enter")  # opens the first result
    expect(page.locator("#sop-view")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(800)
    assert sent and sent[-1]["type"] == "open" and sent[-1]["previous_query_id"] == missed, sent
    page.keyboard.press("Escape")
    box.fill("")  # cleared: the next search names none
    box.fill("门卡丢了")
    wait_for_js(page, "() => document.querySelector('article.result') !== null")
    page.wait_for_timeout(500)
    before = len(sent)
    box.press("Enter")
    expect(page.locator("#sop-view")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(800)
    assert len(sent) > before and "previous_query_id" not in sent[-1], sent


def test_a_tenant_phrasing_group_is_left_out_of_a_sop_from_the_preview(page: Page, server: str) -> None:
    """The preview's 租客常见说法 lists lexicon groups by their standard words; 排除 writes one into lexicon_exclude
    (a new trainer saw groups that did not belong and was only told to edit the front matter)."""
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator('.doc-item[data-sop-id="repair-air-conditioner"]').click()
    wait_for_js(page, "() => document.querySelector('#editor').value.includes('repair-air-conditioner')")
    assert "lexicon_exclude" not in page.locator("#editor").input_value()
    page.click("#preview-btn")
    lines = page.locator(".expansion-line")
    expect(lines.first).to_be_visible(timeout=10_000)
    before = lines.count()
    # The SOP's own sections first, the lexicon's lines last and folded to five (a trial: ~60 rows drowned them)
    assert page.locator(".preview-table tbody tr").last.get_attribute("data-kind") == "expansion"
    assert before > 5, before
    expect(page.locator(".expansion-line:visible")).to_have_count(5)
    page.locator(".expansion-more").click()
    expect(page.locator(".expansion-line:visible")).to_have_count(before)
    first = lines.first.inner_text()
    word = first.removeprefix("排除").strip().split("：", 1)[1].split("、")[0].rstrip("…").strip()
    # every entry naming it goes, as a phrasing or as a standard word (another writer's entry may say 空调不制冷 for it)
    named = [t.removeprefix("排除").strip().split("：", 1) for t in lines.all_inner_texts()]
    gone = sum(word in {*n.split("·"), *(w.rstrip("…").strip() for w in says.split("、"))} for n, says in named)
    assert gone >= 1
    lines.first.locator(".exclude-entry").click()
    expect(page.locator(".expansion-line")).to_have_count(before - gone, timeout=10_000)
    text = page.locator("#editor").input_value()
    assert f"lexicon_exclude: [{word}]" in text.split("\n---", 1)[0]
    assert first not in page.locator(".expansion-line").all_inner_texts()


def test_on_a_busy_queue_an_opened_case_shows_its_conversation_above_the_reply_box(page: Page, server: str) -> None:
    """A supervisor's trial: with 12 cases in 进行中, a case opened near the bottom of the list showed only a thin strip
    of its conversation behind the reply box until the agent scrolled the panel."""
    made = []
    for n in range(12):
        body = {
            "session_id": f"busy-{n}",
            "question": f"楼道灯不亮了（{n}号）",
            "contact": {"name": "测试", "room": f"12-{100 + n}", "phone": "13700137000"},
        }
        made.append(httpx.post(f"{server}/v1/cases", json=body, headers=auth(AGENT), timeout=30).json()["case_id"])
    httpx.post(f"{server}/v1/cases/{made[-1]}/take", json={}, headers=auth(AGENT), timeout=30)  # with its reply box
    try:
        page.set_viewport_size({"width": 1440, "height": 900})
        login(page, server, AGENT)
        page.locator("#cases-toggle").click()
        last = page.locator(".case-open", has_text="楼道灯不亮了（11号）")
        last.click()
        first_line = page.locator(".case-messages .case-msg").first
        expect(first_line).to_contain_text("楼道灯不亮了（11号）", timeout=10_000)
        expect(first_line).to_be_in_viewport()
        expect(page.locator(".case-reply")).to_be_visible()
        line, form = first_line.bounding_box(), page.locator("form.case-form").bounding_box()
        assert line and form and line["y"] + line["height"] <= form["y"], (line, form)  # not behind the reply box
        page.screenshot(path=str(ARTIFACTS / "console-busy-queue.png"))
    finally:
        for case_id in made:
            httpx.post(f"{server}/v1/cases/{case_id}/close", json={"force": True}, headers=auth(TRAINER), timeout=30)


_TONES = """
window.__tones = [];
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__tones.push(this.frequency.value);
  return start.apply(this, args);
};
"""


def test_a_new_urgent_case_rings_in_the_console_and_the_agent_can_turn_it_off(page: Page, server: str) -> None:
    """An evening supervisor's trial: agents on calls noticed an urgent hand-over minutes late (only a counter and
    the tab title changed). A new urgent case rings; a normal one, in sight, does not; with 提醒 off nothing rings."""
    page.add_init_script(_TONES)
    made: list[str] = []

    def open_case(question: str, room: str) -> None:
        body = {"session_id": f"ring-{room}", "question": question, "contact": {"room": room, "phone": "13700137000"}}
        made.append(httpx.post(f"{server}/v1/cases", json=body, headers=auth(AGENT), timeout=30).json()["case_id"])

    try:
        login(page, server, AGENT)
        alert = page.locator(".cases-alert")
        expect(alert).to_be_visible(timeout=10_000)  # the first poll is done: what is already waiting does not ring
        expect(alert).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("window.__tones.length") == 0
        open_case("我闻到家里有很浓的煤气味", "5-901")
        wait_for_js(page, "() => window.__tones.length >= 3")
        assert page.evaluate("window.__tones") == [660, 880, 1100]
        open_case("想问一下怎么开发票", "5-902")
        page.wait_for_timeout(5000)  # a poll saw it: in sight, a normal case does not ring
        expect(page.locator("#cases-toggle")).to_contain_text("待接入")
        assert page.evaluate("window.__tones.length") == 3
        alert.click()  # 提醒 off (kept in this browser)
        expect(alert).to_have_attribute("aria-pressed", "false")
        open_case("楼道里着火了，好多烟", "5-903")
        page.wait_for_timeout(5000)
        assert page.evaluate("window.__tones.length") == 3
        page.reload()
        expect(page.locator(".cases-alert")).to_have_attribute("aria-pressed", "false", timeout=10_000)
    finally:
        for case_id in made:
            httpx.post(f"{server}/v1/cases/{case_id}/close", json={"force": True}, headers=auth(TRAINER), timeout=30)


def test_a_case_raised_to_urgent_is_listed_by_what_raised_it(page: Page, server: str) -> None:
    """A trial: a case opened with 空调不制冷 and raised by 厨房着火了 was listed as 空调不制冷 beside its 紧急."""
    body = {"session_id": "raised-1", "question": "空调不制冷", "contact": {"room": "6-101", "phone": "13700137001"}}
    made = httpx.post(f"{server}/v1/cases", json=body, timeout=30).json()
    try:
        said = {"text": "等等，厨房着火了，好多烟"}
        headers = {"X-Case-Token": made["token"]}
        raised = httpx.post(f"{server}/v1/cases/{made['case_id']}/messages", json=said, headers=headers, timeout=30)
        assert raised.json()["urgent"] is True
        login(page, server, AGENT)
        item = page.locator(".case-item", has_text="6-101")
        expect(item.locator(".case-question")).to_have_text("等等，厨房着火了，好多烟", timeout=10_000)
        expect(item.locator(".case-question")).to_have_attribute("title", "空调不制冷")
        expect(item.locator(".case-urgent")).to_have_count(1)
        page.locator("#cases-toggle").click()
        item.locator(".case-open").click()
        expect(page.locator(".case-head h3")).to_have_text("等等，厨房着火了，好多烟（首次提问：空调不制冷）")
    finally:
        close = f"{server}/v1/cases/{made['case_id']}/close"
        httpx.post(close, json={"force": True}, headers=auth(TRAINER), timeout=30)


def test_a_trainer_checks_every_document_and_opens_a_problem_at_its_line(page: Page, server: str) -> None:
    """A trainer without a shell saw problems only in the preview of the document open in the editor."""
    login(page, server, TRAINER, "/trainer")
    page.locator("#lint-btn").click()
    pane = page.locator("#lower-pane")
    expect(pane).to_contain_text("检查全部文档", timeout=15_000)
    expect(pane).to_contain_text("46 个文档")
    row = pane.locator(".lint-issues li", has_text="复核日期")
    expect(row).to_contain_text("警告")
    row.locator(".issue-line").click()
    expect(page.locator("#doc-title")).to_contain_text("家电", timeout=10_000)
    selection = (
        "(() => { const e = document.querySelector('#editor'); "
        "return e.value.slice(e.selectionStart, e.selectionEnd); })()"
    )
    wait_for_js(page, f"() => {selection}.length > 0")
    assert page.evaluate(selection).startswith("review_by"), page.evaluate(selection)
    expect(pane.locator(".lint-issues li", has_text="复核日期")).to_be_visible()  # the list stays, to go on with it


def test_another_sop_named_by_its_id_in_a_steps_text_shows_its_title_and_opens_it(page: Page, server: str) -> None:
    """A trial: steps read 「按 access-smart-lock 的规则发临时密码」, an id no agent knows. The console shows that SOP's
    title there, a button that opens it in the drawer; in the drawer too."""
    login(page, server, AGENT)
    page.locator("#search").fill("钥匙丢了，被锁在门外进不去家")
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "access-lost-key", timeout=10_000)
    first.locator(".steps + .more-btn").click()
    ref = first.locator(".step .sop-ref")
    expect(ref).to_have_text("《智能门锁没电、密码失效、指纹不识别及 App 开锁失败》")
    assert "access-smart-lock" not in first.locator(".steps").inner_text()
    # the matched scope line names them by title too (a trial read 「见 access-smart-lock」 there)
    expect(first.locator(".matched .sop-ref", has_text="门禁卡丢失补办")).to_have_count(1)
    ref.click()
    drawer = page.locator("#sop-view")
    expect(drawer).to_have_attribute("data-sop-id", "access-smart-lock")
    expect(page.locator("#sop-view-title")).to_have_text("智能门锁没电、密码失效、指纹不识别及 App 开锁失败")
    page.keyboard.press("Escape")
    first.locator(".open-link").click()  # the card's own SOP: there, a scope line names two more
    expect(drawer).to_have_attribute("data-sop-id", "access-lost-key")
    drawer.locator(".sop-ref", has_text="门禁卡丢失补办").click()
    expect(drawer).to_have_attribute("data-sop-id", "access-door-card")
    expect(page.locator("#sop-view-title")).to_have_text("门禁卡丢失补办、门禁卡失效与人脸识别录入")
    # a SOP named by its title in 《》 opens it too (请参考《智能门锁没电…》)
    drawer.locator(".sop-ref", has_text="智能门锁没电").click()
    expect(drawer).to_have_attribute("data-sop-id", "access-smart-lock")


def test_sop_titles_that_arrive_after_the_cards_still_replace_the_ids(page: Page, server: str) -> None:
    """A CI run: the SOP list (titles) came after the first search's cards, which then showed the bare id. The cards
    are drawn again once the titles arrive."""
    held: list[Route] = []
    page.route(lambda url: urlparse(url).path == "/v1/sops", lambda route: held.append(route))
    login(page, server, AGENT)
    page.locator("#search").fill("钥匙丢了，被锁在门外进不去家")
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "access-lost-key", timeout=10_000)
    expect(first.locator(".matched-text", has_text="access-smart-lock")).not_to_have_count(0)  # no titles yet
    assert held, "the console asked for the SOP list"
    for route in held:
        route.continue_()
    expect(first.locator(".matched .sop-ref", has_text="门禁卡丢失补办")).to_have_count(1)
    expect(page.locator(".result").first).to_have_class(re.compile(r"\bselected\b"))  # still the selected card


def test_the_hit_test_from_the_tenants_side_shows_what_the_chat_would_answer(page: Page, server: str) -> None:
    """A trainer's trial: the hit test ranked SOPs, but she could not see the answer a tenant would get."""
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-hittest")
    page.fill("#hit-query", "怎么开发票")
    page.click("#hit-run")
    expect(page.locator(".hit-row").first).to_be_visible(timeout=10_000)
    expect(page.locator("#hit-chat")).to_have_count(0)  # the agent's side: the ranking alone
    page.select_option("#hit-audience", "public")
    page.click("#hit-run")
    chat = page.locator("#hit-chat")
    expect(chat).to_contain_text("租客聊天会这样回答", timeout=10_000)
    expect(chat.locator("h3")).to_contain_text("聊天置信度")  # not a second figure named like the search's
    expect(page.locator("#hit-confidence")).to_contain_text("检索置信度")
    answer = httpx.post(server + "/v1/chat/try", json={"question": "怎么开发票"}, headers=auth(TRAINER)).json()
    expect(chat.locator(".hit-chat-answer")).to_have_text(answer["answer"])
    source = chat.locator(".hit-chat-sources a").first
    expect(source).to_have_text(answer["sources"][0]["title"])
    source.click()  # the source opens in the documents tab
    expect(page.locator(f'.doc-item[data-sop-id="{answer["sources"][0]["sop_id"]}"]')).to_have_class(
        re.compile("selected|active")
    )


def test_the_preview_shows_how_call_mode_will_count_the_time_limits(page: Page, server: str) -> None:
    """A trial: how 时限要求 lines become countdowns (from the call, at an event, for a circumstance) and which give
    none (48 小时内上门) could only be learned from a fake call."""
    login(page, server, TRAINER, "/trainer")
    page.click("#tab-docs")
    page.locator('.doc-item[data-sop-id="repair-air-conditioner"]').click()
    wait_for_js(page, "() => document.querySelector('#editor').value.includes('repair-air-conditioner')")
    page.click("#preview-btn")
    call = page.locator("#preview-call")
    expect(call.locator("summary")).to_contain_text("通话中的显示", timeout=10_000)
    call.locator("summary").click()
    expect(call.locator("li", has_text="接报后 5 分钟内")).to_contain_text("从来电起计时")
    expect(call.locator("li", has_text="加急单")).to_contain_text("适用")
    expect(call.locator("li", has_text="普通单：48 小时内上门")).to_contain_text("不倒计时")
