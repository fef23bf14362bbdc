"""Zero-loss throughput (NDR) and partial-drop rate (PDR) per sink and size,
with the lab's ceiling beside it and every search step on demand."""
import pandas as pd

from .. import fmt, spark
from ..html import csv_link, empty, fragment

TITLE = "Zero-loss throughput (NDR/PDR)"
CEILING_RX = "xdp_drop"

TEMPLATE = """
<p class="note">The highest offered rate at which a sink lost no more than the threshold
(NDR: nothing; PDR: the stated ratio), found by {{ methods }} between 0 and what the generator
reaches flat out, with {{ durations }} per step (RFC 2544 uses 60 s trials; shorter steps here keep
the search bounded) and a final confirmation trial at the result. At every step the generator's
<em>achieved</em> rate is checked: a step where it sent less than {{ achieved }} of the offered rate
is marked <span class="tag warn">generator short</span> and lowers the search's ceiling, so a sink
is never credited as lossless beyond what the generator reached
(<span class="tag warn">generator-limited</span>: the true NDR may be higher).
Lab ceiling: median received rate of <code>{{ ceiling_rx }}</code> trials at that size in this
run (XDP drops at the driver: the most the veth lab delivers).
{{ csv }}</p>
<table>
 <thead><tr><th>generator → sink</th><th>payload (frame)</th><th>threshold</th>
  <th class="num">NDR/PDR</th><th class="num">Mbit/s payload</th><th class="num">lab ceiling</th>
  <th class="num">of ceiling</th><th class="num">generator max</th><th>confirmed</th>
  <th class="num">steps</th><th>status</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{{ r.pair }}{% if r.emulated %} <span class="tag warn" title="emulated kernel: functional only, not ranked against host figures">functional only</span>{% endif %}</td>
   <td>{{ fmt.size(r.payload) }} ({{ fmt.size(r.frame) }})</td><td>{{ r.threshold }}</td>
   <td class="num em">{{ fmt.pps(r.ndr) }}{% if r.generator_limited %}<br><span class="tag warn">generator-limited</span>{% endif %}</td>
   <td class="num">{{ fmt.mbits(r.mbps) }}</td>
   <td class="num">{% if r.ceiling is none %}<span class="na">not measured</span>{% else %}{{ fmt.pps(r.ceiling) }}{% endif %}</td>
   <td class="num">{{ fmt.pct(r.of_ceiling) }}</td>
   <td class="num">{{ fmt.pps(r.gen_max) }}</td>
   <td>{% if r.confirmed %}<span class="tag ok">yes</span>{% else %}<span class="tag warn">no</span>{% endif %}</td>
   <td class="num">{{ r.steps }}</td><td>{{ badge(r.status, r.reason) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
{% for r in rows %}
<details class="ndr-steps"><summary>steps of {{ r.pair }} · {{ fmt.size(r.payload) }} · {{ r.threshold }}
 ({{ r.steps }} trials, {{ "%.0f"|format(r.elapsed or 0) }} s)</summary>
 {{ r.chart }}
 <table class="compact">
  <thead><tr><th>step</th><th>role</th><th class="num">offered</th><th class="num">sent</th>
   <th class="num">achieved</th><th class="num">received</th><th class="num">loss</th><th>outcome</th></tr></thead>
  <tbody>
  {% for s in r.log %}
   <tr><td>{{ s.step }}</td><td>{{ s.role }}</td><td class="num">{{ fmt.pps(s.offered_pps) if s.offered_pps is not none else "max" }}</td>
    <td class="num">{{ fmt.pps(s.sent_pps) }}</td><td class="num">{{ fmt.pct(s.achieved) }}</td>
    <td class="num">{{ fmt.pps(s.received_pps) }}</td><td class="num">{{ fmt.pct(s.loss_ratio) }}</td>
    <td>{% if s.outcome == "pass" %}<span class="tag ok">pass</span>{% else %}<span class="tag warn">{{ s.outcome }}</span>{% endif %}</td></tr>
  {% endfor %}
  </tbody>
 </table>
 <p class="note">Reproduce: <code>{{ r.command }}</code></p>
</details>
{% endfor %}
"""


