"""Two runs compared per configuration: Mann–Whitney U on the repetitions plus an
effect-size threshold, a verdict per configuration, an HTML page and JUnit XML.

Standard library only: run.py (which may run under a python3 without pandas)
imports this module for `./run.py compare`, `--baseline` and `ci`.

The test: two-sided Mann–Whitney U. Its p-value is exact (the permutation
distribution of U over every split of the pooled repetitions, midranks for
ties) while C(n1+n2, n1) <= EXACT_LIMIT, else the normal approximation with tie
and continuity correction. A metric changed significantly when p < ALPHA *and*
its median moved by more than the effect threshold in either direction; with 3
repetitions a side the smallest possible exact p is 0.1, so at least 4 a side
are needed before anything can be called improved or regressed.
"""
import datetime
import html
import itertools
import json
import math
import os
import re
import statistics
from xml.sax.saxutils import quoteattr, escape as xml_escape

ALPHA = 0.05
EFFECT = 0.05          # relative change of the median that counts (5 %)
LOSS_EFFECT = 0.001    # loss ratios sit near 0: an absolute 0.1 percentage point
EXACT_LIMIT = 100_000
MIN_REPS = 2

# metric -> (direction, label): +1 higher is better, -1 lower is better. The metrics a
# verdict is made of. CPU is the sink thread's own time per packet (its task-clock over
# the window, harness/derive.cc), not the lab CPUs' busy time: on a shared machine the
# lab CPUs' /proc/stat busy time is mostly other processes' (an A/A experiment measured
# its noise at 31-56 %, and under full load it only measures the load: 2 CPUs x 100 % /
# packets), while a thread's own CPU time is what the code under test spends.
METRICS = {
    "received_pps": (+1, "received pps"),
    "cpu_ns_per_pkt_sink_thread": (-1, "sink-thread CPU ns/pkt"),
    "loss_ratio": (-1, "loss ratio"),
}
# Compared and calibrated like the others, never part of a verdict: the calibration
# states their A/A noise and planted detection beside the gated metrics' so the reason
# they are not gated stays measured.
NOISE_ONLY_METRICS = {
    "cpu_ns_per_pkt_total": (-1, "CPU ns/pkt (lab CPUs)"),
}
ALL_METRICS = {**METRICS, **NOISE_ONLY_METRICS}
# Params that say *where* a trial ran rather than *what* it measured: a config is
# matched without them, and a difference in them makes the pair not comparable.
ENVIRONMENT_PARAMS = ("kernel", "lab_mode", "emulated")
IGNORED_PARAMS = ("repetition", "ndr_search_id", "ndr_step", "ndr_role", "gen_cpu", "sink_cpu")
VERDICTS = ("regressed", "improved", "unchanged", "not comparable")


# --------------------------------------------------------------------------- loading

