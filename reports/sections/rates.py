"""Received versus offered rate, per sink and payload size."""

from .. import charts, fmt
from ..html import empty, fragment
from ..stats import by_config
from .ndr import ceilings

TITLE = "Packet rates"
METRICS = ["derived.offered_pps", "derived.sent_pps", "derived.received_pps",
           "derived.loss_ratio", "derived.latency_p50_ns", "derived.latency_p99_ns",
           "derived.received_mbps"]

TEMPLATE = """
<p class="note">Received packets per second (median, bars: min – max over repetitions) for each
generator → sink pair at each offered rate. <em>max</em> means the generator sends as fast as it can;
its real rate is the <em>sent</em> column.
{% if ceiling_text %}The dashed line is the <strong>lab ceiling</strong>: what the cheapest receiver there is
(<code>xdp_drop</code>, XDP_DROP in the driver) took in this run — {{ ceiling_text }} — so every sink reads as a
fraction of what this lab can physically carry.{% else %}Lab ceiling: not measured in this run (no
<code>xdp_drop</code> trials; run the <code>capture</code> suite).{% endif %}</p>
<figure>{{ chart }}</figure>
<table>
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">sent</th>
  <th class="num">received</th><th class="num">loss</th><th class="num">received Mbit/s</th>
  <th class="num">latency p50</th><th class="num">latency p99</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{{ r.pair }}</td><td>{{ r.size_label }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.sent_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.loss_ratio", fmt.pct) }}</td>
   <td class="num">{{ stat(r, "derived.received_mbps", fmt.mbits) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p50_ns", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.latency_p99_ns", fmt.ns) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
"""


def chart(agg, ceiling=None):
    """One panel per payload size (a frame-size mix is a size of its own); x:
    offered rates in order, y: received Mpps; a dashed line at the lab ceiling
    (xdp_drop) of that size where measured."""
    ceiling = ceiling or {}
    panels = agg.dropna(subset=["params.payload_bytes"]).drop_duplicates(["params.payload_bytes", "size_label"])
    panels = panels.sort_values(["params.payload_bytes", "size_label"])[["params.payload_bytes", "size_label"]]
    sizes = [tuple(p) for p in panels.itertuples(index=False)]
    pairs = sorted(set(agg["pair"]))
    colours = charts.pair_colours(pairs)
    fig, axes = charts.figure(ncols=max(1, len(sizes)))
    for ax, (size, label) in zip(axes, sizes):
        g = agg[(agg["params.payload_bytes"] == size) & (agg["size_label"] == label)]
        rates = g.drop_duplicates("rate_label").sort_values("rate_order")["rate_label"].tolist()
        m = "derived.received_pps"
        series = {}
        for _, r in g.iterrows():
            series.setdefault(r["pair"], {})[r["rate_label"]] = (
                r[f"{m}.med"], r[f"{m}.min"], r[f"{m}.max"])
        charts.grouped_bars(ax, rates, {p: series[p] for p in pairs if p in series}, colours,
                            scale=1e6)
        ax.set_xticklabels(rates)
        if int(size) in ceiling and not label.startswith("IMIX"):  # xdp_drop's ceiling is of one size
            ax.axhline(ceiling[int(size)] / 1e6, linestyle="--", color="black", linewidth=1,
                       label="lab ceiling (xdp_drop)")
        frame = g["params.frame_bytes"].iloc[0]  # the harness's frame size, not a copy of its overhead
        ax.set_title(label if label.startswith("IMIX") else f"{int(size)} B payload ({fmt.size(frame)} frame)")
        ax.set_xlabel("offered rate")
        ax.set_ylabel("received (Mpps)")
    charts.legend_below(fig, axes)
    return charts.svg(fig, "Received rate versus offered rate per sink and payload size")


def render(run):
    agg = by_config(run.trials, METRICS)
    if agg.empty:
        return TITLE, empty("No measured trials: nothing to plot.")
    rows = [r for _, r in agg.iterrows()]
    ceiling = ceilings(run)
    ceiling_text = ", ".join(f"{fmt.pps(v)} at {size} B" for size, v in sorted(ceiling.items()))
    return TITLE, fragment(TEMPLATE, chart=chart(agg, ceiling), rows=rows, ceiling_text=ceiling_text)
