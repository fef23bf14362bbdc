"""matplotlib figures as inline SVG strings (Agg, no display, no network).

Text stays <text> (svg.fonttype none) so charts are small and their labels
searchable; the SVG's metadata block, DOCTYPE and namespace URLs are
dropped because the page must hold no external URL and the HTML parser puts
inline <svg> in the SVG namespace by itself.
"""
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after use())
import numpy as np  # noqa: E402
from markupsafe import Markup  # noqa: E402

# Colour-blind-safe palette (Okabe–Ito), then matplotlib's default for more series.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000"]
LAYER_COLOURS = {"user": "#0072B2", "system": "#56B4E9", "softirq": "#E69F00",
                 "irq": "#D55E00", "steal": "#999999", "nice": "#009E73"}

plt.rcParams.update({
    "svg.fonttype": "none",
    "svg.hashsalt": "zcbench",  # stable ids: identical input, identical report
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
    "legend.frameon": False,
})

_STRIP = [
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
]


def svg(fig, title=""):
    """Close the figure and return its SVG as Markup for direct inclusion."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    for rx in _STRIP:
        text = rx.sub("", text)
    # Scale with the page instead of the fixed pt size matplotlib writes.
    text = re.sub(r'<svg([^>]*?)\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"',
                  lambda m: f'<svg{m.group(1)} class="chart" role="img" '
                            f'style="max-width:{float(m.group(2)) * 4 / 3:.0f}px"',
                  text, count=1)
    if title:
        text = text.replace(">", f"><title>{_xml_escape(title)}</title>", 1)
    return Markup(text)


def _xml_escape(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def colour(i):
    return PALETTE[i % len(PALETTE)]


def pair_colours(pairs):
    """One colour per generator → sink pair, the same in every chart of a page
    as long as each chart passes the run's full set of pairs (sorted here)."""
    return {p: colour(i) for i, p in enumerate(sorted(set(pairs)))}


def figure(ncols=1, width=None, height=3.2):
    width = width or min(12.0, 4.2 * ncols + 0.8)
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return fig, list(axes[0])


def error_bars(med, lo, hi):
    """yerr for min–max spread around a median (never negative)."""
    med, lo, hi = (np.asarray(a, dtype=float) for a in (med, lo, hi))
    return np.vstack([np.clip(med - lo, 0, None), np.clip(hi - med, 0, None)])


def grouped_bars(ax, categories, series, colours, scale=1.0):
    """Bars grouped by category; each group holds only the series present in it,
    centred, so a pair measured at one rate only leaves no hole.

    series: {label: {category: (median, min, max)}}; values are divided by scale.
    """
    width_total = 0.8
    for x, cat in enumerate(categories):
        # A NaN median (no repetition measured it) draws nothing rather than a warning.
        present = [s for s in series if cat in series[s] and np.isfinite(series[s][cat][0])]
        if not present:
            continue
        w = min(width_total / len(present), 0.3)  # a lone bar stays a bar, not a wall
        for j, s in enumerate(present):
            med, lo, hi = (v / scale for v in series[s][cat])
            ax.bar(x - w * len(present) / 2 + w * (j + 0.5), med, width=w * 0.92, color=colours[s],
                   label=s, yerr=error_bars([med], [lo], [hi]), capsize=2,
                   error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(categories)))


def legend_below(fig, axes, ncol=3):
    seen = {}
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(l, h)
    labels, handles = list(seen), list(seen.values())
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(ncol, len(labels)),
                   bbox_to_anchor=(0.5, -0.02 - 0.06 * ((len(labels) - 1) // ncol)))
        fig.tight_layout(rect=(0, 0.1 + 0.06 * ((len(labels) - 1) // ncol), 1, 1))
    else:
        fig.tight_layout()
