"""The alert page's handling in a real browser (`labormon demo`, Debian's Chromium): a
county leader files each kind of handling record (核实, 续报, 批示, 答复, 终报), sees the
errors next to the fields first, then every record in the page's timeline."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.test_console_browser import (  # noqa: F401  (fixtures)
    RunningDemo,
    browser,
    demo,
    log_in_as,
    page,
    shot,
)


@pytest.fixture
def county_alert(demo: RunningDemo, page: Page) -> tuple[str, str]:  # noqa: F811
    page.goto(demo.url + "/alerts")
    waiting = page.locator("table.alerts tbody tr.status-triggered").first
    expect(waiting).to_be_visible(timeout=90_000)
    names = {login["region"]: login["region_code"] for login in demo.logins}
    county = names[waiting.locator("td").nth(3).inner_text().strip()]
    alert_id = waiting.get_attribute("data-alert-id")
    assert alert_id is not None
    return county, alert_id


def submit(on: Page, kind: str) -> None:
    on.locator(f"#file-{kind}").click()


def test_a_county_leader_files_every_kind_with_errors_next_to_the_fields(
    demo: RunningDemo,  # noqa: F811
    page: Page,  # noqa: F811
    county_alert: tuple[str, str],
) -> None:
    county, alert_id = county_alert
    log_in_as(page, demo, f"lead-{county}")
    page.goto(f"{demo.url}/alerts/{alert_id}")
    expect(page.locator("#stage")).to_have_text("待确认")
    records = page.locator("#records li.record")

    # 核实: no verdict -> the error sits next to the verdict field.
    submit(page, "verify")
    expect(page.locator("#err-verify-verdict")).to_have_text("请选择一项")
    expect(records).to_have_count(0)
    page.select_option("#verify-verdict", "true")
    page.fill("#verify-text", "工会干部已到现场核实，情况属实")
    submit(page, "verify")
    expect(page.locator(".notice").first).to_contain_text("处置记录已保存")
    expect(page.locator("#stage")).to_have_text("已核实")

    # 续报: a head-count that is not a number.
    page.fill("#progress-people_now", "很多人")
    submit(page, "progress")
    expect(page.locator("#err-progress-people_now")).to_contain_text("整数")
    expect(page.locator("#progress-people_now")).to_have_value("很多人")
    page.fill("#progress-people_now", "80")
    page.fill("#progress-text", "已协调人社、劳动监察到场，正在劝导疏散")
    submit(page, "progress")
    expect(page.locator("#stage")).to_have_text("处置中")

    # 批示: no due time.
    page.fill("#instruction-text", "请督促企业当日兑付，结果报上级")
    submit(page, "instruction")
    expect(page.locator("#err-instruction-due")).to_have_text("必填")
    page.fill("#instruction-due", "4h")
    page.fill("#instruction-text", "请督促企业当日兑付，结果报上级")
    submit(page, "instruction")
    expect(page.locator("[data-instruction]")).to_have_count(1)

    # 答复: the instruction must be chosen.
    page.fill("#answer-text", "企业已承诺今日兑付")
    submit(page, "answer")
    expect(page.locator("#err-answer-answers")).to_have_text("必填")
    page.locator("#answer-answers").select_option(index=1)
    page.fill("#answer-text", "企业已承诺今日兑付")
    submit(page, "answer")
    expect(page.locator("[data-instruction]")).to_have_count(0)

    # 终报: the outcome's fields are required.
    page.fill("#final-wages_recovered", "-5")
    submit(page, "final")
    expect(page.locator("#err-final-wages_recovered")).to_contain_text("金额")
    expect(page.locator("#err-final-workers_paid")).to_have_text("必填")
    expect(page.locator("#err-final-resolution")).to_have_text("请选择一项")
    shot(page, "alert-handling-errors")
    page.fill("#final-people_final", "80")
    page.fill("#final-wages_recovered", "1200000")
    page.fill("#final-workers_paid", "80")
    page.select_option("#final-resolution", "labor_inspection")
    page.fill("#final-text", "劳动监察责令支付，工资已全部发放")
    submit(page, "final")
    expect(page.locator("#alert-status")).to_have_text("已解除")
    expect(page.locator("#stage")).to_have_text("已办结")

    # Every kind is on the page's timeline, in order, with who filed it.
    kinds = [records.nth(i).get_attribute("data-kind") for i in range(records.count())]
    assert kinds == ["verify", "progress", "instruction", "answer", "final"]
    expect(page.locator("#records")).to_contain_text("属实")
    expect(page.locator("#records")).to_contain_text("现场 80 人")
    expect(page.locator("#records")).to_contain_text("追回工资 1,200,000 元")
    # People are shown by name or post, never by account id (issue 13).
    expect(page.locator("#records")).to_contain_text("总工会领导")
    expect(page.locator("#records")).not_to_contain_text(f"lead-{county}")
    expect(page.locator("#timeline")).not_to_contain_text("record")
    expect(page.locator("#timeline")).to_contain_text("处置记录")
    expect(page.locator(".record-forms")).to_have_count(0)
    shot(page, "alert-handling")
