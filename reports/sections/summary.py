"""Summary: the best sink per payload size, all sinks at their top rate, and
every record that did not pass."""
import pandas as pd

from .. import fmt, vocab
from ..html import csv_link, empty, fragment
from ..stats import by_config
from .ndr import rows as ndr_rows

TITLE = "Summary"
METRICS = ["derived.received_pps", "derived.sent_pps", "derived.cpu_ns_per_pkt_sink",
           "derived.cpu_ns_per_pkt_total", "derived.sink_cpu_percent", "derived.loss_ratio"]

TEMPLATE = """
<div class="cards">
  <div class="card"><div class="big">{{ counts.trials }}</div>trial records
    <div class="small">{% for s, n in counts.trial_status %}{{ badge(s) }}&nbsp;{{ n }} {% endfor %}</div></div>
  <div class="card"><div class="big">{{ counts.configs }}</div>configurations
    <div class="small">median of {{ counts.reps }} repetitions each</div></div>
  <div class="card"><div class="big">{{ counts.checks }}</div>conformance checks
    <div class="small">{% for s, n in counts.check_status %}{{ badge(s) }}&nbsp;{{ n }} {% endfor %}</div></div>
</div>

<h3>Best sink per payload size {{ csv }}</h3>
{% if emulated %}<p class="note">{{ emulated }} configurations ran on an emulated kernel (qemu): they are
<span class="tag warn">functional only</span> and never ranked against host figures.</p>{% endif %}
{% if best %}
<p class="note">Highest median received rate among the sinks at the top offered rate of each size
(ceilings and peer programs excluded: they are labelled in the table below).
Every figure is a median over repetitions; small print gives min – max and n.</p>
<table>
 <thead><tr><th>payload (frame)</th><th>best: generator → sink</th><th>offered</th>
  <th class="num">received</th><th class="num">CPU ns/pkt (lab CPUs)</th><th class="num">loss</th>
  <th>runner-up</th><th>why</th></tr></thead>
 <tbody>
 {% for b in best %}
  <tr><td>{{ fmt.row_size(b.row) }} ({{ fmt.size(b.row["params.frame_bytes"]) }})</td>
   <td class="em">{{ b.row.pair }}</td><td>{{ b.row.rate_label }}</td>
   <td class="num">{{ stat(b.row, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(b.row, "derived.cpu_ns_per_pkt_total", fmt.ns) }}</td>
   <td class="num">{{ stat(b.row, "derived.loss_ratio", fmt.pct) }}</td>
   <td>{% if b.second is not none %}{{ b.second.pair }}: {{ fmt.pps(b.second["derived.received_pps.med"]) }}
       ({{ "%+.1f"|format(b.gain) }} % for the best){% else %}–{% endif %}</td>
   <td class="why-cell">{{ b.why }}</td></tr>
 {% endfor %}
 </tbody>
</table>

<h3>All sinks at their top offered rate</h3>
<table>
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">sent</th>
  <th class="num">received</th><th class="num">CPU ns/pkt sink CPU</th><th class="num">CPU ns/pkt lab CPUs</th>
  <th class="num">sink CPU</th><th class="num">loss</th></tr></thead>
 <tbody>
 {% for r in top %}
  <tr{% if r.is_best %} class="best" title="best at this payload size"{% endif %}>
   <td>{{ r.pair }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.sent_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_sink", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_total", fmt.ns) }}</td>
   <td class="num">{{ stat(r, "derived.sink_cpu_percent", fmt.percent) }}</td>
   <td class="num">{{ stat(r, "derived.loss_ratio", fmt.pct) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
{% else %}
{{ no_trials }}
{% endif %}

{% if ndr %}
<h3>Zero-loss rates</h3>
<p class="note">{% for n in ndr %}<span class="opt"><b>{{ n.pair }}</b> {{ fmt.size(n.payload) }}: {{ fmt.pps(n.ndr) }}{% if n.generator_limited %} (generator-limited){% endif %}{% if not n.confirmed %} (unconfirmed){% endif %}</span>{% if not loop.last %} · {% endif %}{% endfor %}
— details under <a href="#ndr">Zero-loss throughput</a>.</p>
{% endif %}

{% if problems %}
<h3>Records that did not pass</h3>
<table>
 <thead><tr><th>kind</th><th>record</th><th>status</th><th>reason</th></tr></thead>
 <tbody>
 {% for p in problems %}
  <tr><td>{{ p.kind }}</td><td>{{ p.name }}</td><td>{{ badge(p.status) }}</td><td class="reason">{{ p.reason }}</td></tr>
 {% endfor %}
 </tbody>
</table>
{% endif %}
"""


# What each path does per packet: the usual reason one beats another.
TRAITS = {
    "recv": "one recv(2) syscall and copy per datagram",
    "recvmmsg": "one recvmmsg(2) syscall per batch of datagrams (copy still per datagram)",
    "tpacket_v1": "mmap ring: no syscall per packet, one frame slot per packet",
    "tpacket_v2": "mmap ring: no syscall per packet, one frame slot per packet",
    "tpacket_v3": "mmap ring of variable-size blocks: no syscall per packet, one poll per block",
    "af_xdp": "XDP redirect into a user ring: skips the stack",
    "xdp_drop": "dropped by XDP in the driver: the lab's ceiling, nothing delivered",
    "io_uring_recv": "multishot receive: completions instead of a syscall per datagram",
    "splice": "splice to a pipe: data moved by page reference",
}


