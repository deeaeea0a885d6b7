"""The covering email of the monthly report (subject, plain text, HTML), in Chinese.

It repeats the key figures so that a leader reading on a phone gets the gist without
opening the attachment; like the report, it holds no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

import markupsafe

from monitor.report import labels
from monitor.report.document import ReportDocument


@dataclass(frozen=True)
class CoveringMail:
    subject: str
    text: str
    html: str


def covering_mail(doc: ReportDocument, attached: list[str]) -> CoveringMail:
    f = doc.figures
    month = labels.month_title(f.month)
    name = f"《{f.city_name}{month}职工信访定量分析月报》（{doc.issue}）"
    kinds = {"pdf": "PDF版", "docx": "Word版"}
    files = "、".join(kinds.get(a, a) for a in attached)
    opened = sum(r.opened for r in f.alerts)
    still = sum(r.open_at_end for r in f.alerts)

    no_last_year = f.totals.last_year.petitions == 0

    def line(name: str, cur: int, prev: int, ly: int, unit: str) -> tuple[str, str]:
        yoy = "上年无数据" if no_last_year else labels.fmt_change(cur, ly)
        return (name, f"{cur}{unit}（环比{labels.fmt_change(cur, prev)}，同比{yoy}）")

    t = f.totals
    figures = [
        line("信访件数", t.current.petitions, t.previous.petitions, t.last_year.petitions, "件"),
        line("涉及人次", t.current.people, t.previous.people, t.last_year.people, "人次"),
        line(
            "集体访",
            f.collective.current.petitions,
            f.collective.previous.petitions,
            f.collective.last_year.petitions,
            "件",
        ),
        line(
            "越级访",
            f.over_level_total.current.petitions,
            f.over_level_total.previous.petitions,
            f.over_level_total.last_year.petitions,
            "件",
        ),
        ("风险预警", f"本月新发{opened}条，月末未解除{still}条"),
    ]
    closing = "本邮件由劳动关系风险监测预警系统自动发送，不含信访人个人信息。"
    attachment_line = f"完整报告见附件（{files}）。" if files else "完整报告可在系统中查阅。"
    text = "\n".join(
        [
            "各位领导：",
            "",
            f"现将{name}呈送，请审阅。",
            "",
            f"本月要点：{doc.analysis.summary}",
            "",
            "主要指标：",
            *[f"  {k}：{v}" for k, v in figures],
            "",
            attachment_line,
            "",
            f.issuer,
            doc.date_line,
            "",
            closing,
        ]
    )
    esc = markupsafe.escape
    rows = "".join(
        f'<tr><td style="padding:4px 10px;border-bottom:1px solid #ddd">{esc(k)}</td>'
        f'<td style="padding:4px 10px;border-bottom:1px solid #ddd">{esc(v)}</td></tr>'
        for k, v in figures
    )
    html = (
        "<div style=\"font-family:'Microsoft YaHei','Noto Sans CJK SC',sans-serif;"
        'font-size:14px;line-height:1.7;color:#222">'
        "<p>各位领导：</p>"
        f"<p>现将{esc(name)}呈送，请审阅。</p>"
        f"<p><b>本月要点：</b>{esc(doc.analysis.summary)}</p>"
        f'<table style="border-collapse:collapse;margin:8px 0">{rows}</table>'
        f"<p>{esc(attachment_line)}</p>"
        f"<p>{esc(f.issuer)}<br>{esc(doc.date_line)}</p>"
        f'<p style="color:#888;font-size:12px">{esc(closing)}</p>'
        "</div>"
    )
    subject = f"【月报】{f.city_name}{month}职工信访定量分析月报"
    return CoveringMail(subject=subject, text=text, html=html)
