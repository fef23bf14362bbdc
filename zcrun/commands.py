"""The subcommands: run, test, list, report, compare, ci."""

import contextlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from .common import (CI_SUITE, EXIT_CHECK_FAILED, EXIT_ENVIRONMENT, EXIT_INTERNAL,
                     EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Progress, REPO_ROOT, ZcbenchError,
                     display_path, format_duration, plural, utc_now, warn)
from .setup import (build, ensure_packages, executable, install_plan, require_executables)
from .suites import (bench_trial_count, load_suite)
from .results import (ResultsLock, assemble_run, atomic_write_json, check_run_id, count_statuses,
                      make_run_id, point_latest, read_records)
from .context import (host_context, run_context)
from .children import (Interrupted, child_outcome, run_child)
from .report import (compare_module, load_baseline, load_calibration, render_report,
                     require_report_python)
from .ndr import (cli_ndr_suite, ndr_specs, run_ndr_searches)
from .retrial import MAX_ATTEMPTS, ZcbenchRetrial, retry_contaminated
from . import wire
from .ndr import FRAME_OVERHEAD


def setup(args, progress):
    """Install (or check) packages, then build (or check the build)."""
    with progress.step("installing Debian packages" if not args.no_install
                       else "checking Debian packages (--no-install)"):
        required, optional = install_plan(getattr(args, "command", "run"), args)
        summary = ensure_packages(args.no_install, required, optional)
    print(f"      {summary}", file=sys.stderr)
    if not args.no_build:
        with progress.step(f"building in {display_path(args.build_dir)}"):
            build(args.build_dir)


def setup_steps(args):
    return 1 + (0 if args.no_build else 1)


def command_run(args):
    suites = [load_suite(name) for name in args.suite]
    if args.ndr:
        suites.append(cli_ndr_suite(args))
    for suite in suites:  # bad NDR entries are usage errors before the build
        for i, entry in enumerate(suite.get("ndr") or []):
            ndr_specs(entry, f"suite {suite.get('name')} ndr entry {i}")
    args.suite_names = [suite.get("name") or "?" for suite in suites]
    try:  # bad --iface/--wire input is a usage error before the build
        if wire.wire_requested(args) or getattr(args, "hw_timestamps", False):
            wire.validate(args)
    except wire.WireUsageError as err:
        raise ZcbenchError(str(err), EXIT_USAGE) from None
    args.baseline_doc = load_baseline(args.baseline) if args.baseline else None
    args.calibration_doc = load_calibration(getattr(args, "calibration", None))
    if args.run_id:
        check_run_id(args.run_id)
    results_dir = Path(args.results_dir).absolute()
    lock = ResultsLock(results_dir).acquire()
    try:
        if args.run_id:
            pick_run_dir(results_dir, args)  # a taken --run-id is refused before the build
        return run_suites(args, suites, results_dir)
    finally:
        lock.release()


def pick_run_dir(results_dir, args):
    if args.run_id:
        run_dir = results_dir / args.run_id
        if run_dir.exists():
            raise ZcbenchError(f"run id '{args.run_id}' already used ({display_path(run_dir)} "
                               "exists); pick another --run-id", EXIT_USAGE)
        return args.run_id, run_dir
    base = make_run_id(args.suite_names)
    run_id, attempt = base, 1
    while (results_dir / run_id).exists():  # two runs within one second
        attempt += 1
        run_id = f"{base}-{attempt}"
    return run_id, results_dir / run_id