def why(best, second):
    """One line: what the best path does and by how much it won."""
    rx = str(best.get("params.rx") or "")
    parts = [TRAITS.get(rx, "")] if TRAITS.get(rx) else []
    if second is not None:
        b_cpu, s_cpu = best.get("derived.cpu_ns_per_pkt_total.med"), \
            second.get("derived.cpu_ns_per_pkt_total.med")
        if not fmt.missing(b_cpu) and not fmt.missing(s_cpu) and s_cpu:
            parts.append(f"{100 * (b_cpu / s_cpu - 1):+.0f} % CPU per packet vs "
                         f"{second.get('pair')}")
    loss = best.get("derived.loss_ratio.med")
    if not fmt.missing(loss) and loss > 0:
        parts.append(f"still loses {fmt.pct(loss)} flat out")
    return "; ".join(parts)


def best_per_size(agg):
    """Per payload size: (best row, runner-up row or None), among the configs
    at that size's top offered rate. Returns {payload_bytes: (best, second)}."""
    out = {}
    agg = agg[agg["derived.received_pps.n"] > 0]
    for size, g in agg.groupby("params.payload_bytes", sort=True):
        top = g[g["rate_order"] == g["rate_order"].max()] if g["rate_order"].notna().any() else g
        top = top.sort_values("derived.received_pps.med", ascending=False, kind="stable")
        best = top.iloc[0]
        second = top.iloc[1] if len(top) > 1 else None
        out[size] = (best, second)
    return out


def top_rate_rows(agg):
    """Every configuration at the top offered rate of its (pair, payload size)."""
    if agg.empty:
        return agg
    keep = []
    for _, g in agg.groupby(["pair", "params.payload_bytes"], sort=False, dropna=False):
        ro = g["rate_order"]
        keep.append(g[ro == ro.max()] if ro.notna().any() else g)
    return pd.concat(keep).sort_values(["params.payload_bytes", "derived.received_pps.med"],
                                       ascending=[True, False], kind="stable")


def _counts(run):
    t, c = run.trials, run.conformance
    measured = run.measured
    reps = measured.groupby("config").size() if not measured.empty else pd.Series(dtype=int)
    rep_text = "–"
    if len(reps):
        rep_text = str(reps.iloc[0]) if reps.min() == reps.max() else f"{reps.min()}–{reps.max()}"
    order = ["pass", "fail", "skip", "error"]
    return {
        "trials": len(t), "checks": len(c), "configs": len(reps), "reps": rep_text,
        "trial_status": [(s, int((t["status"] == s).sum())) for s in order
                         if (t["status"] == s).any()],
        "check_status": [(s, int((c["status"] == s).sum())) for s in order
                         if (c["status"] == s).any()],
    }


def render(run):
    agg = by_config(run.trials, METRICS)
    emulated = agg["params.emulated"].map(lambda v: v is True) if "params.emulated" in agg \
        else agg.index.map(lambda _: False)
    host = agg[~emulated] if len(agg) else agg
    # A ceiling (xdp_drop: nothing delivered) or a peer program is never "best".
    if len(host):
        host = host[host["params.rx"].map(lambda rx: vocab.sink_role(run.doc, rx) == "")]
    best_map = best_per_size(host) if not host.empty else {}
    best = []
    for size, (b, second) in best_map.items():
        gain = None
        if second is not None and second["derived.received_pps.med"]:
            gain = 100 * (b["derived.received_pps.med"] / second["derived.received_pps.med"] - 1)
        best.append({"row": b, "second": second, "gain": gain or 0.0, "why": why(b, second)})
    best_configs = {b["row"]["config"] for b in best}
    top = []
    for _, r in top_rate_rows(agg).iterrows():
        r = r.copy()
        r["is_best"] = r["config"] in best_configs
        role = vocab.sink_role(run.doc, r["params.rx"])
        if role:
            r["pair"] = f"{r['pair']} ({role}, not ranked)"
        top.append(r)
    problems = []
    for df, kind in ((run.trials, "trial"), (run.conformance, "conformance"),
                     (run.ndr, "NDR search"), (run.ndr_steps, "NDR step")):
        if df.empty:
            continue
        for _, r in df[df["status"] != "pass"].iterrows():
            problems.append({"kind": kind, "name": r.get("name"), "status": r.get("status"),
                             "reason": r.get("reason") if not fmt.missing(r.get("reason")) else ""})
    csv = csv_link([dict(b["row"], why=b["why"]) for b in best],
                   [("payload_bytes", "params.payload_bytes"), ("best", "pair"),
                    ("offered", "rate_label"), ("received_pps_median", "derived.received_pps.med"),
                    ("received_pps_min", "derived.received_pps.min"),
                    ("received_pps_max", "derived.received_pps.max"),
                    ("cpu_ns_per_pkt_total_median", "derived.cpu_ns_per_pkt_total.med"),
                    ("loss_ratio_median", "derived.loss_ratio.med"), ("why", "why")],
                   "best.csv")
    html = fragment(TEMPLATE, counts=_counts(run), best=best, top=top, problems=problems,
                    csv=csv, emulated=int(emulated.sum()) if len(agg) else 0,
                    ndr=ndr_rows(run) if not run.ndr.empty else [],
                    no_trials=empty("No trial measured anything in this run."))
    return TITLE, html