def resolve(path):
    """A results folder, results/latest or a run.json -> the run.json path."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "run.json")
    return path


def load(path):
    with open(resolve(path), encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise ValueError(f"{path} is not a zcbench run.json (no records list)")
    return doc


def config_key(params):
    kept = {k: v for k, v in params.items()
            if k not in IGNORED_PARAMS and k not in ENVIRONMENT_PARAMS}
    return json.dumps(kept, sort_keys=True, default=str)


def config_label(params):
    opts = lambda o: "".join(f" {k}={v}" for k, v in sorted((o or {}).items())
                             if k not in ("rcvbuf",))
    rate = "max" if params.get("rate_mode") == "max" else params.get("offered_pps", "?")
    return (f"{params.get('tx', '?')}{opts(params.get('tx_opts'))} → "
            f"{params.get('rx', '?')}{opts(params.get('rx_opts'))} · "
            f"{params.get('payload_bytes', '?')} B · {rate} pps")


def measured_trials(records):
    """The trial records a verdict should see: a trial the harness found contaminated
    (derived.contamination.contaminated) that run.py retried is replaced by its first
    clean retrial's trial (kind "retrial", zcrun/retrial.py), or its last attempt when
    none came out clean."""
    retrials = {}
    for r in records:
        if isinstance(r, dict) and r.get("kind") == "retrial" and \
                isinstance(r.get("trial"), dict):
            key = (r.get("suite"), (r.get("params") or {}).get("retrial_of"))
            retrials.setdefault(key, []).append(r)
    out = []
    for r in records:
        if not isinstance(r, dict) or r.get("kind") != "trial":
            continue
        attempts = retrials.get((r.get("suite"), r.get("name")))
        if attempts and ((r.get("derived") or {}).get("contamination") or {}).get("contaminated"):
            clean = [a for a in attempts if not (a.get("derived") or {}).get("contaminated")]
            r = dict((clean or attempts[-1:])[0]["trial"], suite=r.get("suite"))
        out.append(r)
    return out


def trials_by_config(doc):
    """{key: {"params": first params, "env": {...}, "values": {metric: [..]}}} of measured
    trials; NDR steps are searches, not repetitions, and are left out."""
    out = {}
    for r in measured_trials(doc.get("records") or []):
        if not isinstance(r, dict) or r.get("kind") != "trial":
            continue
        if r.get("status") not in ("pass", "fail"):
            continue
        params = r.get("params") or {}
        if "ndr_search_id" in params:
            continue
        key = config_key(params)
        entry = out.setdefault(key, {"params": params, "env": set(), "values": {}})
        entry["env"].add(tuple((p, str(params.get(p))) for p in ENVIRONMENT_PARAMS))
        derived = r.get("derived") or {}
        for m in ALL_METRICS:
            v = derived.get(m)
            if isinstance(v, (int, float)) and math.isfinite(v):
                entry["values"].setdefault(m, []).append(float(v))
    return out


# --------------------------------------------------------------------------- statistics

def _ranks(values):
    """Midranks (1-based) of values; ties share the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mann_whitney(a, b):
    """(U of a, two-sided p, method) for samples a and b."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return math.nan, 1.0, "none"
    pooled = list(a) + list(b)
    ranks = _ranks(pooled)
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    mean_u = n1 * n2 / 2
    if math.comb(n1 + n2, n1) <= EXACT_LIMIT:
        # Every way to pick which n1 of the pooled values are "a", equally likely under H0.
        total = n1 * (n1 + 1) / 2
        dev = abs(u1 - mean_u) - 1e-9
        extreme = count = 0
        for pick in itertools.combinations(ranks, n1):
            count += 1
            if abs(sum(pick) - total - mean_u) >= dev:
                extreme += 1
        return u1, extreme / count, "exact"
    n = n1 + n2
    ties = {}
    for r in ranks:
        ties[r] = ties.get(r, 0) + 1
    tie_term = sum(t ** 3 - t for t in ties.values()) / (n * (n - 1))
    var = n1 * n2 / 12 * ((n + 1) - tie_term)
    if var <= 0:
        return u1, 1.0, "normal"
    z = (abs(u1 - mean_u) - 0.5) / math.sqrt(var)
    return u1, min(1.0, math.erfc(max(z, 0) / math.sqrt(2))), "normal"


def min_exact_p(n1, n2):
    """The smallest two-sided p the exact test can give at these sizes."""
    return min(1.0, 2 / math.comb(n1 + n2, n1)) if n1 and n2 else 1.0


def _spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def effect_threshold(metric, margins=None):
    """The change that counts for a metric: the fixed effect, widened to the noise an
    A/A calibration measured on this machine (margins: {metric: margin}, relative, or
    absolute points for the loss ratio) when one is given."""
    fixed = LOSS_EFFECT if metric == "loss_ratio" else EFFECT
    margin = (margins or {}).get(metric)
    return max(fixed, margin) if isinstance(margin, (int, float)) and math.isfinite(margin) \
        else fixed


def compare_metric(metric, base, cur, margins=None):
    direction, label = ALL_METRICS[metric]
    b, c = _spread(base), _spread(cur)
    _, p, method = mann_whitney(base, cur)
    delta = c["median"] - b["median"]
    threshold = effect_threshold(metric, margins)
    if metric == "loss_ratio":
        big = abs(delta) > threshold
        rel = None
    else:
        rel = delta / b["median"] if b["median"] else (math.inf if delta else 0.0)
        big = abs(rel) > threshold
    if len(base) < MIN_REPS or len(cur) < MIN_REPS or min_exact_p(len(base), len(cur)) >= ALPHA:
        verdict = "not comparable"
        why = (f"too few repetitions (n={len(base)} vs {len(cur)}): the smallest p the test "
               f"can give is {min_exact_p(len(base), len(cur)):.3g} ≥ {ALPHA}")
    elif p < ALPHA and big:
        verdict = "improved" if delta * direction > 0 else "regressed"
        why = f"p={p:.3g} < {ALPHA} and the median moved {_change_text(metric, delta, rel)}"
    else:
        verdict = "unchanged"
        why = (f"p={p:.3g}" + ("" if p < ALPHA else f" ≥ {ALPHA}") +
               ("" if big else f"; change {_change_text(metric, delta, rel)} within threshold"
                + (f" ({_threshold_text(metric, threshold)}, the calibrated noise)"
                   if margins and metric in margins else "")))
    return {"metric": metric, "label": label, "base": b, "current": c, "p": p,
            "method": method, "change": rel, "delta": delta, "threshold": threshold,
            "verdict": verdict, "why": why}


def _threshold_text(metric, threshold):
    return f"{100 * threshold:.3g} points" if metric == "loss_ratio" \
        else f"{100 * threshold:.3g} %"


def _change_text(metric, delta, rel):
    if metric == "loss_ratio":
        return f"{100 * delta:+.3g} points"
    return "∞" if rel is None or math.isinf(rel) else f"{100 * rel:+.1f} %"


def _worst(verdicts):
    for v in VERDICTS:
        if v in verdicts:
            return v
    return "not comparable"


def _env_difference(envs):
    values = {}
    for env in envs:
        for param, value in env:
            values.setdefault(param, set()).add(value)
    diffs = [f"{p} ({' vs '.join(sorted(v))})" for p, v in values.items() if len(v) > 1]
    return "different " + ", ".join(diffs) if diffs else "mixed environments"


# Host context that changes what the paths cost (harness/context.cc writes it):
# a difference in any of them, where both runs recorded it, makes every pair
# not comparable. Flat keys, then the nested blocks compared key by key.
HOST_KEYS = ("cpu_model", "cpu_governor", "smt", "kernel_cmdline")
HOST_BLOCKS = ("sysctls", "libraries")


def host_differences(hb, hc):
    """["cpu_governor (performance vs powersave)", ...] for what both recorded and differs."""
    out = []

    def differ(name, a, b):
        if a is not None and b is not None and a != "" and b != "" and a != b:
            out.append(f"{name} ({a} vs {b})")

    for k in HOST_KEYS:
        differ(k, hb.get(k), hc.get(k))
    for block in HOST_BLOCKS:
        bb, bc = hb.get(block) or {}, hc.get(block) or {}
        for k in sorted(set(bb) & set(bc)):
            differ(k, bb[k], bc[k])
    return out


def _host_mismatch(base_doc, cur_doc):
    hb = (base_doc.get("context") or {}).get("host") or {}
    hc = (cur_doc.get("context") or {}).get("host") or {}
    diffs = host_differences(hb, hc)
    return ("different " + ", ".join(diffs)) if diffs else ""


def compare(base_doc, cur_doc, calibration=None):
    """The comparison as a plain dict (configs, conformance, counts, exit code).

    calibration: a calibration document (./run.py calibrate, results/calibration.json)
    whose per-metric noise widens each metric's effect threshold (see effect_threshold).
    """
    margins = calibration_margins(calibration)
    base, cur = trials_by_config(base_doc), trials_by_config(cur_doc)
    host = _host_mismatch(base_doc, cur_doc)
    configs = []
    for key in sorted(set(base) | set(cur), key=lambda k: config_label(
            (cur.get(k) or base.get(k))["params"])):
        b, c = base.get(key), cur.get(key)
        params = (c or b)["params"]
        row = {"config": config_label(params), "params": params, "metrics": [],
               "noise_only": [], "why": ""}
        if b is None or c is None:
            row["verdict"] = "not comparable"
            row["why"] = "only in the current run" if b is None else "only in the baseline"
        elif host or b["env"] != c["env"] or len(b["env"]) != 1:
            row["verdict"] = "not comparable"
            row["why"] = host or _env_difference(b["env"] | c["env"])
        else:
            own = row_margins(calibration, row["config"]) if calibration else margins
            for m in ALL_METRICS:
                if b["values"].get(m) and c["values"].get(m):
                    row["metrics" if m in METRICS else "noise_only"].append(
                        compare_metric(m, b["values"][m], c["values"][m], own))
            row["verdict"] = _worst({x["verdict"] for x in row["metrics"]}) \
                if row["metrics"] else "not comparable"
            row["why"] = "; ".join(f"{x['label']}: {x['verdict']} ({x['why']})"
                                   for x in row["metrics"] if x["verdict"] == row["verdict"])
        configs.append(row)
    conformance = compare_conformance(base_doc, cur_doc)
    counts = {v: sum(1 for r in configs if r["verdict"] == v) for v in VERDICTS}
    regressions = counts["regressed"] + sum(1 for r in conformance if r["verdict"] == "regressed")
    return {"base": _describe(base_doc), "current": _describe(cur_doc), "configs": configs,
            "conformance": conformance, "counts": counts, "regressions": regressions,
            "alpha": ALPHA, "effect": EFFECT, "loss_effect": LOSS_EFFECT,
            "calibration": calibration_summary(calibration),
            "exit_code": 1 if regressions else 0}


def compare_conformance(base_doc, cur_doc):
    """A check that passed in the baseline and fails now is a regression."""
    def checks(doc):
        return {(r.get("name"), (r.get("params") or {}).get("kernel")): r.get("status")
                for r in doc.get("records") or []
                if isinstance(r, dict) and r.get("kind") == "conformance"}
    b, c = checks(base_doc), checks(cur_doc)
    out = []
    for key in sorted(set(b) & set(c), key=str):
        if b[key] == c[key]:
            continue
        verdict = ("regressed" if c[key] in ("fail", "error") and b[key] == "pass" else
                   "improved" if b[key] in ("fail", "error") and c[key] == "pass" else "changed")
        out.append({"check": key[0], "base": b[key], "current": c[key], "verdict": verdict})
    return out


def _describe(doc):
    host = (doc.get("context") or {}).get("host") or {}
    return {"run_id": doc.get("run_id", "?"), "status": doc.get("status", "?"),
            "kernel": host.get("kernel", "?"), "cpu_model": host.get("cpu_model", "?"),
            "started_at": doc.get("started_at", "")}


def summary_line(result):
    c = result["counts"]
    return (f"{len(result['configs'])} configurations: {c['regressed']} regressed, "
            f"{c['improved']} improved, {c['unchanged']} unchanged, "
            f"{c['not comparable']} not comparable; "
            f"{sum(1 for r in result['conformance'] if r['verdict'] == 'regressed')} "
            "conformance regressions")


# --------------------------------------------------------------------------- A/A calibration
#
# On a shared 2-vCPU machine two runs of the same build differ by more than the fixed
# 5 % effect often enough that a gate on it cries wolf (issue 13: 15-43 % of A/A
# comparisons flagged). ./run.py calibrate runs the same suite N times, compares every
# pair of runs here, and stores per metric the change that A/A pairs reach
# (a high quantile of |median change|) as that metric's equivalence margin; compare()
# then calls a metric changed only beyond max(fixed effect, margin). The same document
# reports the false-alarm rate before and after, and how often a planted regression of
# PLANTED_REGRESSION is still caught with the margins applied.

CALIBRATION_KIND = "zcbench calibration"
CALIBRATION_VERSION = 2
FALSE_ALARM_TARGET = 0.05
# A configuration's verdict is its worst metric's, so each metric gets its share of the
# target (Bonferroni): the margin covers all but 5 %/3 of the A/A changes.
CALIBRATION_QUANTILE = 1 - FALSE_ALARM_TARGET / len(METRICS)
PLANTED_REGRESSION = 0.10   # the regression calibrate plants: 10 % worse
# |median change| of an A/A pair taken as half-normal: its median is 0.6745 sigma, and
# the two-sided 1 - 5 %/3 point of a normal is 2.39 sigma.
HALF_NORMAL_MEDIAN = 0.6745
Z_QUANTILE = 2.394
RANK_SAMPLES = 10


def calibration_margins(calibration):
    """{metric: margin} of a calibration document, {} without one."""
    margins = (calibration or {}).get("margins") or {}
    return {m: v["margin"] for m, v in margins.items()
            if m in ALL_METRICS and isinstance(v, dict)
            and isinstance(v.get("margin"), (int, float))}


def calibration_summary(calibration):
    """What a comparison says about the calibration it used (None without one)."""
    if not calibration:
        return None
    alarms = calibration.get("false_alarms") or {}
    after = alarms.get("calibrated_cross_validated") or alarms.get("calibrated_in_sample") or {}
    planted = (calibration.get("planted_regression") or {}).get("calibrated") or {}
    per_metric = {m: {"label": ALL_METRICS[m][1], "gated": m in METRICS,
                      "false_alarm_rate": v.get("rate"),
                      "planted_detection": (planted.get(m) or {}).get("rate")}
                  for m, v in (after.get("per_metric") or {}).items() if m in ALL_METRICS}
    return {"created_at": calibration.get("created_at"), "host": calibration.get("host"),
            "runs": len(calibration.get("runs") or []),
            "margins": {m: v for m, v in calibration_margins(calibration).items()
                        if m in METRICS},
            "false_alarm_rate": after.get("rate"), "false_alarm_method": after.get("method"),
            "false_alarm_rate_fixed": (alarms.get("fixed_threshold") or {}).get("rate"),
            "planted_factor": (calibration.get("planted_regression") or {}).get("factor"),
            "per_metric": per_metric}


def load_calibration(path):
    """A calibration document from ./run.py calibrate; ValueError if it is not one."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get("kind") != CALIBRATION_KIND:
        raise ValueError(f"{path} is not a zcbench calibration (./run.py calibrate writes one)")
    return doc


