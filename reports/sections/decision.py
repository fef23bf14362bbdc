"""The decision view: per payload size and target rate, the cheapest transport
that kept (almost) everything, what it costs per packet, and how many cores of
this machine it would take at that rate.

Only fixed-rate trials answer "at rate R": a flat-out trial has no target.
A trial whose generator fell short never offered R, so it cannot qualify.
Ceilings (they deliver nothing) and peers (another project's program) are
shown beside the answer, never as it; the roles are the harness's
(context.vocabularies.sink_roles).
"""
import math

import pandas as pd

from .. import fmt, vocab
from ..html import csv_link, empty, fragment
from ..stats import by_config

TITLE = "Decision view"
# The share of sent packets a sink must keep, in every repetition, to qualify.
KEPT_MIN = 0.999
METRICS = ["derived.received_pps", "derived.cpu_ns_per_pkt_total", "derived.cpu_ns_per_pkt_sink",
           "kept", "derived.received_mbps", "derived.received_l2_mbps", "derived.received_l1_mbps",
           "derived.achieved_ratio"]

TEMPLATE = """
<p class="note">For each payload size and offered rate: the transport with the lowest CPU time per
packet (all lab CPUs, median over repetitions) among those that kept ≥ {{ fmt.pct(kept_min) }} of what
was sent in <em>every</em> repetition, at a rate the generator really offered. Cores needed = rate ×
CPU ns/pkt (this machine: {{ cpus }} CPUs). Wire rates: payload goodput, L2 (Ethernet frame with FCS),
L1 (plus preamble and inter-frame gap). Flat-out trials have no target rate and are not here.
{{ csv }}</p>
{% if rows %}
<table>
 <thead><tr><th>payload (frame)</th><th>target rate</th><th>cheapest that kept it</th>
  <th class="num">CPU ns/pkt</th><th class="num">cores needed</th>
  <th class="num">payload Mbit/s</th><th class="num">L2 Mbit/s</th><th class="num">L1 Mbit/s</th>
  <th>others that kept it</th><th>for reference (not a choice)</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{% if r.label.startswith("IMIX") %}{{ r.label }}{% else %}{{ fmt.size(r.payload) }} ({{ fmt.size(r.frame) }}){% endif %}</td><td>{{ fmt.pps(r.rate) }}</td>
   {% if r.best is not none %}
   <td class="em">{{ r.best.pair }}</td>
   <td class="num">{{ stat(r.best, "derived.cpu_ns_per_pkt_total", fmt.ns) }}</td>
   <td class="num">{{ "%.2f"|format(r.cores) if r.cores is not none else "–" }}</td>
   <td class="num">{{ fmt.mbits(r.best["derived.received_mbps.med"]) }}</td>
   <td class="num">{{ fmt.mbits(r.best["derived.received_l2_mbps.med"]) }}</td>
   <td class="num">{{ fmt.mbits(r.best["derived.received_l1_mbps.med"]) }}</td>
   {% else %}
   <td colspan="6"><span class="tag warn">none kept {{ fmt.pct(kept_min) }}</span>{% if r.closest %}
     closest: {{ r.closest.pair }} kept {{ fmt.pct(r.closest["kept.min"]) }}{% endif %}</td>
   {% endif %}
   <td>{{ r.others|join(", ") or "–" }}</td>
   <td>{{ r.reference|join("; ") or "–" }}{% if r.short %}<br><span class="tag warn">generator short</span>
     {{ r.short|join(", ") }}: rate not offered, not judged{% endif %}</td></tr>
 {% endfor %}
 </tbody>
</table>
{% else %}
{{ none }}
{% endif %}
"""


def _kept(trials):
    """Per trial: the share of the whole trial's sent packets the sink kept."""
    t = trials.copy()
    loss = pd.to_numeric(t["derived.loss_ratio"], errors="coerce")
    t["kept"] = 1 - loss
    return t