def run_suites(args, suites, results_dir):
    progress = Progress(setup_steps(args) + len(suites) + 1 + (1 if getattr(args, "kernel", None) else 0))
    setup(args, progress)
    needed = ["zcbench"]
    if any(suite.get("trials") for suite in suites) and not wire.wire_requested(args):
        needed.append("zcbench-bench")
    if any(suite.get("conformance_filter") for suite in suites) and not wire.wire_requested(args):
        needed.append("zcbench-conformance")
    require_executables(args.build_dir, needed)
    report_python = require_report_python()

    run_id, run_dir = pick_run_dir(results_dir, args)
    run_dir.mkdir(parents=True)
    records_path = run_dir / "records.jsonl"
    started_at = utc_now()
    options = {"suites": list(args.suite_names), "argv": list(args.argv), "lab_mode": args.lab_mode or "per trial"}
    repetitions = args.repetitions
    if repetitions is None and len({s.get("repetitions") for s in suites}) == 1:
        repetitions = suites[0].get("repetitions")
    if isinstance(repetitions, int) and repetitions >= 1:
        options["repetitions"] = repetitions
    if args.calibration_doc:
        # The report can say which A/A false-alarm rate the verdicts were judged with.
        options["calibration"] = compare_module().calibration_summary(args.calibration_doc)

    status, exit_code, failed_check = "complete", EXIT_OK, False
    context = None
    try:
        context = run_context(args.build_dir, options)
        for suite in suites:
            if wire.wire_requested(args):
                outcome = wire.run_wire_suite(args, suite, records_path, executable(args.build_dir, "zcbench"),
                                              left_out=options.setdefault("wire_left_out", []))
            else:
                outcome = run_one_suite(args, suite, run_dir, records_path, progress)
            if outcome == EXIT_CHECK_FAILED:
                failed_check = True
            elif outcome != EXIT_OK:
                status, exit_code = "failed", outcome
                break
        if getattr(args, "kernel", None) and status == "complete":
            outcome = run_in_vm(args, run_dir, records_path, progress)
            if outcome == EXIT_CHECK_FAILED:
                failed_check = True
            elif outcome != EXIT_OK:
                status, exit_code = "failed", outcome
    except (Interrupted, KeyboardInterrupt):
        status, exit_code = "interrupted", EXIT_INTERRUPTED
        print(file=sys.stderr)
        warn("interrupted; saving the records completed so far")
    except ZcbenchError as err:
        status, exit_code = "failed", err.exit_code
        warn(str(err))

    if context is None:  # interrupted while learning the context: keep what is cheap
        context = {"host": host_context(), "tool": {"name": "zcbench", "version": "unknown"},
                   "pmu": {"available": False, "reason": "unknown: run interrupted"},
                   "transports": [], "options": options}
    records = read_records(records_path)
    document = assemble_run(run_id, status, started_at, utc_now(), context, records)
    run_json = run_dir / "run.json"
    atomic_write_json(run_json, document)

    counts = count_statuses(records)
    if counts.get("fail") or counts.get("error"):
        failed_check = True
    if exit_code == EXIT_OK and failed_check:
        exit_code = EXIT_CHECK_FAILED

    if args.baseline_doc is not None or args.junit:
        exit_code = max(exit_code, gate(args, document, run_dir))

    report_html = run_dir / "report.html"
    try:
        with progress.step("rendering the report", quiet=False):
            render_report(report_python, run_json, report_html)
    except (Interrupted, KeyboardInterrupt):
        point_latest(results_dir, run_id)
        raise ZcbenchError(f"interrupted while rendering the report; run.json is saved; "
                           f"render it with ./run.py report {display_path(run_dir)}",
                           EXIT_INTERRUPTED) from None
    except ZcbenchError:
        point_latest(results_dir, run_id)
        raise
    point_latest(results_dir, run_id)

    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no records"
    print(f"zcbench: run {run_id} {status} in {format_duration(progress.elapsed())}: "
          f"{len(records)} records ({summary}); exit {exit_code}", file=sys.stderr, flush=True)
    print(report_html.resolve(), flush=True)
    return exit_code


