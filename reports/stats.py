"""Medians over repetitions: the only statistic a report table shows.

A configuration is every param but the repetition (load.py's "config"
column). Each metric comes back as four columns, METRIC.med / .min / .max /
.n, so a table cell can always show the median with its spread and how many
repetitions it rests on.
"""
import numpy as np
import pandas as pd

# Per metric: median, min, max, n, quartiles and coefficient of variation.
STATS = ("med", "min", "max", "n", "q1", "q3", "cv")
# A configuration whose repetitions vary more than this (CV) is flagged as noisy.
CV_THRESHOLD = 0.10

from .load import MEASURED

# Columns that describe a configuration and are equal across its repetitions.
KEY_COLUMNS = ["config", "pair", "sink", "source", "params.tx", "params.rx",
               "params.payload_bytes", "params.frame_bytes", "params.size_mix", "size_label",
               "params.rate_mode",
               "params.offered_pps", "rate_order", "rate_label", "params.lab_mode",
               "params.claim", "suite", "params.kernel", "params.emulated", "generator_short"]


def by_config(trials, metrics, measured_only=True):
    """One row per configuration: key columns, then med/min/max/n per metric.

    Sorted by sink, payload size and offered rate so tables read in a stable
    order. Skip/error trials have no numbers and are left out by default.
    """
    cols = [c for c in KEY_COLUMNS if c in trials.columns]
    if measured_only:
        trials = trials[trials["status"].isin(MEASURED)]
    out_cols = cols + [f"{m}.{s}" for m in metrics for s in STATS]
    if trials.empty:
        return pd.DataFrame(columns=out_cols)
    groups = trials.groupby("config", sort=False, dropna=False)
    rows = []
    for _, g in groups:
        row = {c: g[c].iloc[0] for c in cols}
        for m in metrics:
            v = pd.to_numeric(g[m], errors="coerce").dropna() if m in g else pd.Series(dtype=float)
            row[f"{m}.med"] = float(v.median()) if len(v) else np.nan
            row[f"{m}.min"] = float(v.min()) if len(v) else np.nan
            row[f"{m}.max"] = float(v.max()) if len(v) else np.nan
            row[f"{m}.n"] = int(len(v))
            row[f"{m}.q1"] = float(v.quantile(0.25)) if len(v) else np.nan
            row[f"{m}.q3"] = float(v.quantile(0.75)) if len(v) else np.nan
            row[f"{m}.cv"] = cv(v)
        rows.append(row)
    df = pd.DataFrame(rows, columns=out_cols)
    return sort_configs(df)


def cv(values):
    """Coefficient of variation (sample std / mean); NaN under 2 values or a 0 mean."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if len(v) < 2 or not v.mean():
        return np.nan
    return float(v.std(ddof=1) / abs(v.mean()))


def sort_configs(df):
    keys = [c for c in ("pair", "params.payload_bytes", "rate_order") if c in df.columns]
    return df.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def ratio_column(trials, num, den, name):
    """Per-trial ratio num/den as a new column (NaN where den is 0 or missing).

    Ratios are taken per trial, then their median: the median of a ratio, not
    the ratio of medians.
    """
    n = pd.to_numeric(trials[num], errors="coerce") if num in trials else np.nan
    d = pd.to_numeric(trials[den], errors="coerce") if den in trials else np.nan
    out = trials.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = n / d
    out[name] = r.where(np.isfinite(r)) if isinstance(r, pd.Series) else np.nan
    return out
