"""CPU cost: ns per received packet per sink, and where the lab CPUs spent it."""
import numpy as np
import pandas as pd

from .. import charts, fmt
from ..html import empty, fragment
from ..stats import by_config
from .summary import top_rate_rows

TITLE = "CPU cost"
METRICS = ["derived.cpu_ns_per_pkt_sink", "derived.cpu_ns_per_pkt_total",
           "derived.cpu_ns_per_pkt_sink_thread", "derived.sink_cpu_percent",
           "derived.received_pps"]
# /proc/stat fields drawn, bottom to top; nice is folded into user as top(1) does.
LAYERS = ["user", "system", "softirq", "irq", "steal"]

TEMPLATE = """
<p class="note">CPU time per received packet, from <code>/proc/stat</code> deltas over the
measurement window: <em>sink CPU</em> is the CPU the sink thread is pinned to, <em>lab CPUs</em> all
CPUs the trial used (generator included), <em>sink thread</em> the thread's own rusage. {{ pmu }}</p>
{% if ns_chart %}<figure>{{ ns_chart }}</figure>{% endif %}
{% if breakdown_chart %}
<h3>Per-CPU breakdown, each sink at its top offered rate</h3>
<p class="note">Share of the measurement window each CPU spent per <code>/proc/stat</code> category
(median over repetitions). Steal is time the hypervisor gave to someone else.</p>
<figure>{{ breakdown_chart }}</figure>
{% endif %}
<table>
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">received</th>
  <th class="num">ns/pkt sink CPU</th><th class="num">ns/pkt lab CPUs</th>
  <th class="num">ns/pkt sink thread</th><th class="num">sink CPU busy</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{{ r.pair }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_sink", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_total", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_sink_thread", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.sink_cpu_percent", fmt.percent) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
"""


def ns_chart(top):
    """Grouped bars: x payload size, one bar per pair, y ns per packet on the lab CPUs."""
    sizes = sorted(top["params.payload_bytes"].dropna().unique())
    pairs = sorted(set(top["pair"]))
    colours = charts.pair_colours(pairs)
    if not any(top[f"{m}.n"].sum() for m in ("derived.cpu_ns_per_pkt_sink",
                                             "derived.cpu_ns_per_pkt_total")):
        return None
    fig, axes = charts.figure(ncols=2, width=11)
    for ax, metric, title in ((axes[0], "derived.cpu_ns_per_pkt_sink", "sink CPU"),
                              (axes[1], "derived.cpu_ns_per_pkt_total", "all lab CPUs")):
        series = {}
        for _, r in top.iterrows():
            series.setdefault(r["pair"], {})[r["params.payload_bytes"]] = (
                r[f"{metric}.med"], r[f"{metric}.min"], r[f"{metric}.max"])
        charts.grouped_bars(ax, sizes, {p: series[p] for p in pairs if p in series}, colours)
        ax.set_xticklabels([f"{int(s)} B" for s in sizes])
        ax.set_xlabel("UDP payload")
        ax.set_ylabel("CPU ns per received packet")
        ax.set_title(f"{title}, each sink at its top offered rate")
    charts.legend_below(fig, axes)
    return charts.svg(fig, "CPU nanoseconds per received packet per sink")


def cpu_layers(trials):
    """Long table: config, cpu, layer, percent of window (one row per trial)."""
    rows = []
    for _, t in trials.iterrows():
        rec = t["record"] or {}
        raw = rec.get("raw") or {}
        window = raw.get("window_ns") or 0
        for c in raw.get("cpu_delta") or []:
            if not window or not isinstance(c, dict):
                continue
            for layer in LAYERS:
                v = c.get(f"{layer}_ns") or 0
                if layer == "user":
                    v += c.get("nice_ns") or 0
                rows.append({"config": t["config"], "cpu": c.get("cpu"), "layer": layer,
                             "percent": 100.0 * v / window})
    return pd.DataFrame(rows, columns=["config", "cpu", "layer", "percent"])


def breakdown_chart(run, top):
    measured = run.measured
    measured = measured[measured["config"].isin(set(top["config"]))]
    long = cpu_layers(measured)
    if long.empty:
        return None
    med = long.groupby(["config", "cpu", "layer"])["percent"].median().unstack("layer")
    med = med.reindex(columns=LAYERS).fillna(0.0)
    order = top.sort_values(["params.payload_bytes", "pair"])
    labels, values = [], []
    for _, r in order.iterrows():
        if r["config"] not in med.index.get_level_values(0):
            continue
        for cpu, row in med.loc[r["config"]].iterrows():
            labels.append(f"{r['pair']} · {fmt.row_size(r)} · CPU {cpu}")
            values.append(row.values)
    if not values:
        return None
    values = np.array(values)
    fig, axes = charts.figure(ncols=1, width=10, height=0.9 + 0.26 * len(labels))
    ax = axes[0]
    y = np.arange(len(labels))[::-1]
    left = np.zeros(len(labels))
    for j, layer in enumerate(LAYERS):
        ax.barh(y, values[:, j], left=left, color=charts.LAYER_COLOURS[layer], label=layer,
                height=0.7)
        left += values[:, j]
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the measurement window (%)")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(LAYERS))
    fig.tight_layout()
    return charts.svg(fig, "Per-CPU time by /proc/stat category at the top offered rate")


def render(run):
    agg = by_config(run.trials, METRICS)
    if agg.empty:
        return TITLE, empty("No measured trials: no CPU figures.")
    top = top_rate_rows(agg)
    pmu = (run.context.get("pmu") or {})
    if pmu.get("available"):
        pmu_text = "Hardware PMU counters were available."
    else:
        why = pmu.get("reason") or "no reason recorded"
        pmu_text = f"No hardware PMU here ({why}): cycles and cache misses are not shown."
    return TITLE, fragment(TEMPLATE, ns_chart=ns_chart(top),
                           breakdown_chart=breakdown_chart(run, top),
                           rows=[r for _, r in agg.iterrows()], pmu=pmu_text)
