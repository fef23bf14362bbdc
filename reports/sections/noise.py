"""Repetitions and noise: spread and coefficient of variation per configuration
(noisy ones flagged), and each trial's time series with a steadiness figure."""
import numpy as np
import pandas as pd

from .. import fmt, spark
from ..html import csv_link, empty, fragment
from ..stats import CV_THRESHOLD, by_config

TITLE = "Repetitions and noise"
METRICS = ["derived.received_pps", "derived.cpu_ns_per_pkt_sink_thread",
           "derived.cpu_ns_per_pkt_total", "derived.loss_ratio", "steadiness_cv"]
# The CPU figure whose spread is flagged: the sink thread's own CPU per packet, the one
# ./run.py compare gates on (reports/compare.py METRICS); the lab CPUs' busy time per
# packet is shown beside it, on a shared machine mostly other processes' time.
CPU_KEY = "derived.cpu_ns_per_pkt_sink_thread"

TEMPLATE = """
<p class="note">Every figure in this report is the median over a configuration's repetitions
(interleaved A B A B… so drift hits every transport alike), shown with min–max and, from 4
repetitions on, the interquartile range. The coefficient of variation (CV = standard deviation /
mean over the repetitions) is flagged <span class="noisy">CV</span> above {{ threshold }}: such a
median is not to be trusted alone. <em>Steadiness</em> is the CV of a trial's received rate over
its 100 ms intervals (warm-up included when recorded): a stall or a slow start shows as a high value.
{{ csv }}</p>
{% if cal %}
<p class="note" id="aa-calibration">A/A calibration in use (./run.py calibrate, {{ cal.runs }} runs
on {{ (cal.host or {}).hostname or "?" }}, {{ cal.created_at }}): false alarms
{{ fmt.pct(cal.false_alarm_rate, 3) }} with its margins ({{ cal.false_alarm_method }}),
{{ fmt.pct(cal.false_alarm_rate_fixed, 3) }} with the fixed thresholds. Per metric, and whether a
planted {{ fmt.pct(cal.planted_factor, 0) }} regression is still caught:</p>
<table class="compact" id="aa-metrics">
 <thead><tr><th>metric</th><th>in the verdict</th><th class="num">A/A false alarms</th>
  <th class="num">planted regression caught</th></tr></thead>
 <tbody>
 {% for m in cal.per_metric.values() %}
  <tr><td>{{ m.label }}</td><td>{{ "gated" if m.gated else "shown only" }}</td>
   <td class="num">{{ fmt.pct(m.false_alarm_rate, 3) }}</td>
   <td class="num">{{ fmt.pct(m.planted_detection, 3) }}</td></tr>
 {% endfor %}
 </tbody>
</table>
{% else %}
<p class="note" id="aa-calibration">No A/A calibration for this run: the false-alarm rate of a
comparison on this machine is not measured (./run.py calibrate, then --calibration).</p>
{% endif %}
<div class="cards">
 <div class="card"><div class="big">{{ rows|length }}</div>configurations</div>
 <div class="card{% if noisy %} alert{% endif %}"><div class="big">{{ noisy }}</div>noisy (CV &gt; {{ threshold }})</div>
 <div class="card"><div class="big">{{ reps }}</div>repetitions each</div>
</div>
<div class="scroll">
<table class="compact">
 <thead><tr><th>generator → sink</th><th>payload</th><th>offered</th>
  <th class="num">received (median)</th><th class="num">CV received</th>
  <th class="num">CV sink-thread CPU ns/pkt</th><th class="num">CV lab-CPU ns/pkt</th><th class="num">steadiness (median CV per interval)</th>
  <th>flag</th></tr></thead>
 <tbody>
 {% for r in rows %}
  <tr><td>{{ r.pair }}</td><td>{{ fmt.row_size(r) }}</td><td>{{ r.rate_label }}</td>
   <td class="num">{{ stat(r, "derived.received_pps", fmt.pps) }}</td>
   <td class="num">{{ fmt.pct(r["derived.received_pps.cv"], 2) }}</td>
   <td class="num">{{ fmt.pct(r.get("derived.cpu_ns_per_pkt_sink_thread.cv"), 2) }}</td>
   <td class="num">{{ fmt.pct(r.get("derived.cpu_ns_per_pkt_total.cv"), 2) }}</td>
   <td class="num">{{ fmt.pct(r["steadiness_cv.med"], 2) }}</td>
   <td>{% if r.noisy %}<span class="noisy">noisy: {{ r.noisy }}</span>{% else %}<span class="tag ok">steady</span>{% endif %}</td></tr>
 {% endfor %}
 </tbody>
</table>
</div>
<h3>Time series per trial</h3>
<p class="note">Per 100 ms interval: sent and received rate, packets not (yet) received, and busy
time per CPU. Open a trial to see it.</p>
{% for t in series %}
<details class="timeseries"><summary>{{ t.label }} · steadiness {{ fmt.pct(t.steadiness, 2) }}</summary>
 <div class="cards">{{ t.rate }}{{ t.loss }}{{ t.cpu }}</div>
</details>
{% endfor %}
"""


