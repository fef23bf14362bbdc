"""results.csv: one flat row per trial record, beside run.json.

Written by the report renderer (reports.render.write_report) every time a
report is made, atomically. The drop-layer columns are the harness's layers
(context.vocabularies), so the columns add up to `lost` as the record does.
"""
import csv
import os

from . import fmt, vocab

# (column, dotted path in the flattened trial table)
BASE_COLUMNS = [
    ("suite", "suite"), ("name", "name"), ("status", "status"), ("reason", "reason"),
    ("tx", "params.tx"), ("rx", "params.rx"), ("generator", "params.generator"),
    ("payload_bytes", "params.payload_bytes"), ("frame_bytes", "params.frame_bytes"),
    ("rate_mode", "params.rate_mode"), ("offered_pps", "params.offered_pps"),
    ("repetition", "params.repetition"), ("lab_mode", "params.lab_mode"),
    ("kernel", "params.kernel"), ("emulated", "params.emulated"),
    ("window_ns", "raw.window_ns"), ("sent_in_window", "raw.sent_in_window"),
    ("received_in_window", "raw.received_in_window"),
    ("sent_total", "raw.drop_counters.sent"), ("received_unique", "raw.drop_counters.received_unique"),
    ("sent_pps", "derived.sent_pps"), ("received_pps", "derived.received_pps"),
    ("achieved_ratio", "derived.achieved_ratio"), ("generator_short", "derived.generator_short"),
    ("payload_mbps", "derived.received_mbps"), ("l2_mbps", "derived.received_l2_mbps"),
    ("l1_mbps", "derived.received_l1_mbps"),
    ("lost_packets", "derived.lost_packets"), ("loss_ratio", "derived.loss_ratio"),
    ("reconciliation_ok", "derived.reconciliation_ok"),
    ("cpu_ns_per_pkt_total", "derived.cpu_ns_per_pkt_total"),
    ("cpu_ns_per_pkt_sink", "derived.cpu_ns_per_pkt_sink"),
    ("cpu_ns_per_pkt_sink_thread", "derived.cpu_ns_per_pkt_sink_thread"),
    ("sink_cpu_percent", "derived.sink_cpu_percent"),
    ("latency_p50_ns", "derived.latency_p50_ns"), ("latency_p99_ns", "derived.latency_p99_ns"),
    ("latency_p999_ns", "derived.latency_p999_ns"), ("command", "command"),
]


def columns(run):
    drops = [(f"drops_{k}", f"derived.drops.{k}") for k, _ in vocab.drop_layers(run.doc)]
    drops += [(f"drops_{k}", f"derived.drops.{k}") for k in vocab.drop_remainders(run.doc)]
    return BASE_COLUMNS + drops


def rows(run):
    """Trial records (NDR steps included, marked by their search id) as lists of cells."""
    cols = columns(run) + [("ndr_search_id", "params.ndr_search_id")]
    out = []
    for df in (run.trials, run.ndr_steps):
        for _, r in df.iterrows():
            out.append(["" if fmt.missing(r.get(path)) else r.get(path) for _, path in cols])
    return [h for h, _ in cols], out


def write(run, path):
    header, body = rows(run)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(body)
    os.replace(tmp, path)  # never a half-written file
    return path
