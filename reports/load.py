"""run.json -> pandas DataFrames.

Every reader of run.json goes through here, so sections never touch the raw
document's shape and a missing optional field is a NaN column, not a KeyError.
"""
import json
import math
from dataclasses import dataclass, field

import pandas as pd

from . import vocab
from .fmt import payload_label, pct, pps

# Columns sections may rely on even when no record carries them (a run with
# only skipped trials, an old writer, an empty run).
TRIAL_COLUMNS = [
    "suite", "name", "command", "status", "reason",
    "params.tx", "params.rx", "params.payload_bytes", "params.frame_bytes", "params.size_mix",
    "params.rate_mode", "params.offered_pps", "params.repetition", "params.lab_mode",
    "params.kernel", "params.claim", "params.generator", "params.emulated",
    "params.ndr_search_id", "params.ndr_step", "params.ndr_role", "derived.ndr_outcome",
    "raw.window_ns", "raw.sent_in_window", "raw.received_in_window",
    "derived.offered_pps", "derived.sent_pps", "derived.received_pps",
    "derived.lost_packets", "derived.loss_ratio",
    "derived.cpu_ns_per_pkt_sink", "derived.cpu_ns_per_pkt_total",
    "derived.cpu_ns_per_pkt_sink_thread", "derived.sink_cpu_percent",
    "derived.latency_p50_ns", "derived.latency_p99_ns", "derived.received_mbps",
    "derived.reconciliation_ok", "derived.achieved_ratio", "derived.generator_short",
    "derived.received_l1_mbps", "derived.received_l2_mbps",
    "raw.drop_counters.sent", "raw.drop_counters.received_unique",
]
CONFORMANCE_COLUMNS = ["suite", "name", "status", "reason", "params.transport", "params.check",
                       "params.conformance_item", "raw.duration_ms", "params.kernel",
                       "params.emulated"]
NDR_COLUMNS = ["suite", "name", "command", "status", "reason", "params.rx", "params.tx",
               "params.payload_bytes", "params.frame_bytes", "params.loss_threshold",
               "params.resolution", "params.method", "params.duration_s", "params.lab_mode",
               "params.kernel", "params.ndr_search_id", "derived.ndr_pps", "derived.ndr_mbps",
               "derived.steps", "derived.confirmed", "derived.generator_limited",
               "derived.generator_max_pps", "derived.resolution_pps", "derived.elapsed_s"]

# Trials that measured something; skip and error records carry no numbers.
MEASURED = ("pass", "fail")


@dataclass
class Run:
    """A loaded run: the document plus its records as tables."""
    doc: dict
    path: str = ""
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    conformance: pd.DataFrame = field(default_factory=pd.DataFrame)
    # NDR searches: their summary records, and the trials each one ran (kept out of
    # `trials`, whose tables hold repetitions of fixed configurations).
    ndr: pd.DataFrame = field(default_factory=pd.DataFrame)
    ndr_steps: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def context(self):
        return self.doc.get("context") or {}

    @property
    def status(self):
        return self.doc.get("status", "")

    @property
    def measured(self):
        """Trials with numbers in them (pass or fail)."""
        return self.trials[self.trials["status"].isin(MEASURED)]


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    run = from_doc(doc)
    run.path = path
    return run


def from_doc(doc):
    records = [r for r in doc.get("records") or [] if isinstance(r, dict)]
    trials = [r for r in records if r.get("kind") == "trial"
              and "ndr_search_id" not in (r.get("params") or {})]
    steps = [r for r in records if r.get("kind") == "trial"
             and "ndr_search_id" in (r.get("params") or {})]
    steps += [step_as_trial(r) for r in records if r.get("kind") == "ndr_step"]
    checks = [r for r in records if r.get("kind") == "conformance"]
    searches = [r for r in records if r.get("kind") == "ndr"]
    drop_columns = [f"derived.drops.{k}" for k, _ in vocab.drop_layers(doc)] + \
        [f"derived.drops.{k}" for k in vocab.drop_remainders(doc)]
    return Run(doc=doc, trials=_trials_frame(trials, drop_columns),
               conformance=_frame(checks, CONFORMANCE_COLUMNS),
               ndr=_frame(searches, NDR_COLUMNS), ndr_steps=_trials_frame(steps, drop_columns))