def gate(args, document, run_dir):
    """--baseline and ci: compare.json/compare.html, junit.xml; 1 on a regression."""
    compare = compare_module()
    result = None
    code = EXIT_OK
    if args.baseline_doc is not None:
        result = compare.compare(args.baseline_doc, document, args.calibration_doc)
        atomic_write_json(run_dir / "compare.json", result)
        compare.write_text(run_dir / "compare.html", compare.render_html(result))
        warn(f"baseline {result['base']['run_id']}: {compare.summary_line(result)}; "
             f"see {display_path(run_dir / 'compare.html')}")
        code = result["exit_code"]
    if args.junit:
        compare.write_text(run_dir / "junit.xml", compare.junit_xml(document, result))
        failed = [r.get("name") for r in document["records"]
                  if r.get("kind") == "conformance" and r.get("status") in ("fail", "error")]
        if failed:
            warn(f"{plural(len(failed), 'conformance check')} failed: "
                 + ", ".join(map(str, failed[:5])))
            code = EXIT_CHECK_FAILED
    return code


def guest_kernels():
    """The --kernel names vm/zcvm.py knows (its KERNELS table owns the list)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("zcvm", REPO_ROOT / "vm" / "zcvm.py")
    zcvm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zcvm)
    return list(zcvm.KERNELS)


def run_in_vm(args, run_dir, records_path, progress):
    """Runs conformance and pktgen trials inside a second kernel under qemu
    (vm/zcvm.py) and appends its records, each marked params.kernel and
    params.emulated, to this run's records."""
    out = run_dir / f"vm-{args.kernel}"
    command = [sys.executable, str(REPO_ROOT / "vm" / "zcvm.py"), "--kernel", args.kernel,
               "--work", "conformance,pktgen", "--build", str(args.build_dir), "--out", str(out)]
    with progress.step(f"running conformance and pktgen inside {args.kernel} under qemu", quiet=False):
        code = run_child(command, stdout=sys.stderr.fileno())
    vm_records = out / "vm-records.jsonl"
    if vm_records.exists():
        with open(records_path, "a", encoding="utf-8") as dst:
            for line in vm_records.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    dst.write(line.rstrip("\n") + "\n")
            dst.flush()
            os.fsync(dst.fileno())
    return child_outcome(code, "vm/zcvm.py")


def run_bench(args, suite, run_dir, records_path, gbench_name=None):
    """The suite's trials by zcbench-bench, then the contaminated ones retried."""
    name = suite.get("name") or "?"
    bench = executable(args.build_dir, "zcbench-bench")
    command = [str(bench), "--suite", suite["path"], "--records", str(records_path)]
    if args.lab_mode:
        command += ["--lab-mode", args.lab_mode]
    if args.repetitions:
        command += ["--repetitions", str(args.repetitions)]
    command += [f"--benchmark_out={run_dir / f'gbench-{gbench_name or name}.json'}",
                "--benchmark_out_format=json"]
    start = records_path.stat().st_size if records_path.exists() else 0
    # Children's stdout goes to stderr: run.py's stdout carries only the report path.
    outcome = child_outcome(run_child(command, stdout=sys.stderr.fileno()), "zcbench-bench")
    if outcome in (EXIT_OK, EXIT_CHECK_FAILED) and not getattr(args, "no_retrial", False):
        new = read_records(records_path, start=start, quiet=True)
        scratch = records_path.with_name(f".retrial-{os.getpid()}.json")

        def emit(record):
            with open(records_path, "a") as out:
                out.write(json.dumps(record) + "\n")
        try:
            retried, dirty, left = retry_contaminated(
                new, ZcbenchRetrial(executable(args.build_dir, "zcbench"), scratch), emit)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        if retried or left:
            warn(f"suite {name}: {plural(retried, 'contaminated trial')} retried, "
                 f"{dirty} still contaminated after {MAX_ATTEMPTS} attempts"
                 + (f", {left} not retried (budget)" if left else ""))
    return outcome