def intervals(record):
    """Per-interval rates from the cumulative samples: (t_s, sent_pps, recv_pps, lost, cpu%)."""
    iv = [i for i in ((record.get("raw") or {}).get("intervals") or []) if isinstance(i, dict)]
    iv = sorted(iv, key=lambda i: i.get("t_ns", 0))
    out = {"t": [], "sent": [], "received": [], "lost": [], "cpu": []}
    prev = {"t_ns": 0, "sent": 0, "received": 0, "cpu_busy_ns": None}
    for cur in iv:
        dt = (cur.get("t_ns", 0) - prev["t_ns"]) / 1e9
        if dt <= 0:
            continue
        ds = (cur.get("sent") or 0) - (prev.get("sent") or 0)
        dr = (cur.get("received") or 0) - (prev.get("received") or 0)
        out["t"].append(cur["t_ns"] / 1e9)
        out["sent"].append(ds / dt)
        out["received"].append(dr / dt)
        out["lost"].append(ds - dr)
        busy, pbusy = cur.get("cpu_busy_ns") or [], prev.get("cpu_busy_ns")
        if pbusy is not None and len(pbusy) == len(busy):
            out["cpu"].append([100 * (b - a) / (dt * 1e9) for a, b in zip(pbusy, busy)])
        else:
            out["cpu"].append([100 * b / (dt * 1e9) for b in busy] if prev["t_ns"] == 0
                              else [])
        prev = cur
    return out


def steadiness(record):
    """CV of the per-interval received rate; NaN with fewer than 3 intervals."""
    r = intervals(record)["received"]
    if len(r) < 3 or not np.mean(r):
        return np.nan
    return float(np.std(r, ddof=1) / np.mean(r))


def _charts(record):
    s = intervals(record)
    if len(s["t"]) < 2:
        return None
    ncpu = max((len(c) for c in s["cpu"]), default=0)
    cpu_series = [(f"cpu{i}", [c[i] if i < len(c) else None for c in s["cpu"]])
                  for i in range(ncpu)]
    return {
        "rate": spark.line_chart(s["t"], [("sent", s["sent"]), ("received", s["received"])],
                                 "sent and received rate per interval", fmt.pps),
        "loss": spark.line_chart(s["t"], [("sent − received", s["lost"])],
                                 "packets sent but not received per interval", fmt.count),
        "cpu": spark.line_chart(s["t"], cpu_series, "busy % per CPU per interval",
                                lambda v: f"{v:.0f} %") if cpu_series else "",
    }


def render(run):
    m = run.measured
    if m.empty:
        return TITLE, empty("No measured trials: no repetitions to compare.")
    m = m.copy()
    m["steadiness_cv"] = [steadiness(rec) for rec in m["record"]]
    agg = by_config(m, [k for k in METRICS if k in m.columns])
    rows = []
    for _, r in agg.iterrows():
        r = r.copy()
        flags = [name for key, name in (("derived.received_pps.cv", "received"),
                                        (f"{CPU_KEY}.cv", "CPU"))
                 if key in r and not fmt.missing(r[key]) and r[key] > CV_THRESHOLD]
        r["noisy"] = ", ".join(flags)
        rows.append(r)
    series = []
    for _, t in m.sort_values(["pair", "params.payload_bytes", "rate_order",
                               "params.repetition"]).iterrows():
        charts = _charts(t["record"])
        if charts:
            label = (f"{t['pair']} · {fmt.row_size(t)} · {t['rate_label']} "
                     f"· rep {fmt.plain(t['params.repetition'])}")
            series.append(dict(charts, label=label, steadiness=t["steadiness_cv"]))
    n = agg["derived.received_pps.n"] if not agg.empty else pd.Series(dtype=int)
    reps = "–" if n.empty else (str(int(n.min())) if n.min() == n.max()
                                else f"{int(n.min())}–{int(n.max())}")
    csv = csv_link(rows, [("generator_sink", "pair"), ("payload_bytes", "params.payload_bytes"),
                          ("offered", "rate_label"),
                          ("received_pps_median", "derived.received_pps.med"),
                          ("received_pps_min", "derived.received_pps.min"),
                          ("received_pps_max", "derived.received_pps.max"),
                          ("n", "derived.received_pps.n"),
                          ("cv_received", "derived.received_pps.cv"),
                          ("cv_cpu_ns_per_pkt_sink_thread", f"{CPU_KEY}.cv"),
                          ("cv_cpu_ns_per_pkt_lab_cpus", "derived.cpu_ns_per_pkt_total.cv"),
                          ("steadiness_median", "steadiness_cv.med"), ("noisy", "noisy")],
                   "noise.csv")
    cal = (run.context.get("options") or {}).get("calibration")
    if cal and not isinstance(cal.get("per_metric"), dict):
        cal = dict(cal, per_metric={})   # a calibration from before per-metric rates
    return TITLE, fragment(TEMPLATE, rows=rows, series=series, csv=csv, reps=reps, cal=cal,
                           noisy=sum(1 for r in rows if r["noisy"]),
                           threshold=fmt.pct(CV_THRESHOLD))