def step_as_trial(step):
    """An ndr_step record (run.py's search step around the harness's trial record, which
    it carries untouched under "trial") seen as one trial row: the trial's fields with
    the step's search id, step, role and outcome beside them. A view; nothing is stored."""
    trial = step.get("trial") if isinstance(step.get("trial"), dict) else {}
    view = dict(trial, kind="trial", suite=step.get("suite", trial.get("suite")))
    view["params"] = dict(trial.get("params") or {}, **(step.get("params") or {}))
    view["derived"] = dict(trial.get("derived") or {}, **(step.get("derived") or {}))
    return view


def _frame(records, columns):
    if records:
        df = pd.json_normalize(records, sep=".")
    else:
        df = pd.DataFrame()
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series([None] * len(df), dtype=object)
    # The record itself stays available for lists json_normalize leaves alone
    # (raw.cpu_delta, lab.ports).
    df["record"] = pd.Series(records, dtype=object)
    return df.reset_index(drop=True)


def _trials_frame(records, drop_columns=()):
    df = _frame(records, TRIAL_COLUMNS + list(drop_columns))
    params = [r.get("params") or {} for r in records]
    # Repetitions of one configuration share every param but the repetition;
    # canonical JSON makes nested option dicts comparable.
    df["config"] = pd.Series([_config_key(p) for p in params], dtype=object)
    df["sink"] = pd.Series(_labels(params, "rx", "rx_opts"), dtype=object)
    df["source"] = pd.Series(_labels(params, "tx", "tx_opts"), dtype=object)
    df["pair"] = pd.Series([f"{s} → {k}" + _emulated_suffix(p)
                            for s, k, p in zip(df["source"], df["sink"], params)], dtype=object)
    df["rate_order"] = pd.Series([_rate_order(p) for p in params], dtype=float)
    df["rate_label"] = pd.Series([rate_label(p) for p in params], dtype=object)
    df["size_label"] = pd.Series([payload_label(p.get("payload_bytes"), p.get("size_mix"))
                                  for p in params], dtype=object)
    _mark_generator_short(df)
    return df


def _mark_generator_short(df):
    """A configuration whose generator fell short in any repetition did not offer
    its rate: its rate label says so, so every table and chart naming the rate
    (and every "kept %" beside it) carries the mark. Per configuration, so the
    repetitions still group together."""
    df["generator_short"] = False
    if df.empty:
        return
    short = df["derived.generator_short"].map(lambda v: v is True or v == True)  # noqa: E712
    ratio = pd.to_numeric(df["derived.achieved_ratio"], errors="coerce")
    for _, idx in df.groupby("config", sort=False).groups.items():
        if not short[idx].any():
            continue
        worst = ratio[idx].min()
        df.loc[idx, "generator_short"] = True
        df.loc[idx, "rate_label"] = (df.loc[idx, "rate_label"].astype(str) + " ⚠ generator short"
                                     + (f" (sent {pct(worst, 2)})" if not math.isnan(worst) else ""))


def _emulated_suffix(params):
    """Trials from an emulated kernel (qemu) are labelled wherever they appear, so they
    are never read as, or ranked against, host figures."""
    if params.get("emulated") is True:
        return f" · {params.get('kernel') or 'emulated kernel'} (functional only)"
    return ""


def _config_key(params):
    return json.dumps({k: v for k, v in params.items() if k != "repetition"},
                      sort_keys=True, default=str)


def _labels(params, name_key, opts_key):
    """Transport name plus the options that tell its configurations apart.

    Only options whose value differs between this run's trials of the same
    transport are shown: "recvmmsg accounting=count", not every default.
    """
    seen = {}
    for p in params:
        for k, v in (p.get(opts_key) or {}).items():
            seen.setdefault((p.get(name_key), k), set()).add(str(v))
    out = []
    for p in params:
        name = str(p.get(name_key) or "?")
        opts = p.get(opts_key) or {}
        varying = [f"{k}={v}" for k, v in sorted(opts.items())
                   if len(seen.get((p.get(name_key), k), ())) > 1]
        out.append(" ".join([name] + varying))
    return out


def _rate_order(params):
    """Sort key for offered rates: fixed rates by value, 'max' after all of them."""
    if params.get("rate_mode") == "max":
        return math.inf
    v = params.get("offered_pps")
    return float(v) if isinstance(v, (int, float)) else math.nan


def rate_label(params):
    if params.get("rate_mode") == "max":
        return "max"
    v = params.get("offered_pps")
    if not isinstance(v, (int, float)):
        return "?"
    return pps(v)
