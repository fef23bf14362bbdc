"""PACKET_MMAP receive rings: what the kernel's ring statistics say beside the
sink's own count — tp_drops, V3 queue freezes and LOSING blocks — and, for the
V3 port aggregation, the merge's rate and order."""
import pandas as pd

from .. import fmt
from ..html import empty, fragment
from ..stats import by_config

TITLE = "Capture rings (PACKET_MMAP)"

RX = "raw.driver_stats.rx."
RING_METRICS = ["derived.received_pps", "derived.loss_ratio", "derived.cpu_ns_per_pkt_sink",
                RX + "tp_drops", RX + "tp_freeze_q_cnt", RX + "blocks_losing", RX + "non_flood_packets"]
MERGE_METRICS = [RX + "merged_packets", RX + "merge_rate_pps", RX + "order_violations",
                 RX + "timestamp_ties", RX + "merge_delay_max_ns"]

TEMPLATE = """
<p class="note">tp_drops: packets the ring had no room for (PACKET_STATISTICS, cleared on read, summed by
the sink). V3 freezes: times every block was still with the user (tp_freeze_q_cnt); LOSING blocks were closed
while drops were pending. Non-flood: packets on the port that were not flood datagrams (ignored).</p>
<div class="scroll"><table class="compact">
 <thead><tr><th>sink</th><th>payload</th><th>offered</th><th class="num">received</th><th class="num">loss</th>
  <th class="num">CPU ns/pkt (sink)</th><th class="num">tp_drops</th><th class="num">V3 freezes</th>
  <th class="num">LOSING blocks</th><th class="num">non-flood</th></tr></thead>
 <tbody>{% for r in rows %}
  <tr><td>{{ r.sink }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.loss_ratio", fmt.pct) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_sink", fmt.ns) }}</td>
   {% for m in ring_cols %}<td class="num">{{ stat(r, m, fmt.count) }}</td>{% endfor %}</tr>
 {% endfor %}</tbody></table></div>
{% if merges %}
<h3>Port aggregation (tpacket_v3 aggregate=on)</h3>
<p class="note">One V3 ring per lab port, merged in timestamp order. Order violations (a packet stamped
earlier than one already emitted) must be 0; equal stamps are ties, counted apart.</p>
<div class="scroll"><table class="compact">
 <thead><tr><th>sink</th><th>payload</th><th>offered</th><th class="num">merged</th><th class="num">merge rate</th>
  <th class="num">order violations</th><th class="num">ties</th><th class="num">max hold</th></tr></thead>
 <tbody>{% for r in merges %}
  <tr><td>{{ r.sink }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, rx ~ "merged_packets", fmt.count) }}</td>
   <td class="num">{{ stat(r, rx ~ "merge_rate_pps", fmt.pps) }}</td>
   <td class="num{% if r[rx ~ 'order_violations.max'] %} bad{% endif %}">{{ stat(r, rx ~ "order_violations", fmt.count) }}</td>
   <td class="num">{{ stat(r, rx ~ "timestamp_ties", fmt.count) }}</td>
   <td class="num">{{ stat(r, rx ~ "merge_delay_max_ns", fmt.ns) }}</td></tr>
 {% endfor %}</tbody></table></div>
{% endif %}
"""


def render(run):
    m = run.measured
    rings = m[m["params.rx"].astype(str).str.startswith("tpacket_")] if not m.empty else m
    if rings.empty:
        return TITLE, empty("No PACKET_MMAP ring trials in this run.")
    rings = rings.copy()
    for c in RING_METRICS + MERGE_METRICS:
        if c not in rings:
            rings[c] = pd.Series([None] * len(rings), index=rings.index, dtype=object)
    agg = by_config(rings, RING_METRICS + MERGE_METRICS)
    merges = agg[pd.to_numeric(agg[RX + "merged_packets.n"], errors="coerce").fillna(0) > 0]
    return TITLE, fragment(TEMPLATE, rows=[r for _, r in agg.iterrows()],
                           merges=[r for _, r in merges.iterrows()], rx=RX,
                           ring_cols=RING_METRICS[3:])
