"""What a keyboard-only or screen-reader agent meets in the console (an accessibility review, session 40): focus that
goes where the work is, what is said without moving focus (#announcer), short names for result cards, and contrast."""

# ruff: noqa: F811 - the fixtures imported from tests/browser_kit.py are parameters of the tests below
from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser_kit import Browser, Page, browser, login, page, server, site_port  # noqa: F401 - fixtures
from tests.helpers import AGENT, auth

pytestmark = pytest.mark.browser


def _focused(page: Page) -> str:
    """The focused element as tag#id.classes (what a test can compare)."""
    return page.evaluate(
        "() => { const e = document.activeElement; return `${e.tagName}#${e.id}.${[...e.classList].join('.')}`; }"
    )


def test_results_have_short_names_and_are_said_and_the_drawer_takes_and_returns_focus(page: Page, server: str) -> None:
    login(page, server, AGENT)
    search = page.locator("#search")
    search.fill("天花板漏水，水一直往下滴")
    first = page.locator(".result").first
    expect(first).to_have_attribute("data-sop-id", "repair-leak-ceiling", timeout=10_000)
    expect(page.locator("[role=option], [role=listbox]")).to_have_count(0)  # an option's name was its 1,000 characters
    name = first.get_attribute("aria-label") or ""
    assert name.startswith("第 1 条：") and len(name) < 80, name
    expect(page.locator("#announcer")).to_contain_text("条结果，第 1 条：", timeout=5_000)
    search.press("ArrowDown")
    expect(page.locator("#announcer")).to_contain_text("已选 第 2 条")
    expect(search).to_be_focused()
    # Enter in the search box: the agent goes on typing; the drawer is said, not focused
    search.press("Enter")
    expect(page.locator("#sop-view")).to_be_visible()
    expect(search).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("已打开全文")
    search.press("Escape")
    expect(page.locator("#sop-view")).to_be_hidden()
    # From a button: focus moves into the drawer, and Escape brings it back to that button
    button = first.locator(".open-btn")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#sop-view-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#sop-view")).to_be_hidden()
    expect(button).to_be_focused()
    # A button that goes away leaves focus on what it revealed or said, not on the page
    more = first.locator(".more-btn").first
    if more.count():
        more.focus()
        page.keyboard.press("Enter")
        assert _focused(page).startswith("LI#"), _focused(page)
    up = first.locator(".vote-up")
    up.focus()
    page.keyboard.press("Enter")
    expect(first.locator(".vote-msg")).to_be_focused()
    # The faint text is readable (4.8:1 on the page background; it was #8c959f, 2.8:1)
    page.locator("#search").fill("")
    assert page.locator(".shortcut-help").evaluate("e => getComputedStyle(e).color") == "rgb(101, 109, 118)"


def test_the_queue_is_said_and_focus_follows_taking_replying_and_closing_a_case(page: Page, server: str) -> None:
    login(page, server, AGENT)
    toggle = page.locator("#cases-toggle")
    expect(toggle).to_be_visible(timeout=10_000)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    page.wait_for_timeout(4_500)  # the first poll knows the queue as it was: only later cases are new
    contact = {"room": "5栋806", "phone": "13500135000"}
    body = {"session_id": "s-a11y", "question": "卫生间的灯不亮了", "contact": contact}
    case = httpx.post(f"{server}/v1/cases", json=body, timeout=30).json()
    expect(page.locator("#announcer")).to_contain_text("新的转人工请求：卫生间的灯不亮了", timeout=10_000)
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#cases h2")).to_be_focused()  # not 57 Tab stops away
    item = page.locator(".case-open", has_text=body["question"])
    item.focus()
    page.keyboard.press("Enter")
    take = page.locator(".case-take")
    take.focus()
    page.keyboard.press("Enter")
    reply = page.locator(".case-reply")
    expect(reply).to_be_focused()
    expect(reply).to_have_attribute("aria-label", "回复租客")
    tenant = {"X-Case-Token": case["token"]}
    httpx.post(f"{server}/v1/cases/{case['case_id']}/messages", json={"text": "是吸顶灯"}, headers=tenant, timeout=30)
    expect(page.locator("#announcer")).to_contain_text("租客回复：是吸顶灯", timeout=10_000)
    page.keyboard.press("Escape")  # in the reply box Escape is the agent's (an IME's), not the panel's
    expect(page.locator("#cases")).to_be_visible()
    page.locator(".case-close").focus()
    page.wait_for_timeout(5_000)  # a poll redraws the queue and the case (every 4 s): focus stays on the button
    expect(page.locator(".case-close")).to_be_focused()
    close = page.locator(".case-close")
    close.focus()
    page.keyboard.press("Enter")  # asks first
    page.locator(".case-close").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#cases h2")).to_be_focused(timeout=10_000)
    assert httpx.get(f"{server}/v1/cases/{case['case_id']}", headers=auth(AGENT)).json()["status"] == "closed"
    page.keyboard.press("Escape")  # the panel closes back to its toggle
    expect(page.locator("#cases")).to_be_hidden()
    expect(toggle).to_be_focused()