def run_one_suite(args, suite, run_dir, records_path, progress):
    name = suite.get("name") or "?"
    repetitions = args.repetitions or suite.get("repetitions")
    bench = executable(args.build_dir, "zcbench-bench")
    trials = bench_trial_count(bench, suite, args.lab_mode) if suite.get("trials") else None
    shape = []
    if trials is not None:
        shape.append(plural(trials, "trial"))
    if repetitions:
        shape.append(plural(repetitions, "repetition"))
    if suite.get("ndr"):
        count = len(suite["ndr"])
        shape.append(f"{count} NDR {'entry' if count == 1 else 'entries'}")
    label = f"running suite {name}" + (f" ({' x '.join(shape)})" if shape else "")
    outcome = EXIT_OK
    with progress.step(label, quiet=False):
        if suite.get("trials"):
            outcome = run_bench(args, suite, run_dir, records_path)
        conformance_filter = suite.get("conformance_filter")
        if conformance_filter and outcome in (EXIT_OK, EXIT_CHECK_FAILED):
            print(f"      conformance checks {conformance_filter}", file=sys.stderr, flush=True)
            command = [str(executable(args.build_dir, "zcbench-conformance")),
                       f"--gtest_filter={conformance_filter}", "--gtest_brief=1"]
            env = dict(os.environ, ZCBENCH_RECORDS=str(records_path))
            code = child_outcome(run_child(command, env=env, stdout=sys.stderr.fileno()),
                                 "zcbench-conformance")
            outcome = code if code != EXIT_OK else outcome
        if suite.get("ndr") and outcome in (EXIT_OK, EXIT_CHECK_FAILED):
            code = run_ndr_searches(args, suite, records_path)
            outcome = code if code != EXIT_OK else outcome
    return outcome


def command_test(args):
    progress = Progress(setup_steps(args) + 1)
    setup(args, progress)
    if shutil.which("ctest") is None:
        raise ZcbenchError("ctest not found; install cmake or run without --no-install",
                           EXIT_ENVIRONMENT)
    junit = ctest_junit_path(args.build_dir)
    command = ["ctest", "--test-dir", str(args.build_dir), "--output-on-failure",
               "-LE", "^(bench|vm)$", "-j1", "--output-junit", str(junit), *args.passthrough]
    try:
        with progress.step(f"testing: {shlex.join(command)}", quiet=False):
            code = run_child(command)
    except Interrupted:
        warn("interrupted")
        return EXIT_INTERRUPTED
    if junit.is_file():
        warn(f"JUnit XML (written by CTest): {display_path(junit)}")
    else:
        warn(f"CTest wrote no JUnit XML at {display_path(junit)} (it needs CTest >= 3.21)")
    return code


def ctest_junit_path(build_dir):
    """Where `./run.py test` has CTest write its JUnit XML: beside CTest's own
    results (Testing/Temporary/LastTest.log) in the build folder, absolute because
    ctest resolves a relative --output-junit against --test-dir."""
    return (Path(build_dir) / "Testing" / "junit.xml").absolute()


def command_list(args):
    progress = Progress(setup_steps(args))
    setup(args, progress)
    require_executables(args.build_dir, ["zcbench"])
    command = [str(executable(args.build_dir, "zcbench")), "list"]
    if args.json:
        command.append("--json")
    try:
        return run_child(command + args.passthrough)
    except Interrupted:
        return EXIT_INTERRUPTED


def command_report(args):
    target = Path(args.run).absolute()
    run_json = target / "run.json" if target.is_dir() else target
    if not run_json.is_file():
        raise ZcbenchError(f"{display_path(run_json)} not found; pass a run folder "
                           "(results/<run-id>) or its run.json", EXIT_USAGE)
    report_html = Path(args.output).absolute() if args.output else \
        run_json.with_name("report.html")
    python = require_report_python()
    try:
        render_report(python, run_json, report_html)
    except Interrupted:
        return EXIT_INTERRUPTED
    print(report_html.resolve(), flush=True)
    return EXIT_OK