def _mask(df, pred):
    """Boolean row mask from a predicate on the config (an empty frame stays a frame)."""
    return df["config"].map(pred).astype(bool) if len(df) else pd.Series([], dtype=bool, index=df.index)


def _is_true(v):
    return v is True or v == True  # noqa: E712 (numpy bools too)


def decide(run):
    """[{payload, frame, rate, best, cores, others, reference, short, closest}] per
    (payload size, fixed offered rate), sorted by size then rate."""
    t = run.trials
    t = t[(t["params.rate_mode"] == "fixed") & t["status"].isin(("pass", "fail"))]
    t = t[~t["params.emulated"].map(_is_true)]
    if t.empty:
        return []
    agg = by_config(_kept(t), METRICS)
    short_configs = set(t[t["generator_short"].map(_is_true)]["config"])
    cpus = (run.context.get("host") or {}).get("cpu_count")
    out = []
    # A frame-size mix is a size of its own, never pooled with its largest payload.
    for (size, label, rate), g in agg.groupby(["params.payload_bytes", "size_label", "params.offered_pps"],
                                              sort=True):
        roles = {r["config"]: vocab.sink_role(run.doc, r["params.rx"]) for _, r in g.iterrows()}
        short = [r["pair"] for _, r in g.iterrows() if r["config"] in short_configs]
        judged = g[~g["config"].isin(short_configs)]
        kept = judged[judged["kept.min"] >= KEPT_MIN]
        choices = kept[_mask(kept, lambda c: roles[c] == "")]
        choices = choices.sort_values("derived.cpu_ns_per_pkt_total.med", kind="stable",
                                      na_position="last")
        best = choices.iloc[0] if len(choices) else None
        ns = best["derived.cpu_ns_per_pkt_total.med"] if best is not None else math.nan
        cores = float(rate) * ns / 1e9 if best is not None and not fmt.missing(ns) else None
        reference = [f"{roles[r['config']]} {r['pair']}: kept {fmt.pct(r['kept.min'])}, "
                     f"{fmt.ns(r['derived.cpu_ns_per_pkt_total.med'])}/pkt"
                     for _, r in judged.iterrows() if roles[r["config"]]]
        closest = None
        if best is None:
            cand = judged[_mask(judged, lambda c: roles[c] == "")]
            if len(cand):
                closest = cand.sort_values("kept.min", ascending=False).iloc[0]
        out.append({"payload": int(size), "frame": int(g["params.frame_bytes"].iloc[0]), "label": label,
                    "rate": float(rate), "best": best, "cores": cores, "cpus": cpus,
                    "others": [r["pair"] for _, r in choices.iloc[1:].iterrows()],
                    "reference": reference, "short": short, "closest": closest})
    return out


def render(run):
    rows = decide(run)
    cpus = (run.context.get("host") or {}).get("cpu_count") or "?"
    csv = csv_link([{"payload_bytes": r["payload"], "size": r["label"], "target_pps": r["rate"],
                     "transport": r["best"]["pair"] if r["best"] is not None else "",
                     "cpu_ns_per_pkt": r["best"]["derived.cpu_ns_per_pkt_total.med"]
                     if r["best"] is not None else None,
                     "cores_needed": r["cores"],
                     "payload_mbps": r["best"]["derived.received_mbps.med"] if r["best"] is not None else None,
                     "l2_mbps": r["best"]["derived.received_l2_mbps.med"] if r["best"] is not None else None,
                     "l1_mbps": r["best"]["derived.received_l1_mbps.med"] if r["best"] is not None else None}
                    for r in rows],
                   [(k, k) for k in ("payload_bytes", "size", "target_pps", "transport", "cpu_ns_per_pkt",
                                     "cores_needed", "payload_mbps", "l2_mbps", "l1_mbps")],
                   "decision.csv")
    return TITLE, fragment(TEMPLATE, rows=rows, kept_min=KEPT_MIN, cpus=cpus, csv=csv,
                           none=empty("No fixed-rate trial measured anything: there is no target "
                                      "rate to decide at (run a suite with fixed rates)."))
