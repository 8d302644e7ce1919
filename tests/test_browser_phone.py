"""The tenant widget on a phone (a touch screen, upright and on its side) inside a host app's page with a fixed bottom
tab bar, in a real headless Chromium: what a phone trial found (session 39) — the launcher over the host's tab, a small
card in landscape, Back leaving the page, no sign of an agent's reply while the panel was closed, the service hours
shown only after the form, 28 px emergency links and the chat's input beside the form above the keyboard."""

# ruff: noqa: F811 - the fixtures imported from tests/browser_kit.py are parameters of the tests below
from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser_kit import (  # noqa: F401 - fixtures
    ARTIFACTS,
    Browser,
    Page,
    browser,
    server,
    site_port,
    wait_for_js,
)
from tests.helpers import AGENT, auth

pytestmark = pytest.mark.browser

TAB_BAR = 56
PHONE = {"viewport": {"width": 390, "height": 664}, "is_mobile": True, "has_touch": True, "locale": "zh-CN"}
UNREAD = "window.__unread = []; addEventListener('kb-unread', (e) => window.__unread.push(e.detail.count));"


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"KB_SERVICE_HOURS": "00:00-24:00", "KB_SERVICE_TIMEZONE": "Asia/Shanghai", "KB_CASE_RATE_LIMIT": "50"}


