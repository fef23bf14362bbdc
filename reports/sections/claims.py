"""Published claims re-measured: the "then" figures are fixed text from the
sources (DESIGN.md "Claims to revisit"); "now" comes from trial records the
claims suite tagged with params.claim == N."""
from collections import namedtuple

import pandas as pd

from .. import fmt
from ..html import Markup, fragment
from ..stats import by_config, ratio_column

TITLE = "Claims revisited"

Claim = namedtuple("Claim", "number topic then needs")

CLAIMS = [
    Claim(1, "TPACKET_V3 vs TPACKET_V1 capture of a 64-byte pktgen flood",
          [("1 GbE, captured", "720 Kpps (V3) vs 600 Kpps (V1)"),
           ("1 GbE, CPU", "53 % vs 70 %"),
           ("1 GbE, drops", "~1 % vs 7–10 %"),
           ("in a VM, captured", "1 Mpps vs 700–800 Kpps"),
           ("in a VM, CPU", "30 % vs 50 %")],
          ["tpacket_v3", "tpacket_v1", "pktgen"]),
    Claim(2, "recv / recvmmsg under an FPGA's 272-byte UDP stream at 5.12 Gb/s (~2.35 Mpps)",
          [("kept by recv and recvmmsg", "~40 % of the packets"),
           ("suggested way out", "packet mmap (PACKET_RX_RING)")],
          ["recv", "recvmmsg"]),
    Claim(3, "TX paths on a small embedded CPU, 7200-byte frames",
          [("PACKET TX_RING", "85 MB/s (link saturated)"),
           ("raw socket send()", "~25 MB/s"),
           ("vmsplice + splice", "15–20 MB/s (one vmsplice per packet, ~80 µs)"),
           ("TCP sendfile", "5.7 MB/s")],
          ["tx_ring", "sendto", "vmsplice", "sendfile"]),
    Claim(4, "A zero-copy sniffer versus tcpdump",
          [("CPU", "17 % (zero-copy) vs 33 % (tcpdump)")],
          ["tpacket_v3", "tcpdump (peer sink)"]),
    Claim(5, "Asynchronous receive versus synchronous recv at comparable throughput",
          [("CPU", "near zero (async) vs 6–7 % (recv)")],
          ["io_uring_recv", "recv"]),
]

# Offered rate and payload of claim 2's stream, as the FPGA board sent it.
CLAIM2_PPS = 2_350_000
CLAIM2_PAYLOAD = 272

METRICS = ["derived.offered_pps", "derived.sent_pps", "derived.received_pps",
           "derived.loss_ratio", "derived.sink_cpu_percent", "derived.cpu_ns_per_pkt_total",
           "payload_mbytes_s", "kept_of_offered", "kept_of_sent"]