def _quantile(values, q):
    """Nearest-rank quantile: the smallest value with at least q of the values <= it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def margin_estimate(changes, quantile=CALIBRATION_QUANTILE):
    """The equivalence margin of a set of A/A |median changes|: their nearest-rank
    quantile, and with fewer than RANK_SAMPLES changes the larger of it and a robust
    extrapolation (Z_QUANTILE sigma, sigma from the median |change|, MAD-style). With n
    changes the 0.983 quantile is simply the largest one, which sits near the n/(n+1)
    point of the noise: cross-validating 6 runs leaves 4, 6 pairs a configuration, and a
    margin near the 86th percentile lets held-out pairs alarm more often than the target.
    The median-based figure extrapolates to the quantile asked for, and one wild pair
    moves it little."""
    q = _quantile(changes, quantile)
    if len(changes) >= RANK_SAMPLES:
        return q
    return max(q, Z_QUANTILE * statistics.median(changes) / HALF_NORMAL_MEDIAN)


def _pairs(docs):
    return list(itertools.combinations(range(len(docs)), 2))


def _change(metric, base, cur):
    """|median change| of a metric between two sides: relative, or points for loss."""
    b, c = statistics.median(base), statistics.median(cur)
    if metric == "loss_ratio":
        return abs(c - b)
    return abs(c - b) / abs(b) if b else (0.0 if c == b else math.inf)


def _aa_changes(docs):
    """{(config label, metric): [|median change| of every pair of docs]}."""
    samples = {}
    configs = [trials_by_config(d) for d in docs]
    for i, j in _pairs(docs):
        for key in set(configs[i]) & set(configs[j]):
            label = config_label(configs[j][key]["params"])
            for m in ALL_METRICS:
                b, c = configs[i][key]["values"].get(m), configs[j][key]["values"].get(m)
                if b and c:
                    change = _change(m, b, c)
                    if math.isfinite(change):
                        samples.setdefault((label, m), []).append(change)
    return samples


def noise_margins(docs, quantile=CALIBRATION_QUANTILE):
    """{metric: {margin, quantile, samples, median}} over every pair of docs and shared
    config."""
    pooled = {}
    for (_, m), v in _aa_changes(docs).items():
        pooled.setdefault(m, []).extend(v)
    return {m: {"margin": margin_estimate(v, quantile), "quantile": _quantile(v, quantile),
                "samples": len(v), "median": statistics.median(v)}
            for m, v in pooled.items() if v}


def noise_margins_by_config(docs, quantile=CALIBRATION_QUANTILE):
    """{config label: {metric: margin}}: the same estimate, per configuration. A flat-out
    trial's rate wanders by tens of percent where a paced trial's moves by hundredths, so
    one margin per metric pooled over both hides a 10 % regression of the paced one."""
    out = {}
    for (label, m), v in _aa_changes(docs).items():
        out.setdefault(label, {})[m] = margin_estimate(v, quantile)
    return out


def row_margins(calibration, label):
    """The margins one configuration is judged with: its own A/A noise where the
    calibration measured this configuration, else the metric's pooled margin."""
    pooled = calibration_margins(calibration)
    own = ((calibration or {}).get("margins_by_config") or {}).get(label) or {}
    return {m: own.get(m, pooled.get(m)) for m in set(pooled) | set(own)
            if isinstance(own.get(m, pooled.get(m)), (int, float))}


