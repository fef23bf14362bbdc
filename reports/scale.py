"""Scaling with workers (the `scale` suite): received pps and CPU ns/packet
against the number of workers on the side that scales, per path, with the
scaling efficiency pps(N) / (N × pps(1)).

A path is a trial's `label` (the suite names them: "rx recvmmsg reuseport",
"tx af_xdp per queue"); the workers counted are the sink's for "rx …" paths and
the generator's for "tx …" paths (params.sink_threads / params.gen_threads, 1
when a record predates workers). Medians over repetitions, as everywhere in the
report. The note under the table says why the sweep stops where it does: the
CPUs online, from the run's host context.
"""
import math

import pandas as pd

from . import fmt
from .html import empty, fragment
from .stats import by_config

TITLE = "Scaling with workers"

PPS = "derived.received_pps"
CPU = "derived.cpu_ns_per_pkt_total"
METRICS = [PPS, CPU]

TEMPLATE = """
<p class="note">Each worker is one driver instance on its own thread and CPU: an SO_REUSEPORT group (recvmmsg),
a PACKET_FANOUT group (tpacket_v3), one AF_XDP socket per queue (af_xdp); generators split the flows.
Scaling efficiency = pps(N) / (N × pps(1)): 100 % is linear. Medians of the repetitions (n).</p>
<div class="scroll"><table class="compact">
 <thead><tr><th>path</th><th>side</th><th class="num">workers</th><th class="num">received</th><th class="num">n</th>
  <th class="num">CPU ns/pkt (all lab CPUs)</th><th class="num">scaling efficiency</th></tr></thead>
 <tbody>{% for r in rows %}
  <tr><td>{{ r.path }}</td><td>{{ r.side }}</td><td class="num">{{ r.workers }}</td>
   <td class="num">{{ fmt.pps(r.pps) }}</td><td class="num">{{ r.n }}</td>
   <td class="num">{{ fmt.ns(r.cpu) }}</td>
   <td class="num">{{ "–" if r.efficiency is none else fmt.pct(r.efficiency) }}</td></tr>
 {% endfor %}</tbody></table></div>
<p class="note">{{ stop_note }}</p>
"""


def _int(v, default=1):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else int(f)


def _column(df, name):
    return df[name] if name in df else pd.Series([None] * len(df), index=df.index, dtype=object)


def scale_rows(trials):
    """One dict per (path, workers): side, workers, median pps and CPU, n, efficiency.

    `trials` is the report's measured-trials frame; only the scale suite's
    records (params.series == "scale") take part.
    """
    if trials.empty or "params.series" not in trials:
        return []
    t = trials[_column(trials, "params.series") == "scale"].copy()
    if t.empty:
        return []
    t["path"] = _column(t, "params.label").fillna("").astype(str)
    t["path"] = [p or f"{s} → {k}" for p, s, k in zip(t["path"], _column(t, "source"), _column(t, "sink"))]
    t["side"] = ["generator" if p.startswith("tx ") else "sink" for p in t["path"]]
    sink_w = _column(t, "params.sink_threads")
    gen_w = _column(t, "params.gen_threads")
    t["workers"] = [_int(g) if side == "generator" else _int(s) for side, s, g in zip(t["side"], sink_w, gen_w)]
    # by_config groups by every param; the row keeps the path and workers of its group.
    agg = by_config(t.assign(config=[f"{p} · workers {w}" for p, w in zip(t["path"], t["workers"])]), METRICS)
    if agg.empty:
        return []
    keyed = t.drop_duplicates(subset=["path", "workers"]).set_index(["path", "workers"])
    rows = []
    for (path, workers), _ in keyed.iterrows():
        g = agg[(agg["config"] == f"{path} · workers {workers}")]
        if g.empty:
            continue
        r = g.iloc[0]
        rows.append({"path": path, "side": keyed.loc[(path, workers), "side"], "workers": int(workers),
                     "pps": r[f"{PPS}.med"], "cpu": r[f"{CPU}.med"], "n": int(r[f"{PPS}.n"])})
    rows.sort(key=lambda r: (r["side"] != "sink", r["path"], r["workers"]))
    base = {r["path"]: r["pps"] for r in rows if r["workers"] == 1}
    for r in rows:
        b = base.get(r["path"])
        ok = b is not None and not fmt.missing(b) and b > 0 and not fmt.missing(r["pps"])
        r["efficiency"] = r["pps"] / (r["workers"] * b) if ok else None
    return rows


def stop_note(rows, cpu_count):
    """Why the sweep ends at its largest worker count."""
    top = max((r["workers"] for r in rows), default=0)
    if not cpu_count:
        return f"Largest worker count measured: {top} (CPUs online not recorded)."
    if top >= cpu_count:
        return (f"Stops at {top} workers: this machine has {cpu_count} CPUs online, and the lab pins every "
                f"worker to its own CPU; at {top} the side that scales shares a CPU with the other side, so "
                f"the last step measures contention as much as scaling.")
    return (f"Largest worker count measured: {top} of {cpu_count} CPUs online; the suite's entries end "
            f"there (add entries of more workers to go further).")


def render(run):
    rows = scale_rows(run.measured)
    if not rows:
        return TITLE, empty("No scale-suite trials in this run (./run.py --suite scale).")
    host = (run.context or {}).get("host") or {}
    return TITLE, fragment(TEMPLATE, rows=rows, stop_note=stop_note(rows, _int(host.get("cpu_count"), 0)))
