"""The console end to end in a real browser: `labormon demo` in a subprocess (broker, mail
sink, daemon, simulator), Debian's Chromium driven by Playwright (no browser download).

Walks what a union officer does: sees alerts appear, logs in as a county leader,
acknowledges one and sees the timeline update, cannot see another county's alerts; logs
in as an informant, submits a report with a bad field and sees the error, then a good one
and sees its alert. Saves a screenshot of each page under docs/screenshots/ (shown in the
README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = CHROMIUM
    if found is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    return found


class RunningDemo:
    def __init__(self, url: str, directory: Path, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.directory = directory
        self.process = process

    @property
    def logins(self) -> list[dict[str, str]]:
        return list(json.loads((self.directory / "accounts.json").read_text(encoding="utf-8")))

    def login_of(self, account_id: str) -> dict[str, str]:
        return next(login for login in self.logins if login["id"] == account_id)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    directory = tmp_path_factory.mktemp("demo")
    port = free_port()
    log = (directory.parent / "demo.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "demo",
            "--dir",
            str(directory),
            "--bind",
            f"127.0.0.1:{port}",
            "--speed",
            "3",
            "--points",
            "60",
            "--duration",
            "600",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:
                if answer.status == 200 and (directory / "accounts.json").exists():
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise RuntimeError((directory.parent / "demo.log").read_text()[-3000:])
        time.sleep(0.2)
    yield RunningDemo(url, directory, process)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def log_in_as(page: Page, demo: RunningDemo, account_id: str) -> None:
    page.goto(demo.url + "/login")
    page.locator(f'button[data-login="{account_id}"]').click()
    expect(page.locator(".who .account")).to_contain_text(account_id)


def test_leader_and_informant_in_the_console(demo: RunningDemo, page: Page) -> None:
    # Alerts appear by themselves (the list refreshes without a reload).
    page.goto(demo.url + "/alerts")
    rows = page.locator("table.alerts tbody tr[data-alert-id]")
    expect(rows.first).to_be_visible(timeout=60_000)
    shot(page, "alerts")

    # A leader of the county of a waiting alert logs in with the demo's one-click login.
    names = {login["region"]: login["region_code"] for login in demo.logins}
    waiting = page.locator("table.alerts tbody tr.status-triggered").first
    expect(waiting).to_be_visible(timeout=30_000)
    county_name = waiting.locator("td").nth(3).inner_text().strip()
    county = names[county_name]
    alert_id = waiting.get_attribute("data-alert-id")
    page.goto(demo.url + "/login")
    shot(page, "login")
    log_in_as(page, demo, f"lead-{county}")

    # Only this county's alerts are listed; another county's alert is refused.
    page.goto(demo.url + "/alerts")
    expect(rows.first).to_be_visible()
    counties = set(page.locator("table.alerts tbody tr td:nth-child(4)").all_inner_texts())
    assert counties == {county_name}
    other_alert = _an_alert_elsewhere(demo, county)
    page.goto(f"{demo.url}/alerts/{other_alert}")
    expect(page.locator(".error")).to_contain_text("不在您的管辖范围内")

    # Acknowledge: the status changes and the timeline shows who acknowledged.
    page.goto(f"{demo.url}/alerts/{alert_id}")
    expect(page.locator("#alert-status")).to_have_text("待确认")
    page.locator("#ack").click()
    expect(page.locator(".notice")).to_contain_text("已确认收到")
    expect(page.locator("#alert-status")).to_have_text("已确认")
    expect(page.locator("#timeline")).to_contain_text("确认收到")
    # People by post, never by name or account id.
    expect(page.locator("#timeline")).to_contain_text(f"{county_name}总工会")
    shot(page, "alert")

    page.goto(demo.url + "/risk")
    expect(page.locator(".tile").first).to_be_visible()
    expect(page.locator("table.list tbody tr td a").first).to_be_visible(timeout=60_000)
    shot(page, "risk")
    page.locator("table.list tbody tr td a").first.click()
    expect(page.locator("svg.spark").first).to_be_visible()
    shot(page, "point")

    page.goto(demo.url + "/mail")
    expect(page.locator("#mail-table tbody tr td a").first).to_be_visible(timeout=30_000)
    shot(page, "mail")
    page.locator("#mail-table tbody tr td a").first.click()
    expect(page.locator("iframe.mail-html")).to_be_visible()
    shot(page, "mail-message")

    # An informant: a bad field is named next to it; a good report gets a receipt and,
    # road blocking being level I whatever the number, an alert at once.
    page.locator("form[action='/logout'] button").click()
    log_in_as(page, demo, f"INF-{county}-000")
    page.goto(demo.url + "/report")
    page.fill("#people_involved", "很多人")
    page.fill("#description", "工人在项目部门口聚集")
    page.locator("#submit-report").click()
    expect(page.locator("#people_involved-error")).to_be_visible()
    expect(page.locator("#event_type-error")).to_be_visible()
    shot(page, "report-error")
    page.select_option("#event_type", "road_blocking")
    page.fill("#people_involved", "40")
    page.fill("#enterprise_name", "演示建筑公司")
    page.check("#unlisted")
    page.fill("#description", "约40名农民工因被拖欠工资在附近道路聚集并堵路")
    page.locator("#submit-report").click()
    # Road blocking is level I: the form says so and asks before sending.
    expect(page.locator("#consequence")).to_contain_text("县、市、省三级")
    page.locator("#submit-report").click()
    expect(page.locator("#receipt-id")).to_have_text(re.compile(r"^web-"))
    expect(page.locator(".receipt-alerts")).to_contain_text("I级 特别重大", timeout=30_000)
    shot(page, "receipt")
    level_i = page.locator(".receipt-alerts a").first.get_attribute("href")

    # The level I alert as the county leader reads it: what happened, when and where,
    # the enterprise, the people, the level with why, the requirement and its deadline;
    # no score, each reason once, and the transport rows only behind 投递详情.
    page.locator("form[action='/logout'] button").click()
    log_in_as(page, demo, f"lead-{county}")
    page.goto(f"{demo.url}{level_i}")
    facts = page.locator("#alert-facts")
    expect(page.locator("h1")).to_contain_text("I级 特别重大")
    expect(page.locator("h1")).to_contain_text("演示建筑公司 40人堵路")
    expect(page.locator("#what-happened")).to_contain_text("在附近道路聚集并堵路")
    for label in ("发生时间", "地点", "企业", "涉及人数", "定级", "处置要求"):
        expect(facts).to_contain_text(label)
    expect(facts).to_contain_text("40 人")
    expect(page.locator("#requirement")).to_contain_text("1小时内到场")
    expect(page.locator("#requirement")).to_contain_text("时限：")
    expect(facts).not_to_contain_text("风险分")
    assert page.locator("#transport").get_attribute("open") is None
    expect(page.locator("#timeline")).not_to_contain_text("MQTT")
    text = page.locator("main").inner_text()
    assert text.count("不论人数定为特别重大") == 1
    shot(page, "alert-level-i")

    page.goto(demo.url + "/reports")
    shot(page, "reports")


def _an_alert_elsewhere(demo: RunningDemo, county: str) -> str:
    """An alert of another county, read through the API with the city leader's token."""
    token = demo.login_of("lead-430900")["token"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"{demo.url}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            alerts = json.loads(answer.read())
        elsewhere = [a for a in alerts if a["region_code"] not in (county, "430900", "430000")]
        if elsewhere:
            return str(elsewhere[0]["id"])
        time.sleep(0.2)  # the demo's stream is real time: a condition polled, not a timer
    raise AssertionError("no alert in another county within 60 s")