def false_alarms(docs, calibration_for=None, method="fixed threshold"):
    """Every pair of A/A runs compared: the share of comparable configurations called
    regressed or improved (the gated metrics' verdict), and per metric, gated or not, the
    share of its comparisons that moved. calibration_for(i, j) gives a pair's calibration."""
    comparable = alarmed = 0
    per_metric = {}
    for i, j in _pairs(docs):
        result = compare(docs[i], docs[j], calibration_for(i, j) if calibration_for else None)
        for row in result["configs"]:
            if row["verdict"] == "not comparable":
                continue
            comparable += 1
            alarmed += row["verdict"] in ("regressed", "improved")
            for m in row["metrics"] + row.get("noise_only", []):
                if m["verdict"] == "not comparable":
                    continue
                counts = per_metric.setdefault(m["metric"], [0, 0])
                counts[0] += m["verdict"] in ("regressed", "improved")
                counts[1] += 1
    return {"method": method, "pairs": len(_pairs(docs)), "comparisons": comparable,
            "false_alarms": alarmed, "rate": alarmed / comparable if comparable else None,
            "per_metric": {m: {"false_alarms": a, "comparisons": n, "rate": a / n}
                           for m, (a, n) in per_metric.items()}}


def plant_regression(doc, metric, factor=PLANTED_REGRESSION):
    """A copy of a run whose metric is `factor` worse in every trial, retried ones
    included: a verdict sees a contaminated trial's clean retrial in its place
    (measured_trials), so a regression planted in the trial records alone would leave
    every retried repetition at its old value."""
    direction, _ = ALL_METRICS[metric]
    scale = 1 - factor if direction > 0 else 1 + factor
    planted = json.loads(json.dumps(doc))
    for r in planted.get("records") or []:
        if not isinstance(r, dict):
            continue
        trial = r if r.get("kind") == "trial" else \
            r.get("trial") if r.get("kind") == "retrial" else None
        d = trial.get("derived") if isinstance(trial, dict) else None
        if isinstance(d, dict) and isinstance(d.get(metric), (int, float)):
            d[metric] = d[metric] * scale
    return planted