ACTIVE = "() => document.getElementById('kb-chat-widget').shadowRoot.activeElement?.className"


def test_the_widget_says_who_speaks_keeps_focus_in_the_chat_and_ties_errors_to_fields(page: Page, server: str) -> None:
    page.goto(server + "/demo")
    launcher = page.locator(".kb-launcher")
    expect(launcher).to_be_visible()  # shown once its styles have loaded
    launcher.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".kb-input")).to_be_focused()
    expect(page.locator(".kb-panel")).to_have_attribute("lang", "zh-CN")
    page.keyboard.type("押金什么时候退")
    page.keyboard.press("Enter")
    answer = page.locator(".kb-msg.kb-bot").first
    expect(answer).to_be_visible(timeout=15_000)
    expect(page.locator(".kb-msg.kb-user .kb-sr")).to_have_text("我说：")
    expect(answer.locator(".kb-sr")).to_have_text("智能客服：")
    answer.locator(".kb-vote-up").focus()
    page.keyboard.press("Enter")
    expect(answer.locator(".kb-vote-note")).to_contain_text("感谢")
    assert page.evaluate(ACTIVE) == "kb-vote-note"  # not the host page
    # The whole section unfolded is read once, where focus moves, not again as new text of the chat log (a review)
    answer.locator(".kb-more").focus()  # the deposit's line of the moving-out section; 查看完整内容 unfolds it
    page.keyboard.press("Enter")
    unfolded = answer.locator(".kb-text[aria-live=off]")
    expect(unfolded).to_be_focused()
    expect(unfolded).to_contain_text("退租申请")
    # The form's message is tied to the field it is about
    page.locator(".kb-input").fill("转人工")
    page.keyboard.press("Enter")
    form = page.locator(".kb-case-form")
    expect(form).to_be_visible(timeout=15_000)
    expect(page.get_by_role("form", name="转人工联系表")).to_be_visible()  # a landmark, not loose fields in the log
    form.locator("input[name=room]").fill("3栋1101")
    form.locator("input[name=phone]").fill("1381234")
    form.locator("[name=question]").fill("卫生间天花板漏水")
    form.locator("input[name=name]").fill("王五")
    form.locator(".kb-case-submit").focus()
    page.keyboard.press("Enter")
    phone = form.locator("input[name=phone]")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_attribute("aria-describedby", "kb-case-note")
    expect(page.locator("#kb-case-note")).to_contain_text("请填写正确的电话")
    phone.fill("13812345678")
    form.locator(".kb-case-submit").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".kb-handoff", has_text="编号").first).to_be_visible(timeout=15_000)
    assert page.evaluate(ACTIVE) == "kb-input"  # 给客服留言, not the host page: Escape still closes the chat
    page.keyboard.press("Escape")
    expect(page.locator(".kb-panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    # Readable grey: the footer was #8b949e (3.1:1)
    assert page.locator(".kb-footer").evaluate("e => getComputedStyle(e).color") == "rgb(101, 109, 118)"


def test_the_emergency_numbers_say_what_they_are_for(page: Page, server: str) -> None:
    page.goto(server + "/demo")
    page.locator(".kb-launcher").click()
    page.locator(".kb-input").fill("厨房里闻到很大的煤气味")
    page.keyboard.press("Enter")
    links = page.locator(".kb-emergency .kb-tel")
    expect(links.first).to_be_visible(timeout=15_000)
    labels = [links.nth(i).get_attribute("aria-label") for i in range(links.count())]
    assert labels == ["拨打 119 火警", "拨打 120 急救", "拨打 110 报警"], labels
    expect(page.locator(".kb-emergency")).to_have_text("紧急电话：119 / 120 / 110")  # seen as before


def test_single_key_shortcuts_can_be_turned_off(page: Page, server: str) -> None:
    login(page, server, AGENT)
    toggle = page.locator("#single-keys")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    toggle.click()
    expect(toggle).to_have_text("单键快捷键：关")
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")  # speech input's stray "/" no longer jumps to the search box
    expect(page.locator("#search")).not_to_be_focused()
    page.reload()  # kept in this browser
    expect(page.locator("#single-keys")).to_have_attribute("aria-pressed", "false")
    page.locator("#single-keys").click()
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()


def test_on_a_phone_the_full_screen_chat_keeps_tab_inside_it(browser: Browser, server: str) -> None:
    page = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN", has_touch=True).new_page()
    page.goto(server + "/demo")
    expect(page.locator(".kb-launcher")).to_be_visible()  # shown once its styles have loaded
    page.locator(".kb-launcher").focus()
    page.keyboard.press("Enter")
    panel = page.locator(".kb-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("aria-modal", "true", timeout=10_000)  # set when the companion script has loaded
    inside = "() => { const r = document.getElementById('kb-chat-widget').shadowRoot; return Boolean(r.activeElement && r.querySelector('.kb-panel').contains(r.activeElement)); }"  # noqa: E501
    assert page.evaluate(inside)  # on a touch screen the panel itself (not the input: no keyboard over the welcome)
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:  # round and round: never the host page or the covered launcher
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    page.context.close()
