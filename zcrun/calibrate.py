"""./run.py calibrate: an A/A experiment that measures this machine's noise.

N runs of one small suite with the same build, one after another; every pair of runs is
compared with the comparison the gate uses (reports/compare.py), and what the pairs
differ by becomes each metric's equivalence margin. The calibration document
(results/calibration.json, also kept in the calibration's own run folder) states the
false-alarm rate before and after the margins and, per metric, its own false alarms and
how often a planted 10 % regression is still caught (in-sample and with margins from the
other runs only); `compare`, `--baseline` and `ci` take it with --calibration. The CPU
metric a verdict uses is the sink thread's own CPU per packet (reports/compare.py
METRICS); the lab CPUs' busy time per packet is calibrated beside it, not gated, so the
document shows why. The aa suite (suites/definitions/aa.json) keeps six runs under about
four minutes.
"""

import sys
from pathlib import Path

from .commands import pick_run_dir, run_bench, setup, setup_steps
from .common import (EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Progress,
                     ZcbenchError, display_path, utc_now, warn)
from .children import Interrupted
from .context import run_context
from .report import compare_module
from .results import (ResultsLock, assemble_run, atomic_write_json, check_run_id,
                      count_statuses, read_records)
from .setup import require_executables
from .suites import bench_trial_count, load_suite

CALIBRATION_SUITE = "aa"
DEFAULT_RUNS = 6
CALIBRATION_FILE = "calibration.json"


def command_calibrate(args):
    suite = load_suite(args.suite)
    if not suite.get("trials"):
        raise ZcbenchError(f"suite {suite.get('name')} has no trials to calibrate on; pick a "
                           f"suite with trials (default {CALIBRATION_SUITE})", EXIT_USAGE)
    if args.runs < 2:
        raise ZcbenchError("an A/A calibration needs --runs >= 2 (4 or more for a "
                           "cross-validated false-alarm rate)", EXIT_USAGE)
    if args.run_id:
        check_run_id(args.run_id)
    args.suite_names = ["calibrate", suite.get("name") or "?"]
    results_dir = Path(args.results_dir).absolute()
    output = Path(args.output).absolute() if args.output else results_dir / CALIBRATION_FILE
    with ResultsLock(results_dir):
        progress = Progress(setup_steps(args) + args.runs + 1)
        setup(args, progress)
        require_executables(args.build_dir, ["zcbench", "zcbench-bench"])
        run_id, run_dir = pick_run_dir(results_dir, args)
        run_dir.mkdir(parents=True)
        options = {"suites": [suite.get("name")], "argv": list(args.argv),
                   "lab_mode": args.lab_mode or "per trial", "calibration_runs": args.runs}
        context = run_context(args.build_dir, options)
        trials = bench_trial_count(args.build_dir / "zcbench-bench", suite, args.lab_mode)
        docs = []
        try:
            for k in range(args.runs):
                records_path = run_dir / f"aa-{k}.records.jsonl"
                started = utc_now()
                shape = f"{trials} trials" if trials is not None else "its trials"
                with progress.step(f"A/A run {k + 1}/{args.runs}: suite {suite.get('name')} "
                                   f"({shape})", quiet=False):
                    outcome = run_bench(args, suite, run_dir, records_path, f"aa-{k}")
                if outcome not in (EXIT_OK, EXIT_CHECK_FAILED):
                    raise ZcbenchError(f"A/A run {k + 1} stopped (exit {outcome}); no "
                                       "calibration written", outcome)
                records = read_records(records_path)
                doc = assemble_run(f"{run_id}.{k}", "complete", started, utc_now(), context,
                                   records)
                atomic_write_json(run_dir / f"aa-{k}.run.json", doc)
                docs.append(doc)
        except (Interrupted, KeyboardInterrupt):
            print(file=sys.stderr)
            warn(f"interrupted after {len(docs)} of {args.runs} A/A runs; no calibration "
                 f"written (the runs are in {display_path(run_dir)})")
            return EXIT_INTERRUPTED
        compare = compare_module()
        with progress.step(f"comparing the {args.runs * (args.runs - 1) // 2} pairs of runs"):
            calibration = compare.calibrate(docs)
        calibration["suite"] = suite.get("name")
        calibration["run_dir"] = str(run_dir)
        calibration["statuses"] = count_statuses([r for d in docs for r in d["records"]])
        atomic_write_json(run_dir / CALIBRATION_FILE, calibration)
        atomic_write_json(output, calibration)
    for line in compare.calibration_lines(calibration):
        warn(line)
    warn("measured on this machine as it is now: a busy machine measures its own noise; "
         "use it with ./run.py compare A B --calibration " + display_path(output))
    print(output, flush=True)
    return EXIT_OK
