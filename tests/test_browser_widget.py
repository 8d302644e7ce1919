"""The tenant widget's hand-over in a real headless Chromium: under a style-src 'self' CSP with no violation (on the
demo page and on a host page of another origin), agents' replies labelled as a person's, at most one contact form,
and an open case that survives a reload of the page (api/static/widget.js, widget-handover.js, widget.css)."""

# ruff: noqa: F811 - the fixtures imported from tests/browser_kit.py are parameters of the tests below
from __future__ import annotations

import json
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
from tests.helpers import AGENT, auth, wait_for

pytestmark = pytest.mark.browser

CASE_KEY = "kb-chat-widget.case"
UNANSWERABLE = ("附近有什么好吃的火锅店推荐吗", "明天会下雨吗", "帮我订一张去上海的高铁票")
# Every CSP violation on the page, shadow roots included (the event is composed), plus Chromium's console report.
WATCH = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI), true);"
)


@pytest.fixture(scope="module")
def strict_site(server: str, site_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tenant's site on another origin whose CSP allows styles from itself only (the widget's origin may load
    scripts and be called, as any embedding page must allow), with page styles that try to move and hide the widget."""
    root = tmp_path_factory.mktemp("strict-site")
    policy = f"default-src 'self'; script-src 'self' {server}; connect-src {server}; style-src 'self'"
    (root / "site.css").write_text(
        "body{font-family:serif} #kb-chat-widget{display:none!important;position:static!important}"
        " div{color:green;padding:30px} button{background:red!important}",
        encoding="utf-8",
    )
    (root / "index.html").write_text(
        f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>某公寓官网</title><link rel="stylesheet" href="site.css"></head>
<body><h1>欢迎来到某公寓</h1><script src="{server}/widget.js" data-color="#0a7d4f" data-position="left" async></script>
</body></html>""",
        encoding="utf-8",
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", site_port), partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site_port}/index.html"
    httpd.shutdown()


class Tenant:
    """One tenant's tab, with every CSP violation it meets recorded."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.page = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN").new_page()
        self.page.add_init_script(WATCH)
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(m.text))
        self.violations: list[str] = []
        self.page.goto(url)

    def reload(self) -> None:
        self.violations += self.page.evaluate("window.__csp")
        self.page.reload()

    def blocked(self) -> list[str]:
        seen = self.violations + self.page.evaluate("window.__csp")
        return seen + [t for t in self.console if "Content Security Policy" in t]

    def ask(self, question: str) -> None:
        self.page.locator(".kb-input").fill(question)
        self.page.keyboard.press("Enter")

    def kept(self) -> dict | None:
        raw = self.page.evaluate(f"sessionStorage.getItem('{CASE_KEY}')")
        return json.loads(raw) if raw else None

    def style(self, selector: str, prop: str) -> str:
        return str(self.page.locator(selector).first.evaluate(f"(n) => getComputedStyle(n).{prop}"))

    def fill_form(self, name: str = "王五") -> None:
        form = self.page.locator(".kb-case-form")
        form.locator("input[name=name]").fill(name)
        form.locator("input[name=room]").fill("3栋1101")
        form.locator("input[name=phone]").fill("13700137000")

    def close(self) -> None:
        self.page.context.close()


class Agent:
    """The agent's side through the API (the console's own flow is tests/test_browser.py's)."""

    def __init__(self, server: str) -> None:
        self.http = httpx.Client(base_url=server, headers=auth(AGENT), timeout=10)

    def reply(self, case_id: str, text: str) -> None:
        self.http.post(f"/v1/cases/{case_id}/take", json={}).raise_for_status()
        self.http.post(f"/v1/cases/{case_id}/messages", json={"text": text}).raise_for_status()

    def tenant_said(self, case_id: str) -> list[str]:
        case = self.http.get(f"/v1/cases/{case_id}").raise_for_status().json()
        return [m["text"] for m in case["messages"] if m["author"] == "tenant"]

    def close(self, case_id: str) -> None:
        self.http.post(f"/v1/cases/{case_id}/close", json={}).raise_for_status()