def planted_detection(docs, calibration, factor=PLANTED_REGRESSION, calibration_for=None):
    """Per metric (loss ratio aside: 10 % of ~0 is no regression), the share of A/A pairs'
    comparable configurations whose metric comes out regressed once the second run is
    made `factor` worse. calibration_for(i, j), when given, replaces calibration (the
    cross-validated figure: margins measured without the pair)."""
    out = {}
    for metric in ALL_METRICS:
        if metric == "loss_ratio":
            continue
        detected = total = 0
        by_config = {}
        for i, j in _pairs(docs):
            cal = calibration_for(i, j) if calibration_for else calibration
            result = compare(docs[i], plant_regression(docs[j], metric, factor), cal)
            for row in result["configs"]:
                for m in row["metrics"] + row.get("noise_only", []):
                    if m["metric"] == metric and m["verdict"] != "not comparable":
                        total += 1
                        detected += m["verdict"] == "regressed"
                        counts = by_config.setdefault(row["config"], [0, 0])
                        counts[0] += m["verdict"] == "regressed"
                        counts[1] += 1
        out[metric] = {"detected": detected, "comparisons": total,
                       "rate": detected / total if total else None,
                       "by_config": {c: {"detected": d, "comparisons": n, "rate": d / n}
                                     for c, (d, n) in sorted(by_config.items())}}
    return out