@pytest.fixture(scope="module")
def app_page(server: str, site_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A host app's page: a fixed header, a fixed bottom tab bar, the widget told to sit above it; and a page whose
    own 在线客服 button opens the widget, which shows no launcher."""
    root = tmp_path_factory.mktemp("app")
    bar = (
        f'<nav id="tabs" style="position:fixed;left:0;right:0;bottom:0;height:{TAB_BAR}px;display:flex;'
        'background:#fff;border-top:1px solid #ddd">'
        + "".join(
            f'<a href="#{t}" style="flex:1;text-align:center;line-height:56px">{t}</a>'
            for t in ("首页", "服务", "我的")
        )
        + "</nav>"
    )
    head = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width"><title>悦居</title></head>'
    )
    (root / "index.html").write_text(
        f'{head}<body><header style="position:fixed;top:0;height:48px">悦居</header>{bar}'
        f'<script src="{server}/widget.js" data-offset-bottom="{TAB_BAR + 12}" async></script></body></html>',
        encoding="utf-8",
    )
    (root / "own-button.html").write_text(
        f'{head}<body><button id="help" onclick="KbChatWidget.open()">在线客服</button>{bar}'
        f'<script src="{server}/widget.js" data-launcher="none" async></script></body></html>',
        encoding="utf-8",
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", site_port), partial(SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site_port}"
    httpd.shutdown()


def _phone(browser: Browser, url: str, **options: object) -> Page:
    page = browser.new_context(**PHONE, **options).new_page()
    page.add_init_script(UNREAD)
    page.goto(url)
    return page


def test_the_launcher_clears_the_tab_bar_landscape_is_full_screen_and_back_closes_the_panel(
    browser: Browser, app_page: str
) -> None:
    page = _phone(browser, f"{app_page}/index.html")
    launcher = page.locator(".kb-launcher")
    expect(launcher).to_be_visible(timeout=10_000)
    box = launcher.bounding_box()
    assert box and box["y"] + box["height"] <= 664 - TAB_BAR, box  # above the host's bar, not on its 我的
    assert page.evaluate("document.elementFromPoint(360, 664 - 28).textContent") == "我的"
    page.set_viewport_size({"width": 844, "height": 390})  # the phone on its side
    launcher.click()
    panel = page.locator(".kb-panel")
    expect(panel).to_be_visible()
    assert panel.bounding_box() == {"x": 0, "y": 0, "width": 844, "height": 390}  # not a 370×250 card
    messages = page.locator(".kb-messages").bounding_box()
    assert messages and messages["height"] >= 0.6 * 390, messages  # the header and input leave room to read
    page.screenshot(path=str(ARTIFACTS / "widget-phone-landscape.png"))
    # Back closes the panel once widget-handover.js (loaded on the first opening) has added its step: a busy CI
    # machine's Back came before it and left the page
    page.wait_for_function("history.state && history.state.kbChat === true")
    page.go_back()  # the phone's Back: the panel closes, the host page stays
    expect(panel).to_be_hidden()
    assert page.url.endswith("/index.html")
    launcher.click()
    page.locator(".kb-close").click()  # closing it by hand leaves no step behind for Back
    expect(panel).to_be_hidden()
    assert page.evaluate("history.state") is None
    page.context.close()


def test_the_hours_show_before_a_question_and_an_agents_reply_counts_on_the_closed_launcher(
    browser: Browser, app_page: str, server: str
) -> None:
    page = _phone(browser, f"{app_page}/index.html")
    page.locator(".kb-launcher").click()
    expect(page.locator(".kb-subtitle")).to_have_text("人工客服 00:00–24:00 在线", timeout=10_000)
    expect(page.locator(".kb-input")).not_to_be_focused()  # no keyboard over the welcome on a phone
    page.locator(".kb-input").fill("厨房有股煤气味")
    page.locator(".kb-send").click()
    tel = page.locator(".kb-emergency .kb-tel").first
    expect(tel).to_be_visible(timeout=15_000)
    tel_box = tel.bounding_box()
    assert tel_box and tel_box["height"] >= 40, tel_box  # a thumb's target (the trial measured 24 px)
    form = page.locator(".kb-case-form")
    expect(form).to_be_visible()
    chats = []
    page.on("request", lambda r: chats.append(r.post_data) if r.url.endswith("/v1/chat") else None)
    page.locator(".kb-input").fill("我叫李雷 房间1208 电话13812345678")  # typed beside the form, as in a chat
    page.locator(".kb-send").click()
    expect(page.locator(".kb-handoff", has_text="请把联系方式填在上面的表单里")).to_be_visible()
    assert chats == []  # the number never went to the chat (nor its log)
    form.locator("input[name=room]").fill("3栋1101")
    form.locator("input[name=phone]").click()
    expect(page.locator(".kb-form")).to_be_hidden()  # the chat's input steps aside while the form is filled in
    form.locator("input[name=phone]").fill("13700137000")
    form.locator(".kb-case-submit").click()
    expect(page.locator(".kb-case-intro")).to_have_count(0, timeout=15_000)  # the form's prompt goes with the form
    expect(page.locator(".kb-form")).to_be_visible()
    case_id = httpx.get(f"{server}/v1/cases", headers=auth(AGENT)).json()["cases"][0]["case_id"]
    page.locator(".kb-close").click()
    httpx.post(f"{server}/v1/cases/{case_id}/messages", json={"text": "师傅马上到"}, headers=auth(AGENT))
    launcher = page.locator(".kb-launcher")
    expect(launcher).to_have_attribute("data-unread", "1", timeout=15_000)
    expect(launcher).to_have_attribute("aria-label", "打开在线客服（1 条新回复）")
    page.reload()  # another page of the app, or back from another app: still unread (a re-check lost the count)
    expect(launcher).to_have_attribute("data-unread", "1", timeout=15_000)
    launcher.click()
    expect(page.locator(".kb-agent", has_text="师傅马上到")).to_be_in_viewport()
    expect(launcher).not_to_have_attribute("data-unread", "1")
    assert page.evaluate("window.__unread") == [1, 0]
    page.context.close()


def test_a_host_with_its_own_button_has_no_launcher_and_opens_the_chat_itself_in_dark_mode(
    browser: Browser, app_page: str
) -> None:
    page = _phone(browser, f"{app_page}/own-button.html", color_scheme="dark")
    page.wait_for_function("() => window.KbChatWidget && document.getElementById('kb-chat-widget')?.shadowRoot")
    expect(page.locator(".kb-launcher")).to_be_hidden()
    assert page.evaluate("document.elementFromPoint(360, 664 - 28).textContent") == "我的"
    page.locator("#help").click()
    expect(page.locator(".kb-panel")).to_be_visible(timeout=10_000)
    # dark mode on the phone: dark surfaces, not a white sheet (a phone trial)
    assert page.locator(".kb-panel").evaluate("(n) => getComputedStyle(n).backgroundColor") == "rgb(22, 27, 34)"
    # placeholders readable on the dark field: #8b949e, 5.6:1 (#757575 was 3.75:1, an accessibility re-check)
    placeholder = "(n) => getComputedStyle(n, '::placeholder').color"
    assert page.locator(".kb-input").evaluate(placeholder) == "rgb(139, 148, 158)"
    page.context.close()
