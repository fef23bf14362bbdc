"""One-way latency percentiles per configuration (generator and sink share
CLOCK_MONOTONIC, so these are true one-way figures on one host)."""
from ..html import csv_link, empty, fragment
from ..stats import by_config

TITLE = "Latency"
METRICS = ["derived.latency_p50_ns", "derived.latency_p99_ns", "derived.latency_p999_ns",
           "latency_max_ns", "derived.received_pps"]

TEMPLATE = """
<p class="note">Time from the generator writing a datagram's header to the sink reading it,
per received packet, as percentiles over each trial; each cell is the median of those percentiles
over the repetitions. At a flat-out rate the sink queue fills, so latency there measures the queue,
not the path. {{ csv }}</p>
<div class="scroll">
<table class="compact">
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">received</th>
  <th class="num">p50</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">max</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{{ r.pair }}</td><td>{{ fmt.size(r["params.payload_bytes"]) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p50_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p99_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p999_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "latency_max_ns", fmt.ns) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
</div>
"""


def _max(record):
    lat = (record.get("raw") or {}).get("latency_ns") or {}
    return lat.get("max") if isinstance(lat, dict) else None


def render(run):
    m = run.measured
    if m.empty:
        return TITLE, empty("No measured trials: no latency figures.")
    m = m.copy()
    if "derived.latency_p999_ns" not in m:
        m["derived.latency_p999_ns"] = None
    m["latency_max_ns"] = [_max(r) for r in m["record"]]
    agg = by_config(m, METRICS)
    rows = [r for _, r in agg.iterrows() if r["derived.latency_p50_ns.n"]]
    if not rows:
        return TITLE, empty("No trial recorded latency (sinks with accounting=count do not "
                            "read the timestamp).")
    csv = csv_link(rows, [("generator_sink", "pair"), ("payload_bytes", "params.payload_bytes"),
                          ("offered", "rate_label"), ("p50_ns", "derived.latency_p50_ns.med"),
                          ("p99_ns", "derived.latency_p99_ns.med"),
                          ("p999_ns", "derived.latency_p999_ns.med"),
                          ("max_ns", "latency_max_ns.med"), ("n", "derived.latency_p50_ns.n")],
                   "latency.csv")
    return TITLE, fragment(TEMPLATE, rows=rows, csv=csv)
