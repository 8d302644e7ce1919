"""The staff pages in the agent's colour scheme: with the system's dark mode (night shifts, light-sensitive agents: an
accessibility re-check) the console, the trainer workspace and practice are dark, and every visible text on them is
readable (WCAG AA contrast: 4.5:1, 3:1 for large text), as it is in light mode. The audit reads what the browser
renders: each element's own text, its colour and the colour actually behind it."""

# ruff: noqa: F811 - the fixtures imported from tests/browser_kit.py are parameters of the tests below
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser_kit import Browser, Page, browser, login, server, site_port  # noqa: F401 - fixtures
from tests.helpers import AGENT, TRAINER

pytestmark = pytest.mark.browser

# Every visible element with text of its own: its colour against the first opaque background behind it (translucent
# backgrounds blended over what is under them). Disabled controls are exempt (WCAG 1.4.3).
AUDIT = """() => {
  const rgba = (s) => { const m = s.match(/[\\d.]+/g) || [0, 0, 0, 0]; return m.map(Number).concat([1]).slice(0, 4); };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest('[hidden], [aria-hidden=true]') || el.disabled || el.closest(':disabled')) continue;
    const st = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (st.visibility !== 'visible' || Number(st.opacity) === 0 || !box.width || !box.height) continue;
    const bg = behind(el);
    const fg = over(rgba(st.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const name = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}`;
      const said = el.textContent.trim().slice(0, 20);
      bad.push(`${name} ${ratio.toFixed(2)} ${st.color} on rgb(${bg.slice(0, 3).map(Math.round)}) «${said}»`);
    }
  }
  return bad;
}"""


@pytest.fixture(params=["light", "dark"])
def themed(request: pytest.FixtureRequest, browser: Browser, server: str) -> Iterator[tuple[Page, str]]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", color_scheme=request.param)
    yield context.new_page(), request.param
    context.close()


def _background(page: Page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def test_the_console_is_readable_in_both_schemes(themed: tuple[Page, str], server: str) -> None:
    page, scheme = themed
    login(page, server, AGENT, "/")
    page.locator("#search").fill("天花板漏水，水一直往下滴")
    expect(page.locator(".result").first).to_have_attribute("data-sop-id", "repair-leak-ceiling", timeout=10_000)
    assert _background(page) == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(244, 246, 249)")
    assert page.evaluate(AUDIT) == []
    page.locator(".result").first.locator(".open-btn").click()  # the whole SOP in the drawer
    expect(page.locator("#sop-view")).to_be_visible()
    assert page.evaluate(AUDIT) == []
    page.keyboard.press("Escape")
    page.locator("#call-toggle").click()  # call mode, and the hand-over queue beside it
    page.locator(".cases-toggle").click()
    expect(page.locator(".cases-panel")).to_be_visible()
    assert page.evaluate(AUDIT) == []


def test_the_trainer_workspace_and_practice_are_readable_in_both_schemes(themed: tuple[Page, str], server: str) -> None:
    page, scheme = themed
    login(page, server, TRAINER, "/trainer")
    expect(page.locator("body")).not_to_have_text("", timeout=10_000)
    page.wait_for_load_state("networkidle")
    assert _background(page) == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(244, 246, 249)")
    assert page.evaluate(AUDIT) == []
    page.locator(".doc-item").first.click()  # a document open in the editor, with its history and learned phrasings
    page.wait_for_load_state("networkidle")
    assert page.evaluate(AUDIT) == []
    for tab in ("hittest", "gaps", "training", "service"):
        page.locator(f"#tab-{tab}").click()
        expect(page.locator(f"#panel-{tab}")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate(AUDIT) == [], tab
    login(page, server, AGENT, "/practice")
    page.wait_for_load_state("networkidle")
    assert page.evaluate(AUDIT) == []
