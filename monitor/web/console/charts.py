"""Small inline SVG charts for the console: no JavaScript library, no build step."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup


def sparkline(
    values: Sequence[float | int | None],
    *,
    width: int = 240,
    height: int = 48,
    color: str = "#1f5fa8",
    label: str = "",
    bars: bool = False,
) -> Markup:
    """A line (or bar) chart of a monthly series; gaps (None) break the line."""
    present = [float(v) for v in values if v is not None]
    title = f"<title>{escape(label)}</title>" if label else ""
    if not present:
        return Markup(
            f'<svg class="spark" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}">{title}<text x="4" y="{height / 2 + 4}" '
            'class="spark-empty">无数据</text></svg>'
        )
    low, high = min(0.0, min(present)), max(present)
    span = (high - low) or 1.0
    n = max(1, len(values) - 1) if not bars else max(1, len(values))
    pad = 3

    def x(i: int) -> float:
        return pad + i * (width - 2 * pad) / n

    def y(v: float) -> float:
        return height - pad - (v - low) * (height - 2 * pad) / span

    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}">{title}'
    ]
    if bars:
        w = max(1.0, (width - 2 * pad) / n - 1)
        for i, v in enumerate(values):
            if v is None:
                continue
            top = y(float(v))
            parts.append(
                f'<rect x="{x(i):.1f}" y="{top:.1f}" width="{w:.1f}" '
                f'height="{max(0.5, height - pad - top):.1f}" fill="{color}"/>'
            )
    else:
        segment: list[str] = []
        for i, v in enumerate(values):
            if v is None:
                if len(segment) > 1:
                    parts.append(_polyline(segment, color))
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(float(v)):.1f}")
        if len(segment) > 1:
            parts.append(_polyline(segment, color))
        elif len(segment) == 1:
            cx, cy = segment[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(points: list[str], color: str) -> str:
    return (
        f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{" ".join(points)}"/>'
    )
