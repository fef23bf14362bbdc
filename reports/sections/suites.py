"""One subsection per suite of the run: what it ran and its configurations'
medians, so a reader can find "the capture suite" without reading every table."""
import pandas as pd

from ..html import csv_link, empty, fragment
from ..stats import by_config

TITLE = "Suites"
METRICS = ["derived.received_pps", "derived.cpu_ns_per_pkt_total", "derived.loss_ratio"]

TEMPLATE = """
{% for s in suites %}
<h3 id="suite-{{ s.name }}">{{ s.name }}</h3>
<p class="note">{{ s.trials }} trial records in {{ s.configs|length }} configurations
{% for st, n in s.status %}{{ badge(st) }}&nbsp;{{ n }} {% endfor %}{% if s.checks %} · {{ s.checks }} conformance checks{% endif %}
{% if s.searches %} · {{ s.searches }} NDR searches (<a href="#ndr">table</a>){% endif %} {{ s.csv }}</p>
{% if s.configs %}
<div class="scroll"><table class="compact">
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">received</th>
  <th class="num">CPU ns/pkt lab CPUs</th><th class="num">loss</th></tr></thead>
 <tbody>
 {% for r in s.configs %}
  <tr><td>{{ r.pair }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_total", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.loss_ratio", fmt.pct) }}</td></tr>
 {% endfor %}
 </tbody>
</table></div>
{% endif %}
{% endfor %}
"""


def _names(df):
    return [] if df.empty else [str(s) for s in df["suite"].dropna().unique()]


def render(run):
    names = []
    for df in (run.trials, run.conformance, run.ndr):
        for n in _names(df):
            if n not in names:
                names.append(n)
    if not names:
        return TITLE, empty("No records in this run.")
    suites = []
    for name in names:
        t = run.trials[run.trials["suite"] == name] if not run.trials.empty else run.trials
        agg = by_config(t, METRICS) if not t.empty else pd.DataFrame()
        configs = [r for _, r in agg.iterrows()]
        status = [(s, int((t["status"] == s).sum())) for s in ("pass", "fail", "skip", "error")
                  if not t.empty and (t["status"] == s).any()]
        checks = int((run.conformance["suite"] == name).sum()) if not run.conformance.empty else 0
        searches = int((run.ndr["suite"] == name).sum()) if not run.ndr.empty else 0
        csv = csv_link(configs, [("generator_sink", "pair"),
                                 ("payload_bytes", "params.payload_bytes"),
                                 ("offered", "rate_label"),
                                 ("received_pps_median", "derived.received_pps.med"),
                                 ("received_pps_min", "derived.received_pps.min"),
                                 ("received_pps_max", "derived.received_pps.max"),
                                 ("cpu_ns_per_pkt_total_median",
                                  "derived.cpu_ns_per_pkt_total.med"),
                                 ("loss_ratio_median", "derived.loss_ratio.med"),
                                 ("n", "derived.received_pps.n")],
                       f"suite-{name}.csv") if configs else ""
        suites.append({"name": name, "trials": len(t), "configs": configs, "status": status,
                       "checks": checks, "searches": searches, "csv": csv})
    return TITLE, fragment(TEMPLATE, suites=suites)
