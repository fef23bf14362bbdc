"""One-way latency percentiles per configuration (generator and sink share
CLOCK_MONOTONIC, so these are true one-way figures on one host)."""
import numpy as np

from .. import charts, fmt
from ..html import csv_link, empty, fragment
from ..stats import by_config

TITLE = "Latency"
METRICS = ["derived.latency_p50_ns", "derived.latency_p99_ns", "derived.latency_p999_ns",
           "latency_max_ns", "derived.received_pps"]

TEMPLATE = """
<p class="note">Time from the generator writing a datagram's header to the sink reading it,
per received packet, as percentiles over each trial; each cell is the median of those percentiles
over the repetitions. At a flat-out rate the sink queue fills, so latency there measures the queue,
not the path. Where the record carries its histogram, the <em>all reps</em> columns and the CDF
merge the repetitions' histograms (counts added bucket by bucket, ≤ 6.25 % bucket error) — the
right way to combine percentiles, which cannot be averaged. {{ csv }}</p>
{% if cdf %}<figure>{{ cdf }}</figure>{% endif %}
<div class="scroll">
<table class="compact">
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">received</th>
  <th class="num">p50</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">max</th>
  <th class="num">p50 all reps</th><th class="num">p99 all reps</th><th class="num">p99.9 all reps</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{{ r.pair }}</td><td>{{ fmt.size(r["params.payload_bytes"]) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p50_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p99_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p999_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "latency_max_ns", fmt.ns) }}</td>
   <td class="num">{{ fmt.ns(r.merged_p50) }}</td><td class="num">{{ fmt.ns(r.merged_p99) }}</td>
   <td class="num">{{ fmt.ns(r.merged_p999) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
</div>
"""


def _max(record):
    lat = (record.get("raw") or {}).get("latency_ns") or {}
    return lat.get("max") if isinstance(lat, dict) else None


def merged_histogram(records):
    """{bucket upper bound ns: count} summed over the records' latency histograms."""
    out = {}
    for rec in records:
        lat = (rec.get("raw") or {}).get("latency_ns") or {}
        for upper, n in (lat.get("buckets") or []) if isinstance(lat, dict) else []:
            out[int(upper)] = out.get(int(upper), 0) + int(n)
    return out


def quantile(hist, q):
    """Upper bound of the bucket holding quantile q, as the harness computes it."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, int(np.ceil(q * total)))
    seen = 0
    for upper in sorted(hist):
        seen += hist[upper]
        if seen >= rank:
            return upper
    return max(hist)


def cdf_chart(series):
    """series: [(label, hist)] -> one CDF line each, log-scaled latency."""
    fig, axes = charts.figure(ncols=1, width=10, height=4)
    ax = axes[0]
    for i, (label, hist) in enumerate(series):
        xs = sorted(hist)
        ys = np.cumsum([hist[x] for x in xs]) / sum(hist.values())
        ax.step(xs, ys, where="post", label=label, color=charts.PALETTE[i % len(charts.PALETTE)])
    ax.set_xscale("log")
    ax.set_xlabel("one-way latency (ns)")
    ax.set_ylabel("share of packets")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return charts.svg(fig, "Latency CDF per configuration, repetitions merged")


# More lines than this make the CDF unreadable; the table has every configuration.
CDF_MAX_LINES = 10


def render(run):
    m = run.measured
    if m.empty:
        return TITLE, empty("No measured trials: no latency figures.")
    m = m.copy()
    if "derived.latency_p999_ns" not in m:
        m["derived.latency_p999_ns"] = None
    m["latency_max_ns"] = [_max(r) for r in m["record"]]
    agg = by_config(m, METRICS)
    rows = []
    series = []
    for _, r in agg.iterrows():
        if not r["derived.latency_p50_ns.n"]:
            continue
        r = r.copy()
        hist = merged_histogram(m[m["config"] == r["config"]]["record"])
        r["merged_p50"], r["merged_p99"], r["merged_p999"] = (quantile(hist, q)
                                                              for q in (0.5, 0.99, 0.999))
        if hist and len(series) < CDF_MAX_LINES:
            series.append((f"{r['pair']} · {fmt.size(r['params.payload_bytes'])} · "
                           f"{r['rate_label']}", hist))
        rows.append(r)
    if not rows:
        return TITLE, empty("No trial recorded latency (sinks with accounting=count do not "
                            "read the timestamp).")
    csv = csv_link(rows, [("generator_sink", "pair"), ("payload_bytes", "params.payload_bytes"),
                          ("offered", "rate_label"), ("p50_ns", "derived.latency_p50_ns.med"),
                          ("p99_ns", "derived.latency_p99_ns.med"),
                          ("p999_ns", "derived.latency_p999_ns.med"),
                          ("max_ns", "latency_max_ns.med"), ("n", "derived.latency_p50_ns.n")],
                   "latency.csv")
    return TITLE, fragment(TEMPLATE, rows=rows, csv=csv, cdf=cdf_chart(series) if series else None)
