"""HTML building blocks shared by sections.

Everything from run.json is text written by other programs (reasons quote
kernel messages, option values are user input), so all templates run with
autoescape on and only helpers here produce Markup.
"""
import csv
import io
import os
import urllib.parse

import jinja2
from markupsafe import Markup, escape

from . import fmt
from .stats import CV_THRESHOLD

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,  # every template, whatever its file name
    undefined=jinja2.ChainableUndefined,  # a missing optional field renders empty
    trim_blocks=True, lstrip_blocks=True,
)


def fragment(source, **ctx):
    """Render a section's template string to Markup (autoescaped)."""
    return Markup(env.from_string(source).render(fmt=fmt, stat=stat, badge=badge,
                                                 csv_link=csv_link, **ctx))


def stat(row, metric, formatter=fmt.plain):
    """A table cell's content: the median, then min–max and n in small print."""
    med = row.get(f"{metric}.med")
    n = row.get(f"{metric}.n", 0) or 0
    if n == 0 or fmt.missing(med):
        return Markup('<span class="na" title="no measured repetition">–</span>')
    lo, hi = row.get(f"{metric}.min"), row.get(f"{metric}.max")
    lo, hi = formatter(lo), formatter(hi)
    # A spread that formats to one value says nothing; n alone remains.
    spread = "" if n < 2 or lo == hi else f"{_drop_shared_unit(lo, hi)}–{hi} · "
    iqr = ""
    q1, q3 = row.get(f"{metric}.q1"), row.get(f"{metric}.q3")
    if n >= 4 and not fmt.missing(q1) and formatter(q1) != formatter(q3):
        iqr = f"IQR {_drop_shared_unit(formatter(q1), formatter(q3))}–{formatter(q3)} · "
    cv = row.get(f"{metric}.cv")
    noisy = Markup("")
    if not fmt.missing(cv) and cv > CV_THRESHOLD:
        noisy = Markup(' <span class="noisy" title="coefficient of variation {} over '
                       'the repetitions, above the {} threshold: too noisy to trust the '
                       'median alone">CV {}</span>').format(fmt.pct(cv), fmt.pct(CV_THRESHOLD),
                                                            fmt.pct(cv, 2))
    return Markup('<span class="med">{}{}</span><span class="spread">{}{}n={}</span>').format(
        formatter(med), noisy, spread, iqr, n)


def csv_link(rows, columns, filename, label="CSV"):
    """A download link carrying the table as CSV in a data: URI (works offline).

    rows: dicts or pandas rows; columns: [(header, key or callable)].
    """
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for h, _ in columns])
    for r in rows:
        out = []
        for _, key in columns:
            v = key(r) if callable(key) else r.get(key)
            out.append("" if fmt.missing(v) else v)
        w.writerow(out)
    href = "data:text/csv;charset=utf-8," + urllib.parse.quote(buf.getvalue())
    return Markup('<a class="csv" download="{}" href="{}" title="download this table as '
                  'CSV">{}</a>').format(filename, href, label)


def _drop_shared_unit(lo, hi):
    """'1.2\u00a0Kpps' before '1.5\u00a0Kpps' -> '1.2': the unit is said once."""
    lo_num, _, lo_unit = lo.rpartition("\u00a0")
    return lo_num if lo_num and hi.endswith("\u00a0" + lo_unit) else lo


def badge(status, reason=""):
    """pass/fail/skip/error as a coloured word, with the reason as tooltip."""
    status = str(status or "?")
    cls = status if status in ("pass", "fail", "skip", "error") else "unknown"
    if reason:
        return Markup('<span class="badge {}" title="{}">{}</span>').format(cls, reason, status)
    return Markup('<span class="badge {}">{}</span>').format(cls, status)


def note(text):
    return Markup('<p class="note">{}</p>').format(text)


def empty(text):
    """What a section shows when the run holds nothing for it."""
    return Markup('<p class="empty">{}</p>').format(text)


__all__ = ["env", "fragment", "stat", "badge", "note", "empty", "escape", "Markup", "csv_link"]
