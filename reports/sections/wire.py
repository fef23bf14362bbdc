"""Named interfaces ("wire" trials: zcbench send/sink on a port the user named,
./run.py --iface/--wire): the port (driver, firmware, link speed), each sink's
rate over the traffic's active period and over its window, L1/L2 bit rates
and % of the link — all as the harness computed them (derived.bits)."""
from .. import fmt
from ..html import empty, fragment

TITLE = "Wire (named interfaces)"

TEMPLATE = """
<p class="note">Trials on an interface named on the command line, not the lab's veth. <em>Active</em>:
received packets over the traffic's first-to-last packet; <em>window</em>: over the sink's whole window.
L2 = frame (incl. FCS) × 8 × pps; L1 adds preamble and inter-frame gap (20 B per frame). "Sent by" says
what the loss is measured against: the source's own counter, the declared count, or the interface's
rx_packets.</p>
<div class="scroll"><table class="compact">
 <thead><tr><th>port</th><th>driver / firmware</th><th>link</th><th>source → sink</th><th>#</th>
  <th class="num">active pps</th><th class="num">window pps</th><th class="num">L2 Mb/s</th><th class="num">L1 Mb/s</th>
  <th class="num">% link (L1)</th><th class="num">loss</th><th>sent by</th><th class="num">CPU ns/pkt</th>
  <th>ended by</th><th>status</th></tr></thead>
 <tbody>{% for r in rows %}
  <tr><td>{{ r.iface }}</td><td>{{ r.driver }}</td><td>{{ r.link }}</td><td>{{ r.pair }}</td><td>{{ r.rep }}</td>
   <td class="num">{{ fmt.pps(r.active) }}</td><td class="num">{{ fmt.pps(r.window) }}</td>
   <td class="num">{{ fmt.mbits(r.l2) }}</td><td class="num">{{ fmt.mbits(r.l1) }}</td>
   <td class="num">{{ fmt.plain(r.link_pct) }}</td><td class="num">{{ fmt.pct(r.loss) }}</td><td>{{ r.basis }}</td>
   <td class="num">{{ fmt.ns(r.cpu) }}</td><td>{{ r.end }}</td><td>{{ badge(r.status, r.reason) }}</td></tr>
 {% endfor %}</tbody></table></div>
"""


def rows(records):
    out = []
    for r in records:
        p, d = r.get("params") or {}, r.get("derived") or {}
        if r.get("kind") != "trial" or p.get("lab_mode") != "wire":
            continue
        wire, bits = p.get("wire") or {}, d.get("bits") or {}
        drv = wire.get("driver") or {}
        speed = (wire.get("link") or {}).get("speed_mbps")
        mb = lambda k: None if bits.get(k) is None else bits[k] / 1e6  # noqa: E731
        out.append({
            "iface": p.get("iface"), "driver": " ".join(x for x in (drv.get("driver"), drv.get("firmware")) if x) or "–",
            "link": f"{speed} Mb/s" if speed else "unknown",
            "pair": f"{p.get('generator') or p.get('tx')} → {p.get('rx')}", "rep": p.get("repetition"),
            "active": d.get("received_pps_active"), "window": d.get("received_pps_window", d.get("sent_pps")),
            "l2": mb("l2_bps"), "l1": mb("l1_bps"), "link_pct": bits.get("link_percent_l1"),
            "loss": d.get("loss_ratio"), "basis": d.get("sent_basis") or ("sender" if p.get("role") == "send" else "–"),
            "cpu": d.get("cpu_ns_per_pkt_total"), "end": d.get("end_reason") or "–",
            "status": r.get("status"), "reason": r.get("reason") or "",
        })
    return out


LEFT_OUT = """
<p class="note">Sink transports of the suite not run on the interface:</p>
<ul>{% for x in left %}<li>{{ x.suite }}: {{ x.rx }} — {{ x.reason }}</li>{% endfor %}</ul>
"""


def left_out(doc):
    """run.py --iface/--wire: what was left out and why (context.options.wire_left_out)."""
    return ((doc.get("context") or {}).get("options") or {}).get("wire_left_out") or []


def render(run):
    found = rows(run.doc.get("records") or [])
    left = left_out(run.doc)
    if not found and not left:
        return TITLE, empty("No trials on named interfaces in this run (./run.py --iface IF --source external, or --wire GEN:SINK).")
    return TITLE, (fragment(TEMPLATE, rows=found) if found else "") + (fragment(LEFT_OUT, left=left) if left else "")