def test_hand_over_on_the_demo_page_survives_a_reload_without_inline_styles(browser: Browser, server: str) -> None:
    tenant, agent = Tenant(browser, server + "/demo"), Agent(server)
    page = tenant.page
    page.locator(".kb-launcher").click()
    expect(page.locator(".kb-panel")).to_be_visible()
    assert tenant.style(".kb-launcher", "borderRadius") == "50%"  # widget.css applied
    tenant.ask("房租可以开发票吗？")
    expect(page.locator(".kb-source").first).to_contain_text("发票", timeout=15_000)

    # 4: two unanswerable questions in a row → one form, moved down, what was typed kept
    tenant.ask(UNANSWERABLE[0])
    expect(page.locator(".kb-case-form")).to_be_visible(timeout=15_000)
    page.locator(".kb-case-form input[name=name]").fill("王五")
    tenant.ask(UNANSWERABLE[1])
    expect(page.locator(".kb-handoff.kb-bot:not(.kb-case-intro)")).to_have_count(2, timeout=15_000)
    expect(page.locator(".kb-case-form")).to_have_count(1)
    expect(page.locator(".kb-case-form input[name=name]")).to_have_value("王五")
    assert page.locator(".kb-messages > :last-child").evaluate("(n) => n.matches('.kb-case-form')")
    # 2: the form is styled by widget.css under the demo page's style-src 'self'
    assert tenant.style(".kb-case-form", "display") == "flex"
    assert tenant.style(".kb-case-submit", "backgroundColor") == "rgb(31, 111, 235)"
    tenant.fill_form()
    page.locator(".kb-case-submit").click()
    expect(page.locator(".kb-handoff").last).to_contain_text("客服已收到", timeout=10_000)

    # 1: the case is kept for this tab only, never in localStorage or the URL
    kept = tenant.kept()
    assert kept and kept["id"] and kept["token"]
    assert kept["token"] not in page.evaluate("JSON.stringify(localStorage)") and kept["token"] not in page.url
    case_id = kept["id"]
    agent.reply(case_id, "您好，我是客服小陈，附近美食可以看 App 的周边生活页面。")

    # 3: the agent's reply is labelled as a person's and looks unlike the bot's answer
    reply = page.locator(".kb-agent")
    expect(reply).to_contain_text("周边生活", timeout=15_000)
    expect(reply.locator(".kb-author")).to_have_text("人工客服")
    assert tenant.style(".kb-agent", "backgroundColor") != tenant.style(".kb-bot:has(.kb-source)", "backgroundColor")
    page.screenshot(path=str(ARTIFACTS / "widget-agent-reply.png"))

    # 1: a reload shows the conversation so far and keeps following the case
    tenant.reload()
    expect(page.locator(".kb-panel")).to_be_visible()  # it was open
    expect(page.locator(".kb-agent")).to_contain_text("周边生活", timeout=10_000)
    expect(page.locator(".kb-agent .kb-author")).to_have_text("人工客服")
    expect(page.locator(".kb-user")).to_have_count(3)
    expect(page.locator(".kb-source").first).to_contain_text("发票")
    expect(page.locator(".kb-welcome")).to_have_count(1)
    agent.http.post(f"/v1/cases/{case_id}/messages", json={"text": "请问还有其他需要帮忙的吗？"}).raise_for_status()
    expect(page.locator(".kb-agent")).to_have_count(2, timeout=15_000)

    # 4: while the case is open, what the tenant types (answerable or not) goes to it, and no form appears
    tenant.ask("好的，谢谢")
    expect(page.locator(".kb-send")).to_be_enabled()
    tenant.ask(UNANSWERABLE[2])
    expect(page.locator(".kb-user")).to_have_count(5)
    said = ["好的，谢谢", UNANSWERABLE[2]]
    assert wait_for(lambda: agent.tenant_said(case_id)[-2:] == said, 10), agent.tenant_said(case_id)
    expect(page.locator(".kb-case-form")).to_have_count(0)

    # 1: the agent closes the case → the tab forgets it; a reload starts afresh
    agent.close(case_id)
    expect(page.locator(".kb-handoff").last).to_contain_text("结束", timeout=15_000)
    wait_for_js(page, f"() => sessionStorage.getItem('{CASE_KEY}') === null")
    tenant.reload()
    page.locator(".kb-launcher").click()
    expect(page.locator(".kb-welcome")).to_be_visible()
    expect(page.locator(".kb-msg")).to_have_count(1)
    assert tenant.blocked() == []
    tenant.close()


def test_widget_on_a_strict_csp_site_elsewhere_is_styled_and_resumes(browser: Browser, strict_site: str) -> None:
    tenant = Tenant(browser, strict_site)
    page = tenant.page
    launcher = page.locator(".kb-launcher")
    expect(launcher).to_be_visible()
    box = page.locator("#kb-chat-widget").bounding_box()
    assert box and box["x"] == 20 and box["width"] == 56  # data-position="left", the page's rules cannot move it
    assert tenant.style(".kb-launcher", "backgroundColor") == "rgb(10, 125, 79)"  # data-color
    launcher.click()
    tenant.ask(UNANSWERABLE[0])
    expect(page.locator(".kb-case-form")).to_be_visible(timeout=15_000)
    assert tenant.style(".kb-case-form", "display") == "flex"
    assert tenant.style(".kb-case-form input", "borderTopWidth") == "1px"
    tenant.fill_form("赵六")
    page.locator(".kb-case-submit").click()
    expect(page.locator(".kb-handoff").last).to_contain_text("客服已收到", timeout=10_000)
    assert tenant.kept()  # in the host page's sessionStorage
    tenant.reload()
    expect(page.locator(".kb-handoff").last).to_contain_text("客服已收到", timeout=10_000)
    expect(page.locator(".kb-user")).to_have_text([UNANSWERABLE[0]])
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily") == "serif"
    page.screenshot(path=str(ARTIFACTS / "widget-strict-site.png"))
    assert tenant.blocked() == []
    tenant.close()


def test_a_kept_case_the_server_no_longer_knows_is_forgotten_quietly(browser: Browser, server: str) -> None:
    tenant = Tenant(browser, server + "/demo")
    page = tenant.page
    expect(page.locator(".kb-launcher")).to_be_visible()
    for case_id, token in (("0123456789abcdef", "not-the-token"), ("gone", "x" * 200)):  # 404, then 422
        stale = {
            "id": case_id,
            "token": token,
            "after": 0,
            "open": True,
            "shown": [{"c": "kb-msg kb-bot kb-agent", "t": "旧的客服回复"}],
        }
        page.evaluate("([k, v]) => sessionStorage.setItem(k, v)", [CASE_KEY, json.dumps(stale)])
        tenant.reload()
        wait_for_js(page, f"() => sessionStorage.getItem('{CASE_KEY}') === null", timeout=10)
        page.locator(".kb-launcher").click()
        expect(page.locator(".kb-welcome")).to_be_visible()
        expect(page.locator(".kb-msg")).to_have_count(1)  # nothing restored, no error shown
    assert tenant.blocked() == []
    tenant.close()
