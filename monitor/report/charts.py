"""Charts of the monthly report (matplotlib, Noto CJK): the 13-month trend and the counties.

matplotlib draws a box for a character its font lacks and only warns ("Glyph ... missing
from font"). A report with boxes in it must not reach a leader, so that warning is
turned into a `ReportError` here, in production as in the tests.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede any pyplot import elsewhere

from matplotlib import font_manager
from matplotlib.figure import Figure

from monitor.report import labels
from monitor.report.figures import MonthlyFigures, ReportError

Format = Literal["png", "svg"]

#: Families tried in order; Debian's fonts-noto-cjk provides the first.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei")

CATEGORY_COLOURS = {
    "wage_arrears": "#b03a2e",
    "social_insurance": "#2e75b6",
    "layoff": "#d68910",
    "contract": "#239b56",
    "injury": "#7d3c98",
    "other": "#8c8c8c",
}
SERIES_COLOURS = ("#b03a2e", "#7f9cc0", "#c9c9c9")

# rcParams are process-wide: charts are drawn one at a time (the daemon renders in a
# worker thread while the CLI may not), so one lock guards the settings and the
# warnings capture around each drawing.
_LOCK = threading.Lock()


def _find_cjk_family() -> str | None:
    for family in CJK_FAMILIES:
        try:
            font_manager.findfont(
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
        except ValueError:
            continue
        return family
    return None


def refresh_font_list() -> list[str]:
    """Add the system's fonts that matplotlib's cached font list lacks, and save the list.

    matplotlib builds its list once and then reads it from its cache directory, so fonts
    installed after the first report (fonts-noto-cjk) stayed invisible until someone
    deleted ~/.cache/matplotlib by hand. Returns the files added."""
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    added = []
    for path in sorted(set(font_manager.findSystemFonts()) - known):
        try:
            font_manager.fontManager.addfont(path)
        except (OSError, RuntimeError, ValueError):  # unreadable or not a font: skip it
            continue
        added.append(path)
    if added:
        cache_file = Path(
            matplotlib.get_cachedir(), f"fontlist-v{font_manager.FontManager.__version__}.json"
        )
        with contextlib.suppress(OSError):  # an unwritable cache only costs the next run
            font_manager.json_dump(font_manager.fontManager, cache_file)
    return added


@cache
def cjk_font() -> str:
    """The family name of an installed CJK font, or `ReportError` naming the package.
    Fonts installed after matplotlib cached its font list are found too."""
    family = _find_cjk_family()
    if family is None and refresh_font_list():
        family = _find_cjk_family()
    if family is not None:
        return family
    raise ReportError(
        "no CJK font found for the report charts: install fonts-noto-cjk "
        "(Debian/Ubuntu: apt-get install fonts-noto-cjk)"
    )


@contextmanager
def _drawing() -> Iterator[None]:
    family = cjk_font()
    with (
        _LOCK,
        matplotlib.rc_context(
            {
                "font.family": "sans-serif",
                "font.sans-serif": [family],
                "font.size": 9,
                "axes.unicode_minus": False,  # the CJK font has no U+2212 minus sign
                "svg.fonttype": "path",
                "svg.hashsalt": "labormon",
                "axes.spines.top": False,
                "axes.spines.right": False,
            }
        ),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        yield
        missing = [w for w in caught if "missing from font" in str(w.message)]
        if missing:
            raise ReportError(f"chart text has characters the font lacks: {missing[0].message}")
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _save(fig: Figure, fmt: Format) -> bytes:
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=200, metadata=metadata, bbox_inches="tight")
    return buffer.getvalue()


def _no_data(fig: Figure, text: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#555555")


def trend_chart(f: MonthlyFigures, fmt: Format = "png") -> bytes:
    """Stacked bars: petitions per month by category over 13 months, totals on top."""
    with _drawing():
        fig = Figure(figsize=(6.4, 2.9))
        months = f.trend
        if not any(m.total.petitions for m in months):
            _no_data(fig, "近13个月无信访数据")
            return _save(fig, fmt)
        ax = fig.add_subplot()
        x = list(range(len(months)))
        bottom = [0] * len(months)
        categories = list(months[-1].by_category)
        for category in categories:
            values = [m.by_category.get(category, 0) for m in months]
            ax.bar(
                x,
                values,
                bottom=bottom,
                width=0.68,
                color=CATEGORY_COLOURS.get(category, "#555555"),
                label=labels.label(labels.CATEGORIES, category),
                edgecolor="white",
                linewidth=0.4,
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        top = max(bottom)
        for i, total in enumerate(bottom):
            ax.text(
                i,
                total + top * 0.015,
                str(total),
                ha="center",
                va="bottom",
                fontsize=7.5,
                fontweight="bold" if i == len(months) - 1 else "normal",
            )
        ticks = []
        for i, m in enumerate(months):
            tick = f"{m.month.month}月"
            if i == 0 or m.month.month == 1:
                tick += f"\n{m.month.year}年"
            ticks.append(tick)
        ax.set_xticks(x, ticks)
        ax.set_ylim(0, top * 1.12)
        ax.set_ylabel("件数")
        ax.grid(axis="y", color="#dddddd", linewidth=0.5)
        ax.set_axisbelow(True)
        ax.get_xticklabels()[-1].set_fontweight("bold")
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=len(categories),
            frameon=False,
            fontsize=8,
        )
        return _save(fig, fmt)


def county_chart(f: MonthlyFigures, fmt: Format = "png") -> bytes:
    """Horizontal bars per county: this month against last month and a year earlier."""
    with _drawing():
        # Largest at the top: barh draws the first row at the bottom.
        rows = sorted(f.by_county, key=lambda r: (r.current.petitions, r.previous.petitions, r.key))
        height = max(2.2, 0.42 * len(rows) + 0.9)
        fig = Figure(figsize=(6.4, height))
        if not any(
            r.current.petitions or r.previous.petitions or r.last_year.petitions for r in rows
        ):
            _no_data(fig, "本月、上月及上年同月均无信访数据")
            return _save(fig, fmt)
        ax = fig.add_subplot()
        y = list(range(len(rows)))
        series = [
            (f"本月（{labels.month_title(f.month)}）", [r.current.petitions for r in rows]),
            (
                f"上月（{labels.month_title(f.previous_month)}）",
                [r.previous.petitions for r in rows],
            ),
            (
                f"上年同月（{labels.month_title(f.last_year_month)}）",
                [r.last_year.petitions for r in rows],
            ),
        ]
        bar = 0.26
        for k, (name, values) in enumerate(series):
            positions = [v + (1 - k) * bar for v in y]
            ax.barh(positions, values, height=bar, color=SERIES_COLOURS[k], label=name)
            if k == 0:
                peak = max(max(v) for _n, v in series) or 1
                for pos, value in zip(positions, values, strict=True):
                    ax.text(value + peak * 0.01, pos, str(value), va="center", fontsize=7.5)
        ax.set_yticks(y, [r.label for r in rows])
        ax.set_xlabel("件数")
        ax.grid(axis="x", color="#dddddd", linewidth=0.5)
        ax.set_axisbelow(True)
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16 * 3.0 / height),
            ncol=3,
            frameon=False,
            fontsize=8,
        )
        return _save(fig, fmt)


CHARTS = {"trend": trend_chart, "county": county_chart}


def render_chart(chart_id: str, f: MonthlyFigures, fmt: Format = "png") -> bytes:
    return CHARTS[chart_id](f, fmt)
