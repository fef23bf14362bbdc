"""Conformance matrix: transport × check, pass/fail/skip with the reason."""
import re

from .. import fmt
from ..html import csv_link, empty, fragment

TITLE = "Conformance"

TEMPLATE = """
{{ csv }}
<p class="note">Each cell is one check of the kernel's documented contract
(item numbers refer to docs/conformance.md). A <em>skip</em> with reason "unsupported: …" means this kernel
or lab cannot run the check; it is never counted as a pass.</p>
<table class="matrix">
 <thead><tr><th>item</th><th>check</th>{% for t in transports %}<th>{{ t }}</th>{% endfor %}</tr></thead>
 <tbody>
 {% for row in rows %}
  <tr><td class="num">{{ row.item }}</td><td><code>{{ row.check }}</code></td>
  {% for cell in row.cells %}
   {% if cell %}
    <td class="cell {{ cell[0].status }}">{% for c in cell %}{{ badge(c.status, c.reason) }}{% if c.reason %}<div class="why">{{ c.reason }}</div>{% endif %}{% endfor %}</td>
   {% else %}<td class="cell none" title="not a check of this transport">·</td>{% endif %}
  {% endfor %}</tr>
 {% endfor %}
 </tbody>
 <tfoot><tr><th></th><th>totals</th>
 {% for t in transports %}<td class="totals">{% for s, n in totals[t] %}{{ badge(s) }}&nbsp;{{ n }} {% endfor %}</td>{% endfor %}
 </tr></tfoot>
</table>
"""


def _text(v):
    return "" if fmt.missing(v) else str(v)


def _kernel(r):
    kernel = _text(r.get("params.kernel")) or "this kernel"
    emulated = r.get("params.emulated")
    return kernel + (" (emulated)" if emulated is True or emulated == True else "")  # noqa: E712


def _natural(label):
    """Sort key comparing digit runs as numbers: 6.9 before 6.12 before 6.18."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", label)]


def columns(conf):
    """One column per transport; one per transport × kernel when records come from
    more than one kernel (each guest kernel under qemu adds its own records; any
    number of them)."""
    kernels = {_kernel(r) for _, r in conf.iterrows()}
    if len(kernels) <= 1:
        return [_text(t) or "?" for t in conf["params.transport"]]
    return [f"{_text(r['params.transport']) or '?'} · {_kernel(r)}" for _, r in conf.iterrows()]


def matrix(conf):
    """(transports, rows, totals): rows ordered by item number, then check name."""
    conf = conf.copy()
    conf["params.transport"] = columns(conf) if len(conf) else conf["params.transport"]
    transports = sorted({_text(t) or "?" for t in conf["params.transport"]}, key=_natural)
    cells = {}
    for _, r in conf.iterrows():
        check = _text(r["params.check"]) or _text(r["name"]) or "?"
        item = r["params.conformance_item"]
        key = (check, "" if fmt.missing(item) else int(item))
        cells.setdefault(key, {}).setdefault(_text(r["params.transport"]) or "?", []).append(
            {"status": _text(r["status"]) or "?", "reason": _text(r["reason"])})
    order = sorted(cells, key=lambda k: (k[1] == "", k[1] if k[1] != "" else 0, k[0]))
    rows = [{"check": c, "item": i, "cells": [cells[(c, i)].get(t) for t in transports]}
            for c, i in order]
    totals = {}
    for t in transports:
        sub = conf[conf["params.transport"].map(lambda v: (_text(v) or "?") == t)]
        totals[t] = [(s, int((sub["status"] == s).sum()))
                     for s in ("pass", "fail", "skip", "error") if (sub["status"] == s).any()]
    return transports, rows, totals


def render(run):
    if run.conformance.empty:
        return TITLE, empty("No conformance records in this run "
                            "(run the conformance suites, e.g. ./run.py test).")
    transports, rows, totals = matrix(run.conformance)
    csv = csv_link(list(run.conformance.to_dict("records")),
                   [("transport", "params.transport"), ("kernel", "params.kernel"),
                    ("emulated", "params.emulated"), ("check", "params.check"),
                    ("item", "params.conformance_item"), ("status", "status"),
                    ("reason", "reason")], "conformance.csv")
    return TITLE, fragment(TEMPLATE, transports=transports, rows=rows, totals=totals, csv=csv)
