"""The product's one chart style: inline SVG drawn on the server (no image request, no script), scaled to the
phone's width by the style sheet (`svg.chart`), its labels already in the reader's language, and its numbers
shown next to it as a table."""

from __future__ import annotations

from decimal import Decimal

from markupsafe import escape


def rate_bars_svg(rows: list[tuple[str, Decimal | None]], label: str) -> str:
    """Rates (0..1) as horizontal bars, one per labelled row, each with its percentage written at its end; a
    rate that cannot be computed (no cases) is drawn as no bar and a dash, never as 0 %."""
    width, row_height, label_width, pad = 600, 44, 200, 8
    height = row_height * len(rows) + pad
    scale = width - label_width - 90
    parts = []
    for i, (name, rate) in enumerate(rows):
        y = pad + i * row_height
        parts.append(f'<text class="label" x="0" y="{y + 26}">{escape(name)}</text>')
        if rate is None:
            parts.append(f'<text class="value" x="{label_width + 6}" y="{y + 26}">—</text>')
            continue
        w = max(float(rate) * scale, 0.0)
        shown = f"{float(rate) * 100:.1f}%"
        parts.append(f'<rect class="series-{i}" x="{label_width}" y="{y + 6}" width="{w:.1f}" '
                     f'height="{row_height - 16}">'
                     f"<title>{escape(name)}: {shown}</title></rect>")
        parts.append(f'<text class="value" x="{label_width + w + 6:.1f}" y="{y + 26}">{shown}</text>')
    return (f'<svg class="chart hbars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f'<line class="axis" x1="{label_width}" y1="{pad}" x2="{label_width}" y2="{height}"/>'
            f'{"".join(parts)}</svg>')