def command_compare(args):
    """Two saved runs side by side; nothing is run. Exit 1 when the second regressed."""
    compare = compare_module()
    base, current = (load_baseline(p) for p in (args.base, args.current))
    calibration = load_calibration(args.calibration)
    result = compare.compare(base, current, calibration)
    if calibration:
        summary = result["calibration"]
        rate = summary["false_alarm_rate"]
        warn(f"margins from the A/A calibration of {summary['created_at']} (its false-alarm "
             f"rate: {'n/a' if rate is None else f'{100 * rate:.1f} %'})")
    out = Path(args.output).absolute() if args.output else \
        Path(compare.resolve(args.current)).with_name("compare.html")
    compare.write_text(out, compare.render_html(result))
    if args.json:
        atomic_write_json(out.with_suffix(".json"), result)
    warn(compare.summary_line(result))
    for row in result["configs"]:
        if row["verdict"] in ("regressed", "improved"):
            warn(f"{row['verdict']}: {row['config']}: {row['why']}")
    print(out, flush=True)
    return result["exit_code"]


def command_ci(args):
    args.junit = True
    if not args.suite and not args.ndr:
        args.suite = [CI_SUITE]
    if args.baseline and args.calibration is None:
        args.calibration = own_calibration(Path(args.results_dir).absolute())
    return command_run(args)


def own_calibration(results_dir):
    """RESULTS/calibration.json when ./run.py calibrate measured it on this host (the
    noise of another machine says nothing about this one), else None."""
    path = results_dir / "calibration.json"
    if not path.is_file():
        return None
    try:
        host = (json.loads(path.read_text()).get("host") or {})
    except (OSError, ValueError, AttributeError):
        return None
    here = host_context()
    if (host.get("hostname"), host.get("cpu_model")) != (here["hostname"], here["cpu_model"]):
        warn(f"{display_path(path)} was measured on {host.get('hostname')}, not here; "
             "the fixed thresholds apply")
        return None
    warn(f"gating with the A/A margins of {display_path(path)} (./run.py calibrate)")
    return path


def command_remote(args):
    """--remote USER@HOST: one trial with one side on another host (zcrun/remote.py)."""
    from . import remote
    exit_for = {"usage": EXIT_USAGE, "environment": EXIT_ENVIRONMENT,
                "check": EXIT_CHECK_FAILED, "internal": EXIT_INTERNAL}
    try:
        spec = remote.spec_from_args(args, FRAME_OVERHEAD, shlex.join(args.argv))
        args.suite_names = ["remote"]
        if args.run_id:
            check_run_id(args.run_id)
        progress = Progress(setup_steps(args) + 1)
        setup(args, progress)
        require_executables(args.build_dir, ["zcbench"])
        results_dir = Path(args.results_dir).absolute()
        lock = ResultsLock(results_dir).acquire()
        try:
            run_id, run_dir = pick_run_dir(results_dir, args)
            started_at = utc_now()
            with progress.step(f"trial with the {args.remote_side} on {args.remote}", quiet=False):
                record = remote.run_remote_trial(
                    spec, str(executable(args.build_dir, "zcbench")),
                    echo=lambda line: print(f"      {line}", file=sys.stderr, flush=True))
            # after the trial: a refused host is reported before any local work
            context = run_context(args.build_dir, {"suites": ["remote"], "argv": list(args.argv),
                                                   "lab_mode": "remote"})
            run_dir.mkdir(parents=True)
            run_json = run_dir / "run.json"
            atomic_write_json(run_json, assemble_run(run_id, "complete", started_at, utc_now(),
                                                     context, [record]))
            point_latest(results_dir, run_id)
        finally:
            lock.release()
    except remote.RemoteError as err:
        raise ZcbenchError(str(err), exit_for[err.kind]) from None
    derived = record["derived"]
    print(f"zcbench: {record['name']}: {record['status']}; sent {derived['sent_pps']:.0f} pps, "
          f"received {derived['received_pps']:.0f} pps, lost {derived['lost_packets']}",
          file=sys.stderr, flush=True)
    print(f"      the report: ./run.py report {display_path(run_dir)}", file=sys.stderr, flush=True)
    print(run_json.resolve(), flush=True)
    return EXIT_CHECK_FAILED if record["status"] == "fail" else EXIT_OK
