"""The campaign report's two charts drawn as small SVG documents straight from the report's aggregates (the
funnel by channel, and treatment minus control per stage with its interval): no plotting library, a few
hundred bytes each, so an open campaign's interim report is redrawn in well under a millisecond whenever
an event changes it. Returned as data URIs for an <img> (no script runs from an image). Pure."""

from __future__ import annotations

import base64
import math
from html import escape

from microlend.marketing.tracking import CampaignReport

WIDTH = 640
_COLOURS = ("#1f6feb", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c")


def _uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _doc(height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">'
            f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def funnel_svg(report: CampaignReport) -> str | None:
    """The funnel by channel: one line per channel over the stages, customers on the vertical axis."""
    rows = [f for f in report.funnel if f.by == "channel"]
    if not rows:
        return None
    stages = [s for s, _ in rows[0].stages()]
    top = max([v for r in rows for _, v in r.stages()] + [1])
    height, left, right, upper, lower = 240, 50, 20, 24, 40
    plot_w, plot_h = WIDTH - left - right, height - upper - lower
    step = plot_w / max(len(stages) - 1, 1)
    body = [f'<text x="{left}" y="14" font-weight="bold">Funnel by channel</text>',
            f'<line x1="{left}" y1="{upper + plot_h}" x2="{left + plot_w}" y2="{upper + plot_h}" stroke="#888"/>',
            f'<text x="4" y="{upper + 8}">{top:,}</text><text x="4" y="{upper + plot_h}">0</text>']
    for i, s in enumerate(stages):
        body.append(f'<text x="{left + i * step:.1f}" y="{height - 22}" text-anchor="middle">{escape(s)}</text>')
    for n, r in enumerate(rows):
        colour = _COLOURS[n % len(_COLOURS)]
        points = " ".join(f"{left + i * step:.1f},{upper + plot_h - v / top * plot_h:.1f}"
                          for i, (_, v) in enumerate(r.stages()))
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body.append(f'<text x="{left + 8 + n * 90}" y="{height - 6}" fill="{colour}">{escape(r.group)}</text>')
    return _uri(_doc(height, body, "Funnel by channel"))


def lift_svg(report: CampaignReport) -> str | None:
    """Treatment minus control per stage, in percentage points, with its interval."""
    if not report.comparisons:
        return None
    spans = [abs(v) for c in report.comparisons for v in (c.low, c.high, c.difference) if math.isfinite(v)]
    reach = max([*spans, 0.0001]) * 100
    row_h, upper, left, right = 28, 30, 110, 30
    height = upper + row_h * len(report.comparisons) + 24
    plot_w = WIDTH - left - right
    zero = left + plot_w / 2

    def x(value: float) -> float:
        return zero + (value * 100 / reach * (plot_w / 2) if math.isfinite(value) else 0.0)

    title = f"Incremental effect, {report.confidence:.0%} interval"
    body = [f'<text x="{left}" y="14" font-weight="bold">{escape(title)}</text>',
            f'<line x1="{zero:.1f}" y1="{upper - 6}" x2="{zero:.1f}" y2="{height - 20}" stroke="#888"/>',
            f'<text x="{left}" y="{height - 6}">-{reach:.2f} pp</text>',
            f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">+{reach:.2f} pp</text>']
    for i, c in enumerate(report.comparisons):
        y = upper + i * row_h + row_h / 2
        body.append(f'<text x="4" y="{y + 4:.1f}">{escape(c.stage)}</text>')
        body.append(f'<line x1="{x(c.low):.1f}" y1="{y:.1f}" x2="{x(c.high):.1f}" y2="{y:.1f}" stroke="#1f6feb" '
                    f'stroke-width="2"/>')
        body.append(f'<circle cx="{x(c.difference):.1f}" cy="{y:.1f}" r="4" fill="#1f6feb"/>')
        body.append(f'<text x="{x(c.difference) + 8:.1f}" y="{y - 6:.1f}">{c.difference * 100:+.2f}</text>')
    return _uri(_doc(height, body, title))