def calibrate(docs, quantile=CALIBRATION_QUANTILE, created_at=None):
    """The calibration document of N >= 2 A/A runs of one suite (see the section head).

    The in-sample false-alarm rate is low by construction; with N >= 4 runs every pair is
    also judged with margins measured on the other runs only (cross-validated), the
    figure to quote, and the planted regression is caught (or not) under the same
    held-out margins.
    """
    if len(docs) < 2:
        raise ValueError("an A/A calibration needs at least 2 runs")
    margins = noise_margins(docs, quantile)
    calibration = {"kind": CALIBRATION_KIND, "version": CALIBRATION_VERSION,
                   "created_at": created_at or datetime.datetime.now(
                       datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "host": (docs[0].get("context") or {}).get("host") or {},
                   "runs": [d.get("run_id", "?") for d in docs], "quantile": quantile,
                   "gated_metrics": list(METRICS), "noise_only_metrics": list(NOISE_ONLY_METRICS),
                   "margins": margins,
                   "margins_by_config": noise_margins_by_config(docs, quantile)}
    cross = held_out = None
    if len(docs) >= 4:
        def held_out(i, j):
            rest = [d for k, d in enumerate(docs) if k not in (i, j)]
            return {"margins": noise_margins(rest, quantile),
                    "margins_by_config": noise_margins_by_config(rest, quantile)}
        cross = false_alarms(docs, held_out, "margins from the other runs (cross-validated)")
    calibration["false_alarms"] = {
        "target": FALSE_ALARM_TARGET,
        "fixed_threshold": false_alarms(docs),
        "calibrated_in_sample": false_alarms(docs, lambda i, j: calibration,
                                             "margins from all runs (in-sample)"),
        "calibrated_cross_validated": cross}
    calibration["planted_regression"] = {
        "factor": PLANTED_REGRESSION,
        "fixed_threshold": planted_detection(docs, None),
        "calibrated": planted_detection(docs, calibration),
        "calibrated_cross_validated": planted_detection(docs, None, calibration_for=held_out)
        if held_out else None}
    return calibration


def calibration_lines(calibration):
    """The calibration's findings as a few sentences for the terminal."""
    fa = calibration["false_alarms"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f} %"
    lines = [f"{len(calibration['runs'])} A/A runs, {fa['fixed_threshold']['pairs']} pairs, "
             f"{fa['fixed_threshold']['comparisons']} configuration comparisons"]
    lines.append(f"false alarms with the fixed {100 * EFFECT:.0f} % effect: "
                 f"{pct(fa['fixed_threshold']['rate'])}")
    lines.append(f"false alarms with the calibrated margins: "
                 f"{pct(fa['calibrated_in_sample']['rate'])} in-sample"
                 + (f", {pct(fa['calibrated_cross_validated']['rate'])} cross-validated"
                    if fa["calibrated_cross_validated"] else
                    " (cross-validation needs >= 4 runs)")
                 + f" (target <= {pct(fa['target'])})")
    for m, v in calibration["margins"].items():
        if m not in ALL_METRICS:
            continue
        lines.append(f"margin {ALL_METRICS[m][1]}: {_threshold_text(m, v['margin'])} "
                     f"({v['samples']} A/A changes, median {_threshold_text(m, v['median'])})"
                     + ("" if m in METRICS else "; not gated"))
    planted = calibration["planted_regression"]
    cross_p = planted.get("calibrated_cross_validated") or {}
    cross_fa = (fa.get("calibrated_cross_validated") or {}).get("per_metric") or {}
    for m, v in planted["calibrated"].items():
        fixed = planted["fixed_threshold"][m]
        held = (f", {pct(cross_p[m]['rate'])} cross-validated" if m in cross_p else "")
        alarms = (f"; its own A/A false alarms {pct(cross_fa[m]['rate'])} cross-validated"
                  if m in cross_fa else "")
        lines.append(f"planted {100 * PLANTED_REGRESSION:.0f} % regression of "
                     f"{ALL_METRICS[m][1]} caught: {pct(v['rate'])} with the margins{held}, "
                     f"{pct(fixed['rate'])} with the fixed effect{alarms}"
                     + ("" if m in METRICS else " (not gated)"))
    # Per configuration: which trial shapes a regression shows through, and why not.
    own = calibration.get("margins_by_config") or {}
    for m in METRICS:
        for label, v in ((cross_p.get(m) or planted["calibrated"].get(m) or {})
                         .get("by_config") or {}).items():
            margin = (own.get(label) or {}).get(m)
            lines.append(f"  {label}: {ALL_METRICS[m][1]} margin "
                         + ("n/a" if margin is None else _threshold_text(m, margin))
                         + f", planted caught {pct(v['rate'])}"
                         + (" cross-validated" if cross_p.get(m) else ""))
    return lines


# --------------------------------------------------------------------------- HTML

def _fmt(metric, v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if metric == "loss_ratio":
        return f"{100 * v:.3g} %"
    if metric == "received_pps":
        return f"{v / 1e3:,.1f} Kpps" if v < 1e6 else f"{v / 1e6:,.3f} Mpps"
    return f"{v:,.0f} ns"


def _cell(metric, s):
    return (f'{_fmt(metric, s["median"])}<span class="spread">{_fmt(metric, s["min"])} – '
            f'{_fmt(metric, s["max"])} · n={s["n"]}</span>')


PAGE_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 18px;color:#222}
table{border-collapse:collapse;margin:10px 0;width:100%}th,td{border-bottom:1px solid #ddd;
padding:4px 8px;text-align:left;vertical-align:top}td.num{text-align:right}
.spread{display:block;font-size:11px;color:#777}.v{font-weight:600;padding:1px 6px;border-radius:3px}
.regressed{background:#fdd;color:#900}.improved{background:#dfd;color:#060}
.unchanged{background:#eee;color:#444}.not-comparable{background:#ffe9c6;color:#7a4b00}
.note{color:#555}.cards{display:flex;gap:12px}.card{border:1px solid #ddd;padding:8px 14px}
.big{font-size:24px;font-weight:700}@media print{.card{break-inside:avoid}}
"""


def _conformance_table(rows_html):
    if not rows_html:
        return '<p class="note">No conformance check changed status.</p>'
    return ('<table id="conformance"><thead><tr><th>check</th><th>baseline</th>'
            f'<th>current</th><th>verdict</th></tr></thead><tbody>{rows_html}</tbody></table>')


def _calibration_note(summary):
    """The compare page's sentence on the calibration in use: the false-alarm rate an A/A
    experiment measured on the machine it ran on."""
    if not summary:
        return ('<p class="note" id="calibration">No calibration: the fixed thresholds above '
                'apply; ./run.py calibrate measures this machine\'s A/A false-alarm rate.</p>')
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f} %"
    host = summary.get("host") or {}
    margins = ", ".join(f"{METRICS[m][1]} {_threshold_text(m, v)}"
                        for m, v in summary["margins"].items() if m in METRICS)
    return (f'<p class="note" id="calibration">Equivalence margins from an A/A calibration of '
            f'{summary["runs"]} runs on {html.escape(str(host.get("hostname", "?")))} '
            f'({html.escape(str(host.get("cpu_model", "?")))}, '
            f'{html.escape(str(summary.get("created_at")))}): {html.escape(margins)}. '
            f'Its A/A false-alarm rate: {pct(summary.get("false_alarm_rate"))} with the margins '
            f'({html.escape(str(summary.get("false_alarm_method")))}), '
            f'{pct(summary.get("false_alarm_rate_fixed"))} with the fixed thresholds.</p>')


def render_html(result):
    esc = html.escape
    b, c = result["base"], result["current"]
    rows = []
    for r in result["configs"]:
        cls = r["verdict"].replace(" ", "-")
        if not r["metrics"]:
            rows.append(f'<tr><td>{esc(r["config"])}</td><td colspan="5" class="note">'
                        f'{esc(r["why"])}</td><td><span class="v {cls}">{esc(r["verdict"])}'
                        '</span></td></tr>')
            continue
        for i, m in enumerate(r["metrics"]):
            mcls = m["verdict"].replace(" ", "-")
            head = (f'<td rowspan="{len(r["metrics"])}">{esc(r["config"])}<br>'
                    f'<span class="v {cls}">{esc(r["verdict"])}</span></td>') if i == 0 else ""
            change = _change_text(m["metric"], m["delta"], m["change"])
            rows.append(
                f'<tr>{head}<td>{esc(m["label"])}</td><td class="num">'
                f'{_cell(m["metric"], m["base"])}</td><td class="num">'
                f'{_cell(m["metric"], m["current"])}</td><td class="num">{esc(change)}</td>'
                f'<td class="num">{m["p"]:.3g} ({m["method"]})</td><td>'
                f'<span class="v {mcls}" title="{esc(m["why"])}">{esc(m["verdict"])}</span>'
                '</td></tr>')
    conf = "".join(
        f'<tr><td><code>{esc(str(r["check"]))}</code></td><td>{esc(str(r["base"]))}</td>'
        f'<td>{esc(str(r["current"]))}</td><td><span class="v {r["verdict"]}">'
        f'{esc(r["verdict"])}</span></td></tr>' for r in result["conformance"])
    counts = result["counts"]
    cards = "".join(f'<div class="card"><div class="big">{n}</div>{esc(v)}</div>'
                    for v, n in counts.items())
    verdict = ("REGRESSION: exit 1" if result["exit_code"] else "no regression: exit 0")
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>zcbench compare {esc(b['run_id'])} → {esc(c['run_id'])}</title>
<style>{PAGE_CSS}</style></head><body>
<h1>zcbench comparison</h1>
<p>baseline <b>{esc(b['run_id'])}</b> ({esc(b['kernel'])}, {esc(b['cpu_model'])}) →
current <b>{esc(c['run_id'])}</b> ({esc(c['kernel'])}, {esc(c['cpu_model'])})</p>
<p id="verdict" class="v {'regressed' if result['exit_code'] else 'unchanged'}">{esc(verdict)}:
{esc(summary_line(result))}</p>
<div class="cards">{cards}</div>
<p class="note">Per configuration (same parameters, repetitions pooled), two-sided Mann–Whitney U
on the repetitions: exact permutation p-value while C(n1+n2, n1) ≤ {EXACT_LIMIT:,}, else the normal
approximation with tie correction. A metric is improved or regressed when p &lt; {ALPHA} and its
median moved more than {100 * EFFECT:.0f} % (loss: {100 * LOSS_EFFECT:.1f} percentage points).
Received pps: higher is better; CPU ns/pkt and loss: lower is better. A configuration's verdict is
its worst metric's. Different kernel, lab mode, CPU model, governor, SMT, kernel command line,
path sysctls or library versions: not comparable.</p>
{_calibration_note(result.get("calibration"))}
<h2>Configurations</h2>
<table id="configs"><thead><tr><th>configuration</th><th>metric</th><th class="num">baseline</th>
<th class="num">current</th><th class="num">change</th><th class="num">p</th><th>verdict</th></tr>
</thead><tbody>{''.join(rows) or '<tr><td colspan="7">no measured trials in either run</td></tr>'}
</tbody></table>
<h2>Conformance changes</h2>
{_conformance_table(conf)}
<p class="note">Generated {generated} by ./run.py compare.</p>
</body></html>
"""


# --------------------------------------------------------------------------- JUnit

# Characters XML 1.0 forbids even escaped: C0 controls but tab, newline and
# carriage return; lone surrogates (a Python str can hold them after
# surrogateescape decoding of a tool's bytes); U+FFFE and U+FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value):
    """A string that is legal XML 1.0 character data once escaped: forbidden
    characters (tool output may carry any byte) are dropped."""
    return _XML_FORBIDDEN.sub("", str(value))


# Record status -> JUnit outcome: `fail` is a check that failed (<failure>),
# `error` a test the harness could not run to a verdict (<error>), `skip`
# unsupported here (<skipped>).
_JUNIT_OUTCOME = {"pass": "ok", "skip": "skipped", "fail": "failure", "error": "error"}


def junit_xml(doc, result=None):
    """JUnit XML for CI systems: conformance checks, trial records, baseline verdicts."""
    suites = []

    def suite(name, cases):
        counts = {o: sum(1 for c in cases if c[1] == o) for o in ("failure", "error", "skipped")}
        body = []
        for case_name, outcome, message, seconds in cases:
            message = xml_text(message)
            inner = ""
            if outcome in ("failure", "error"):
                inner = f"<{outcome} message={quoteattr(message)}>{xml_escape(message)}</{outcome}>"
            elif outcome == "skipped":
                inner = f"<skipped message={quoteattr(message)}/>"
            body.append(f'  <testcase classname={quoteattr(xml_text(name))} '
                        f'name={quoteattr(xml_text(case_name))} time="{seconds:.3f}">{inner}</testcase>')
        suites.append(f'<testsuite name={quoteattr(xml_text(name))} tests="{len(cases)}" '
                      f'failures="{counts["failure"]}" skipped="{counts["skipped"]}" '
                      f'errors="{counts["error"]}">\n' + "\n".join(body) + "\n</testsuite>")

    def outcome(status):
        # An unknown status is not a verdict: the harness erred.
        return _JUNIT_OUTCOME.get(status, "error")

    records = [r for r in doc.get("records") or [] if isinstance(r, dict)]
    suite("conformance", [(r.get("name", "?"), outcome(r.get("status")), r.get("reason", ""),
                           ((r.get("raw") or {}).get("duration_ms") or 0) / 1000)
                          for r in records if r.get("kind") == "conformance"])
    trials = [(r.get("name", "?"), outcome(r.get("status")), r.get("reason", ""),
               ((r.get("raw") or {}).get("window_ns") or 0) / 1e9)
              for r in records if r.get("kind") in ("trial", "ndr")]
    # A run that did not complete is an error of the run itself, whatever its
    # records say (the suite may have stopped before its checks ran).
    if doc.get("status") not in (None, "complete"):
        trials.append(("run", "error", f'run status {doc.get("status")}: '
                       f'{doc.get("reason") or "the run did not complete"}', 0.0))
    suite("trials", trials)
    if result is not None:
        cases = []
        for r in result["configs"]:
            o = {"regressed": "failure", "not comparable": "skipped"}.get(r["verdict"], "ok")
            cases.append((r["config"], o, f'{r["verdict"]}: {r["why"]}', 0.0))
        for r in result["conformance"]:
            cases.append((f"conformance {r['check']}",
                          "failure" if r["verdict"] == "regressed" else "ok",
                          f"{r['base']} -> {r['current']}", 0.0))
        suite("baseline", cases)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n' + "\n".join(suites)
            + "\n</testsuites>\n")


def write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
