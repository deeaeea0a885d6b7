"""The console on a phone (375x812) in Debian's Chromium against a real `labormon demo`:
no text broken one character per line in the header and the alert list, alerts as cards,
the informant's report form (enterprise picked by typing part of its name, a count the
text contradicts, the confirmation of a level I report) and its receipt. Screenshots go
to docs/screenshots/phone-*.png (README)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import test_console_browser as desktop
from tests.test_console_browser import SHOTS, RunningDemo

# The running demo and the browser of the desktop walk-through.
demo = desktop.demo
browser = desktop.browser

#: Offending text nodes: a text of two or more characters whose lines hold fewer than
#: two characters each (broken one character per line), or a short label (six characters
#: or fewer: menu items, buttons, badges, headings of columns) taller than one line
#: (element height > line height x 1.5).
BROKEN_TEXT = """
(selector) => {
  const bad = [];
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      const text = node.textContent.replace(/\\s+/g, "");
      const el = node.parentElement;
      if (text.length < 2 || !el || el.offsetParent === null) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      const lines = tops.size;
      const style = getComputedStyle(el);
      const fontSize = parseFloat(style.fontSize);
      const lineHeight = style.lineHeight === "normal" ? fontSize * 1.4 : parseFloat(style.lineHeight);
      const height = range.getBoundingClientRect().height;
      if (lines >= 2 && text.length / lines < 2) bad.push(`${text} (${lines} lines)`);
      else if (text.length <= 6 && height > lineHeight * 1.5) bad.push(`${text} (${Math.round(height)} px)`);
    }
  }
  return bad;
}
"""


#: Elements that stick out to the right of the screen (the page would scroll sideways).
TOO_WIDE = """
(width) => [...document.querySelectorAll("body *")]
  .filter(el => el.offsetParent !== null && el.getBoundingClientRect().right > width + 1)
  .filter(el => !el.closest("table.list:not(.alerts)"))
  .slice(0, 5)
  .map(el => `${el.tagName.toLowerCase()}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)
"""


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=False)


def no_broken_text(page: Page, selector: str) -> None:
    broken = page.evaluate(BROKEN_TEXT, selector)
    assert broken == [], f"{page.url} {selector}: {broken}"


def test_the_console_on_a_phone(demo: RunningDemo, phone: Page) -> None:
    page = phone
    page.goto(demo.url + "/login")
    no_broken_text(page, "header.top")
    shot(page, "login")

    # A city leader: the header folds behind 菜单; alerts are cards, not a table.
    log_in_as_phone(page, demo, "lead-430900")
    page.goto(demo.url + "/alerts")
    cards = page.locator("table.alerts tbody tr[data-alert-id]")
    expect(cards.first).to_be_visible(timeout=60_000)
    expect(page.locator("table.alerts thead")).to_be_hidden()
    display = "getComputedStyle(document.querySelector('table.alerts tbody tr')).display"
    assert page.evaluate(display) == "grid"
    expect(page.locator("#top-menu")).to_be_hidden()
    no_broken_text(page, "header.top")
    no_broken_text(page, "table.alerts")
    no_broken_text(page, ".filters")
    wide = page.evaluate(TOO_WIDE, 375)
    assert wide == [], f"wider than the 375 px screen: {wide}"
    shot(page, "alerts")
    page.locator("#menu-toggle").click()
    expect(page.locator("#top-menu nav a", has_text="预警")).to_be_visible()
    no_broken_text(page, "header.top")
    page.locator("#menu-toggle").click()

    href = cards.first.locator("td.title a").get_attribute("href")
    page.goto(demo.url + str(href))
    expect(page.locator("#alert-status")).to_be_visible()
    no_broken_text(page, "header.top")
    no_broken_text(page, "dl.facts")
    shot(page, "alert")

    # An informant of 资阳区 reports from the phone.
    page.locator("#menu-toggle").click()
    page.locator("form[action='/logout'] button").click()
    log_in_as_phone(page, demo, "INF-430902-000")
    page.goto(demo.url + "/report")
    no_broken_text(page, "header.top")
    registry = page.request.get(demo.url + "/report/enterprises?q=").json()
    assert registry, "the demo county has registered enterprises"
    name = registry[0]["name"]
    part = name[1:4] if len(name) > 4 else name[:2]
    page.locator("#enterprise_name").press_sequentially(part, delay=40)
    option = page.locator("#enterprise-options button", has_text=name).first
    expect(option).to_be_visible()
    option.click()
    expect(page.locator("#enterprise_name")).to_have_value(name)
    page.select_option("#event_type", "gathering")
    page.fill("#people_involved", "300")
    page.fill("#description", "工地三十多名农民工在项目部门口聚集，讨要拖欠的工资")
    page.locator("#submit-report").click()
    expect(page.locator("#people-contradiction")).to_contain_text("相差较大")
    expect(page.locator("#consequence")).to_contain_text("县、市、省三级")
    no_broken_text(page, "#report-form")
    assert page.evaluate(TOO_WIDE, 375) == []
    page.locator("#confirm").scroll_into_view_if_needed()
    shot(page, "report")
    # Sent anyway as 300 (level I, the province is told at once) ...
    page.locator("#submit-report").click()
    expect(page.locator("#receipt-id")).to_have_text(re.compile(r"^web-"))
    expect(page.locator("#receipt-people")).to_have_text("300 人")
    expect(page.locator("#receipt-enterprise")).to_contain_text(name)
    expect(page.locator(".receipt-alerts")).to_contain_text("I级", timeout=30_000)
    expect(page.locator("#correct-until")).to_contain_text("前更正或撤回")
    no_broken_text(page, "header.top")
    no_broken_text(page, "dl.facts")
    assert page.evaluate(TOO_WIDE, 375) == []
    shot(page, "receipt")
    # ... and corrected to 30 from the receipt, within the window.
    page.locator("#correct").click()
    expect(page.locator("#people_involved")).to_have_value("300")
    page.fill("#people_involved", "30")
    page.locator("#submit-report").click()
    expect(page.locator("#consequence")).to_contain_text("县、市两级")
    page.locator("#submit-report").click()
    expect(page.locator("#receipt-change")).to_contain_text("已更正报告")
    expect(page.locator("#receipt-people")).to_have_text("30 人")
    expect(page.locator(".receipt-alerts")).to_contain_text("II级", timeout=30_000)
    shot(page, "correction")

    # The province, told at level I, has the correction notice in its mail.
    page.locator("#menu-toggle").click()
    page.locator("form[action='/logout'] button").click()
    log_in_as_phone(page, demo, "lead-430000")
    notice = page.locator("#mail-table tbody tr", has_text="更正").filter(has_text="lead-430000")
    for _ in range(30):
        page.goto(demo.url + "/mail")
        if notice.count():
            break
        page.wait_for_timeout(1000)
    notice.first.locator("a").click()
    expect(page.frame_locator("iframe.mail-html").locator("body")).to_contain_text(
        "更正：涉及人数 300 → 30，等级 I → II"
    )

    # The city's duty officer: the duty view, needs action only, filtered by county.
    page.locator("#menu-toggle").click()
    page.locator("form[action='/logout'] button").click()
    log_in_as_phone(page, demo, "duty-430900")
    page.goto(demo.url + "/duty")
    expect(page.locator("#duty-table")).to_be_visible()
    assert "已解除" not in page.locator("#duty-table").inner_text()
    expect(page.locator("#contacts")).to_contain_text("lead-430902")
    no_broken_text(page, "header.top")
    no_broken_text(page, "#duty-table")
    assert page.evaluate(TOO_WIDE, 375) == []
    shot(page, "duty")
    page.select_option("#filter-county", "430902")
    page.locator("#apply-filters").click()
    counties = page.locator("#duty-table tbody tr[data-county]")
    expect(counties.first).to_be_visible()
    assert set(counties.evaluate_all("rows => rows.map(r => r.dataset.county)")) == {"430902"}


def log_in_as_phone(page: Page, demo: RunningDemo, account_id: str) -> None:
    page.goto(demo.url + "/login")
    page.locator(f'button[data-login="{account_id}"]').click()
    page.locator("#menu-toggle").click()
    expect(page.locator(".who .account")).to_contain_text(account_id)
    page.locator("#menu-toggle").click()