def _num(v):
    return None if fmt.missing(v) else float(v)


def ceilings(run):
    """{payload_bytes: median received pps} of xdp_drop trials (all measured trials)."""
    t = run.measured
    t = t[t["params.rx"] == CEILING_RX]
    out = {}
    for size, g in t.groupby("params.payload_bytes"):
        v = pd.to_numeric(g["derived.received_pps"], errors="coerce").dropna()
        if len(v):
            out[int(size)] = float(v.median())
    return out


def threshold_text(loss):
    loss = _num(loss) or 0.0
    return "NDR (0 loss)" if loss == 0 else f"PDR ≤ {fmt.pct(loss)}"


def _steps_chart(log):
    xs = list(range(len(log)))
    if len(xs) < 2:
        return ""
    offered = [s.get("offered_pps") if s.get("offered_pps") is not None else s.get("sent_pps")
               for s in log]
    return spark.line_chart(xs, [("offered", offered),
                                 ("received", [s.get("received_pps") for s in log])],
                            "offered and received rate per search step", fmt.pps,
                            width=360, x_label="steps")


def rows(run):
    ceil = ceilings(run)
    out = []
    for _, r in run.ndr.iterrows():
        rec = r["record"]
        params, derived = rec.get("params") or {}, rec.get("derived") or {}
        log = []
        for s in (rec.get("raw") or {}).get("steps") or []:
            s = dict(s)
            off, sent = s.get("offered_pps"), s.get("sent_pps")
            s["achieved"] = sent / off if off and sent is not None else None
            log.append(s)
        size = params.get("payload_bytes")
        ndr = _num(derived.get("ndr_pps"))
        c = ceil.get(int(size)) if isinstance(size, (int, float)) else None
        out.append({
            "pair": f"{params.get('tx', '?')} → {params.get('rx', '?')}"
                    + "".join(f" {k}={v}" for k, v in sorted((params.get("rx_opts") or {}).items())),
            "payload": size, "frame": params.get("frame_bytes"),
            "threshold": threshold_text(params.get("loss_threshold")),
            "ndr": ndr, "mbps": _num(derived.get("ndr_mbps")), "ceiling": c,
            "of_ceiling": ndr / c if ndr is not None and c else None,
            "gen_max": _num(derived.get("generator_max_pps")),
            "generator_limited": bool(derived.get("generator_limited")),
            "confirmed": bool(derived.get("confirmed")), "steps": derived.get("steps", len(log)),
            "elapsed": _num(derived.get("elapsed_s")), "status": rec.get("status"),
            "reason": rec.get("reason") or "", "emulated": bool(params.get("emulated")),
            "method": params.get("method") or "binary search",
            "duration": _num(params.get("duration_s")), "log": log,
            "achieved_min": _num(params.get("generator_achieved_min")),
            "chart": _steps_chart(log), "command": rec.get("command", ""),
        })
    return sorted(out, key=lambda r: (r["emulated"], r["payload"] or 0, r["pair"]))


def render(run):
    if run.ndr.empty:
        return TITLE, empty("No NDR/PDR search in this run (./run.py --ndr, or a suite's "
                            "\"ndr\" entry: the quick suite has one).")
    rs = rows(run)
    csv = csv_link(rs, [("generator_sink", "pair"), ("payload_bytes", "payload"),
                        ("frame_bytes", "frame"), ("threshold", "threshold"),
                        ("ndr_pps", "ndr"), ("lab_ceiling_pps", "ceiling"),
                        ("generator_max_pps", "gen_max"),
                        ("generator_limited", "generator_limited"),
                        ("confirmed", "confirmed"), ("steps", "steps"), ("status", "status")],
                   "ndr.csv")
    durations = sorted({f"{r['duration']:g} s" for r in rs if r["duration"]})
    return TITLE, fragment(TEMPLATE, rows=rs, ceiling_rx=CEILING_RX, csv=csv,
                           methods=" / ".join(sorted({r["method"] for r in rs})),
                           durations=" / ".join(durations) or "?",
                           achieved=" / ".join(sorted({fmt.pct(r["achieved_min"]) for r in rs
                                                       if r["achieved_min"] is not None}))
                           or "the set share")
