#!/usr/bin/env python3
"""bench_smoke's Google Benchmark file carries the gated CPU figure.

Each repetition's `cpu_ns_per_pkt_sink_thread` counter must be a value some
trial record of the same run holds (suites/bench_main.cc copies it), and at
least one paced trial must have measured one. Regression test: the counters
used to carry only the tick-sampled /proc/stat figures (docs/results-format.md).
"""
import json
import math
import sys


def main(gbench_path: str, records_path: str) -> int:
    try:
        benchmarks = json.load(open(gbench_path))["benchmarks"]
        records = [json.loads(line) for line in open(records_path) if line.strip()]
    except FileNotFoundError as e:
        print(f"skip: {e.filename} missing (bench_smoke.smoke skipped or did not run)")
        return 77
    thread = [r["derived"]["cpu_ns_per_pkt_sink_thread"] for r in records
              if r.get("kind") == "trial" and isinstance(r.get("derived", {}).get("cpu_ns_per_pkt_sink_thread"), (int, float))]
    reps = [b for b in benchmarks if b.get("run_type") == "iteration" and not b.get("error_occurred")]
    if not thread or not reps:
        print(f"FAIL: {len(thread)} records with a sink-thread CPU figure, {len(reps)} benchmark repetitions")
        return 1
    bad = []
    for b in reps:
        if "cpu_ns_per_pkt_sink_thread" not in b:
            bad.append(f"{b['name']}: no cpu_ns_per_pkt_sink_thread counter")
            continue
        v = b["cpu_ns_per_pkt_sink_thread"]
        if v and not any(math.isclose(v, t, rel_tol=1e-9) for t in thread):
            bad.append(f"{b['name']}: {v} matches no record's derived.cpu_ns_per_pkt_sink_thread")
    if not any(b.get("cpu_ns_per_pkt_sink_thread") for b in reps):
        bad.append("no repetition carries a non-zero cpu_ns_per_pkt_sink_thread")
    for line in bad:
        print("FAIL:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
