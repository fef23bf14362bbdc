"""One-way latency percentiles per configuration (generator and sink share
CLOCK_MONOTONIC, so these are true one-way figures on one host), and where the
sink took the kernel's RX stamps, the same latency split at that stamp into
the stack part (send -> kernel stamp) and the wake-up part (kernel stamp ->
user receive): raw.latency_ns.stack / .wakeup (harness/timestamps.h)."""
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
  <tr><td>{{ r.pair }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
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
{% if split %}
<h3>Stack vs wake-up</h3>
<p class="note">The same packets' latency split at the kernel's RX stamp: <em>stack</em> is
send → kernel stamp (the generator's syscall, veth, backlog, NAPI and protocol), <em>wake-up</em>
is kernel stamp → the sink reading the packet (queueing in the socket or ring, then the
scheduler waking the sink). Per packet the two add up to the total above. Repetitions merged
by histogram. <em>stamp</em> says which kernel stamp was used; <em>hardware</em> why NIC stamps
were not (the interface's own answer).</p>
<div class="scroll">
<table class="compact">
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th>stamp</th>
  <th class="num">stamped</th>
  <th class="num">stack p50</th><th class="num">stack p99</th>
  <th class="num">wake-up p50</th><th class="num">wake-up p99</th>
  <th class="num">total p50</th><th>hardware</th></tr></thead>
 <tbody>
 {% for r in split %}
  <tr><td>{{ r.pair }}</td><td>{{ fmt.size(r.payload) }}</td><td>{{ r.rate_label }}</td>
   <td>{{ r.source }}</td><td class="num">{{ r.stamped }}</td>
   <td class="num">{{ fmt.ns(r.stack_p50) }}</td><td class="num">{{ fmt.ns(r.stack_p99) }}</td>
   <td class="num">{{ fmt.ns(r.wakeup_p50) }}</td><td class="num">{{ fmt.ns(r.wakeup_p99) }}</td>
   <td class="num">{{ fmt.ns(r.total_p50) }}</td><td>{{ r.hardware }}</td></tr>
 {% endfor %}
 </tbody>
</table>
</div>
{% endif %}
"""


def _max(record):
    lat = (record.get("raw") or {}).get("latency_ns") or {}
    return lat.get("max") if isinstance(lat, dict) else None


def merged_histogram(records, part=None):
    """{bucket upper bound ns: count} summed over the records' latency histograms
    (part: None for the total, "stack" or "wakeup" for the split)."""
    out = {}
    for rec in records:
        lat = (rec.get("raw") or {}).get("latency_ns") or {}
        if part and isinstance(lat, dict):
            lat = lat.get(part) or {}
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


def _stamps(rec):
    lat = (rec.get("raw") or {}).get("latency_ns") or {}
    st = lat.get("stamps") if isinstance(lat, dict) else None
    return st if isinstance(st, dict) else {}


def stamp_source(records):
    """Which kernel stamp the records' packets carried: "software", "hardware",
    a mix of them joined by " + ", or None when none was taken."""
    seen = []
    for rec in records:
        src = _stamps(rec).get("source")
        if src and src != "none" and src not in seen:
            seen.append(src)
    return " + ".join(seen) if seen else None


def hardware_note(records):
    """The first record's hardware stamp answer: "used", or its reason."""
    for rec in records:
        ts = (rec.get("raw") or {}).get("timestamps")
        if isinstance(ts, dict):
            return "used" if ts.get("hardware") else (ts.get("hardware_reason") or "not used")
    return "—"


def split_row(r, records):
    """The stack/wake-up row of one configuration, or None without stamps."""
    stack, wakeup = merged_histogram(records, "stack"), merged_histogram(records, "wakeup")
    if not stack:
        return None
    stamped = sum(int(_stamps(rec).get("software") or 0) + int(_stamps(rec).get("hardware") or 0)
                  for rec in records)
    total = merged_histogram(records)
    return {"pair": r["pair"], "payload": r["params.payload_bytes"], "rate_label": r["rate_label"],
            "source": stamp_source(records) or "none", "stamped": stamped,
            "stack_p50": quantile(stack, 0.5), "stack_p99": quantile(stack, 0.99),
            "wakeup_p50": quantile(wakeup, 0.5), "wakeup_p99": quantile(wakeup, 0.99),
            "total_p50": quantile(total, 0.5), "hardware": hardware_note(records)}


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
    split = []
    for _, r in agg.iterrows():
        if not r["derived.latency_p50_ns.n"]:
            continue
        r = r.copy()
        records = list(m[m["config"] == r["config"]]["record"])
        hist = merged_histogram(records)
        row = split_row(r, records)
        if row:
            split.append(row)
        r["merged_p50"], r["merged_p99"], r["merged_p999"] = (quantile(hist, q)
                                                              for q in (0.5, 0.99, 0.999))
        if hist and len(series) < CDF_MAX_LINES:
            series.append((f"{r['pair']} · {fmt.row_size(r)} · "
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
    return TITLE, fragment(TEMPLATE, rows=rows, csv=csv, cdf=cdf_chart(series) if series else None,
                           split=split)
