"""Small hand-written inline SVG line charts for per-trial detail.

A report holds one per trial and metric, hidden in <details>: matplotlib would
make each one slow and ~20 KB; these are a polyline and a few labels.
"""
import math

from markupsafe import Markup, escape

from .charts import PALETTE


def _finite(values):
    return [v for v in values if v is not None and math.isfinite(v)]


def line_chart(xs, series, title, unit_fmt=str, width=300, height=90, x_label="s"):
    """series: [(label, [y...])] sharing xs. The y axis starts at 0 so a dip
    reads as a dip, not as noise blown up to full height."""
    ys_all = _finite([y for _, ys in series for y in ys])
    if len(xs) < 2 or not ys_all:
        return Markup('<span class="na">no interval samples</span>')
    left, right, top, bottom = 46, 6, 14, 16
    w, h = width - left - right, height - top - bottom
    x0, x1 = min(xs), max(xs)
    y1 = max(ys_all) or 1.0
    sx = lambda x: left + (x - x0) / ((x1 - x0) or 1) * w
    sy = lambda y: top + h - (y / y1) * h
    parts = [f'<svg class="spark" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#bbb"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#bbb"/>',
             f'<text x="{left - 3}" y="{top + 4}" font-size="9" text-anchor="end">'
             f'{escape(unit_fmt(y1))}</text>',
             f'<text x="{left - 3}" y="{top + h}" font-size="9" text-anchor="end">0</text>',
             f'<text x="{left + w}" y="{height - 3}" font-size="9" text-anchor="end">'
             f'{x1:.2g} {escape(x_label)}</text>']
    for i, (label, ys) in enumerate(series):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys)
                       if y is not None and math.isfinite(y))
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.3" '
                     f'points="{pts}"/>')
        parts.append(f'<text x="{left + 4 + 70 * i}" y="{top - 3}" font-size="9" '
                     f'fill="{colour}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