TEMPLATE = """
<p class="note">"Then" is what the original sources reported on their hardware and kernels;
"now" is this run, median over repetitions (n shown). Different hardware makes absolute numbers
incomparable — the ratios between paths are the point.</p>
{% for c in claims %}
<div class="claim" id="claim-{{ c.number }}">
 <h3>Claim {{ c.number }}: {{ c.topic }}</h3>
 <div class="then-now">
  <div><h4>then</h4>
   <table class="compact"><tbody>
   {% for what, value in c.then %}<tr><th>{{ what }}</th><td>{{ value }}</td></tr>{% endfor %}
   </tbody></table></div>
  <div><h4>now</h4>
  {% if c.rows %}
   <div class="scroll"><table class="compact">
    <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th><th class="num">sent</th>
     <th class="num">received</th>
     {% if c.number == 2 %}<th class="num">kept of offered</th><th class="num">kept of sent</th>
     {% else %}<th class="num">payload MB/s</th><th class="num">loss</th>{% endif %}
     <th class="num">sink CPU</th><th class="num">ns/pkt lab CPUs</th></tr></thead>
    <tbody>
    {% for r in c.rows %}
     <tr><td>{{ r.pair }}</td><td>{{ fmt.size(r["params.payload_bytes"]) }}</td><td>{{ r.rate_label }}</td>
      <td class="num">{{ stat(r, "derived.sent_pps", fmt.pps) }}</td>
      <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
      {% if c.number == 2 %}
      <td class="num">{{ stat(r, "kept_of_offered", fmt.pct) }}</td>
      <td class="num">{{ stat(r, "kept_of_sent", fmt.pct) }}</td>
      {% else %}
      <td class="num">{{ stat(r, "payload_mbytes_s", fmt.mbytes) }}</td>
      <td class="num">{{ stat(r, "derived.loss_ratio", fmt.pct) }}</td>
      {% endif %}
      <td class="num">{{ stat(r, "derived.sink_cpu_percent", fmt.percent) }}</td>
      <td class="num">{{ stat(r, "derived.cpu_ns_per_pkt_total", fmt.ns) }}</td></tr>
    {% endfor %}
    </tbody></table></div>
   {% if c.verdict %}<p class="verdict">{{ c.verdict }}</p>{% endif %}
  {% else %}
   <p class="empty">not yet measurable: needs {{ c.needs|join(", ") }}{% if c.here %}
    <span class="small">(here: {{ c.here }})</span>{% endif %}</p>
  {% endif %}
  </div>
 </div>
</div>
{% endfor %}
"""


def _availability(run, needs):
    """Which of the needed transports this build lists, and whether they are usable."""
    listed = {t.get("name"): t for t in run.context.get("transports") or [] if isinstance(t, dict)}
    parts = []
    for n in needs:
        t = listed.get(n)
        if t is None:
            continue
        parts.append(f"{n} usable" if t.get("usable") else
                     f"{n} not usable: {t.get('reason') or 'no reason given'}")
    return "; ".join(parts)


def claim_trials(run, number):
    t = run.trials
    claim = t["params.claim"].map(lambda v: not fmt.missing(v) and int(v) == number)
    return t[claim]


def _with_ratios(trials):
    t = ratio_column(trials, "derived.received_pps", "derived.sent_pps", "kept_of_sent")
    # Claim 2 is about the FPGA's rate: offered_pps is the stream's rate even
    # when the local generator could not reach it.
    t = ratio_column(t, "derived.received_pps", "params.offered_pps", "kept_of_offered")
    t["payload_mbytes_s"] = (pd.to_numeric(t["derived.received_pps"], errors="coerce")
                             * pd.to_numeric(t["params.payload_bytes"], errors="coerce") / 1e6)
    return t


def claim2_verdict(rows):
    kept = [r["kept_of_offered.med"] for r in rows
            if r["kept_of_offered.n"] and r["params.rx"] in ("recv", "recvmmsg")]
    if not kept:
        return ""
    sent_short = [r for r in rows if r["derived.sent_pps.n"] and r["derived.offered_pps.n"]
                  and r["derived.sent_pps.med"] < 0.95 * r["derived.offered_pps.med"]]
    text = (f"recv/recvmmsg kept {fmt.pct(min(kept))} – {fmt.pct(max(kept))} "
            f"of the {fmt.pps(CLAIM2_PPS)} stream (then: ~40 %).")
    if sent_short:
        text += (" The local generator did not reach the offered rate, so the fraction of the "
                 "offered stream is a lower bound; 'kept of sent' is what the sink managed.")
    return text


def render(run):
    out = []
    for c in CLAIMS:
        trials = claim_trials(run, c.number)
        rows = []
        if not trials.empty:
            agg = by_config(_with_ratios(trials), METRICS)
            rows = [r for _, r in agg.iterrows()]
        verdict = claim2_verdict(rows) if c.number == 2 and rows else ""
        out.append({"number": c.number, "topic": c.topic, "then": c.then, "needs": c.needs,
                    "rows": rows, "verdict": verdict, "here": _availability(run, c.needs)})
    return TITLE, Markup(fragment(TEMPLATE, claims=out))
