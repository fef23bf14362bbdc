"""Tests for run.py, the user entry point (stdlib unittest; CTest runs
`python3 -m unittest tests.test_run_py` from the repo root, label unit).

run.py is imported as a module for its pieces and run as a subprocess for its
command line, against fake executables, suites and report interpreter in a temp dir.
"""

import contextlib
import datetime
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import unittest.mock
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_PY = REPO_ROOT / "run.py"


sys.path.insert(0, str(REPO_ROOT))

from zcrun import (children, cli, common, context, ndr, report, results, setup,  # noqa: E402
                   suites)


def write_executable(path, text):
    path = Path(path)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o755)
    return path


FAKE_ZCBENCH = f"""
#!{sys.executable}
import json, sys
if sys.argv[1:] == ["--version"]:
    print("zcbench 0.1.0 (git abc123def456)")
elif sys.argv[1:] == ["list", "--json"]:
    print(json.dumps({{"transports": [{{"name": "recvmmsg", "direction": "rx", "usable": True,
                                        "reason": "", "description": "", "options": []}}],
                      "generators": [{{"name": "flood"}}],
                      "pmu": {{"available": False, "reason": "no PMU", "software_events": True}},
                      "lab_modes": ["sender-softirq", "rps", "xdp"],
                      "parameters": json.load(open({str(REPO_ROOT / "tests" / "data" / "zcbench_parameters.json")!r}))}}))
elif sys.argv[1:] == ["list"]:
    print("recvmmsg rx usable")
elif sys.argv[1] == "run" and "--json" in sys.argv:
    # A sink that takes FAKE_SINK_PPS and a generator that reaches FAKE_GEN_PPS.
    import os
    a = sys.argv
    rate = a[a.index("--rate") + 1]
    gen = float(os.environ.get("FAKE_GEN_PPS", "1000000"))
    sink = float(os.environ.get("FAKE_SINK_PPS", "400000"))
    sent = gen if rate == "max" else min(float(rate), gen)
    received = min(sent, sink)
    with open(os.environ["FAKE_ARGV_LOG"], "a") as log:
        log.write(json.dumps(a[1:]) + "\\n")
    record = {{"kind": "trial", "suite": "adhoc", "name": "t", "command": " ".join(a),
              "params": {{"rx": a[a.index("--rx") + 1], "tx": a[a.index("--tx") + 1],
                         "payload_bytes": int(a[a.index("--size") + 1]), "frame_bytes": 318,
                         "rate_mode": "max" if rate == "max" else "fixed",
                         "offered_pps": None if rate == "max" else float(rate),
                         "repetition": 0, "lab_mode": "rps", "kernel": "6.18"}},
              "status": "pass", "reason": "",
              "raw": {{"window_ns": 1000000000, "sent_total": int(sent),
                      "received_in_window": int(received)}},
              "derived": {{"offered_pps": None if rate == "max" else float(rate),
                          "sent_pps": sent, "received_pps": received,
                          "lost_packets": int(sent - received),
                          "loss_ratio": (sent - received) / sent,
                          "cpu_ns_per_pkt_sink": 1000.0, "cpu_ns_per_pkt_total": 2000.0,
                          "drops": {{}}, "reconciliation_ok": True}}}}
    print(json.dumps({{"schema_version": 1, "records": [record]}}))
else:
    sys.exit(2)
"""

# Behaviour chosen by FAKE_BENCH_MODE: ok | fail | environment | hang (until Ctrl-C).
FAKE_BENCH = f"""
#!{sys.executable}
import json, os, sys, time
args = sys.argv[1:]
suite = args[args.index("--suite") + 1]
if "--list-trials" in args:
    # Like the real one: one command per expanded trial; each entry here expands into
    # two payload sizes, so run.py's count can only come from this listing.
    for entry in json.load(open(suite))["trials"]:
        for size in (64, 1472):
            print("build/zcbench run --rx %s --size %d" % (entry["rx"], size))
    sys.exit(0)
records = args[args.index("--records") + 1]
mode = os.environ.get("FAKE_BENCH_MODE", "ok")
with open(os.environ["FAKE_ARGV_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
def record(number, status):
    # mode "contaminated": t1's lab CPUs were busy with other work (the harness says so).
    dirty = mode == "contaminated" and number == 1
    return json.dumps({{"kind": "trial", "suite": suite, "name": "t%d" % number,
                        "command": "build/zcbench run --tx sendmmsg --rx recv --size 272 "
                                   "--rate 50000 --duration 0.5 --warmup 0.2 --json",
                        "params": {{"repetition": number}}, "status": status,
                        "reason": "" if status == "pass" else "corrupt", "raw": {{}},
                        "derived": {{"contamination": {{"contaminated": dirty,
                                                       "ratio": 0.3 if dirty else 0.0}}}}}}) + "\\n"
if mode == "environment":
    print("zcbench-bench: needs root", file=sys.stderr)
    sys.exit(3)
with open(records, "a") as out:
    out.write(record(0, "pass"))
    out.flush()
    if mode == "hang":
        out.write('{{"kind": "trial", "suite": "')  # killed mid-record
        out.flush()
        with open(os.environ["FAKE_STARTED"], "w") as started:
            started.write(str(os.getpid()))
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(0)
    out.write(record(1, "fail" if mode == "fail" else "pass"))
sys.exit(1 if mode == "fail" else 0)
"""

FAKE_CONFORMANCE = f"""
#!{sys.executable}
import json, os, sys
assert sys.argv[1].startswith("--gtest_filter="), sys.argv
assert sys.argv[2] == "--gtest_brief=1", sys.argv
failing = os.environ.get("FAKE_CONFORMANCE_MODE") == "fail"
with open(os.environ["ZCBENCH_RECORDS"], "a") as out:
    out.write(json.dumps({{"kind": "conformance", "suite": "conformance",
                           "name": "recvmmsg.check", "params": {{}},
                           "status": "fail" if failing else "pass",
                           "reason": "broken" if failing else "", "raw": {{}},
                           "derived": {{}}}}) + "\\n")
sys.exit(1 if failing else 0)
"""

# Stands in for /usr/bin/python3 with pandas: probes succeed, `-m reports` writes a page.
FAKE_REPORT_PYTHON = """
#!/bin/sh
if [ "$1" = "-c" ]; then exit 0; fi
[ "$1" = "-m" ] && [ "$2" = "reports" ] && [ "$4" = "-o" ] || exit 9
grep -q '"schema_version"' "$3" || exit 8
echo '<html>report</html>' > "$5"
"""


def process_alive(pid):
    """True while pid runs; a zombie (dead, not yet reaped by its new parent) is dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class FakeTree:
    """A build folder with fake executables, suite definitions and results in a temp dir."""

    def __init__(self, root):
        self.root = Path(root)
        self.build = self.root / "build"
        self.suites = self.root / "suites"
        self.results = self.root / "results"
        self.build.mkdir()
        self.suites.mkdir()
        write_executable(self.build / "zcbench", FAKE_ZCBENCH)
        write_executable(self.build / "zcbench-bench", FAKE_BENCH)
        write_executable(self.build / "zcbench-conformance", FAKE_CONFORMANCE)
        self.report_python = write_executable(self.root / "report-python", FAKE_REPORT_PYTHON)
        self.packages = self.root / "packages.txt"
        self.packages.write_text("# nothing needed by the fakes\n")
        self.argv_log = self.root / "bench-argv.jsonl"
        self.started = self.root / "bench-started"
        self.add_suite("quick", repetitions=3, conformance_filter="recvmmsg.*")
        self.add_suite("smoke", repetitions=1)

    def add_suite(self, name, repetitions, conformance_filter=None):
        suite = {"name": name, "description": f"{name} suite", "repetitions": repetitions,
                 "trials": [{"rx": "recvmmsg"}, {"rx": "recv"}]}
        if conformance_filter:
            suite["conformance_filter"] = conformance_filter
        (self.suites / f"{name}.json").write_text(json.dumps(suite))

    def env(self, **extra):
        env = dict(os.environ)
        env.update({common.ENV_SUITES_DIR: str(self.suites),
                    common.ENV_PACKAGE_LIST: str(self.packages),
                    common.ENV_REPORT_PYTHON: str(self.report_python),
                    "FAKE_ARGV_LOG": str(self.argv_log),
                    "FAKE_STARTED": str(self.started)})
        env.update(extra)
        return env

    def argv(self, *args):
        return [sys.executable, str(RUN_PY), *args, "--no-install", "--no-build",
                "--build-dir", str(self.build), "--results-dir", str(self.results)]

    def run(self, *args, env=None, timeout=60):
        return subprocess.run(self.argv(*args), env=env or self.env(), cwd=self.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def run_json(self, run_id="latest"):
        return json.loads((self.results / run_id / "run.json").read_text())


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="zcbench-test-")
        self.tmp = Path(self._tmp.name)
        self.addCleanup(self._tmp.cleanup)


def pkg(name, floor=None):
    return setup.Package(name, floor)


HAVE_DPKG = bool(setup.shutil.which("dpkg")) and bool(setup.shutil.which("dpkg-query"))


class PackageListTest(TempDirTest):
    def test_groups_floors_and_comments(self):
        text = ("# header\n\n[core]\ncmake\n  g++   # compiler\nliburing-dev >= 2.3\n"
                "[peers]\n#chromium\ntcpdump\nlibbpf-dev>=1:0.8\n[vm]\n")
        self.assertEqual(setup.parse_package_list(text), {
            "core": [pkg("cmake"), pkg("g++"), pkg("liburing-dev", "2.3")],
            "peers": [pkg("tcpdump"), pkg("libbpf-dev", "1:0.8")],
            "vm": []})

    def test_bad_lists_name_the_line(self):
        for text, words in (("cmake\n", "line 1: 'cmake' comes before any [group]"),
                            ("[core]\n[extras]\n", "line 2: unknown group [extras]"),
                            ("[core]\ncmake\n[test]\ncmake\n", "line 4: cmake is already in [core]"),
                            ("[core]\nliburing-dev > 2.3\n", "line 2: 'liburing-dev > 2.3' is not"),
                            ("[core]\nliburing-dev >= latest\n", "line 2"),
                            ("[core]\nLibfoo\n", "line 2")):
            with self.subTest(text=text):
                with self.assertRaises(ValueError) as caught:
                    setup.parse_package_list(text)
                self.assertIn(words, str(caught.exception))

    def test_bad_list_file_is_an_internal_error(self):
        path = self.tmp / "packages.txt"
        path.write_text("cmake\n")
        with self.assertRaises(common.ZcbenchError) as caught:
            setup.read_package_list(path)
        self.assertEqual(caught.exception.exit_code, common.EXIT_INTERNAL)
        self.assertIn("before any [group]", str(caught.exception))

    def test_repository_list_parses(self):
        groups = setup.read_package_list(REPO_ROOT / "ci" / "debian-packages.txt")
        self.assertEqual(list(groups), list(setup.PACKAGE_GROUPS))
        names = {g: [p.name for p in packages] for g, packages in groups.items()}
        for group, name in (("core", "cmake"), ("core", "libgtest-dev"), ("core", "libpcap-dev"),
                            ("core", "python3-pandas"), ("test", "chromium"),
                            ("test", "python3-jsonschema"), ("peers", "tcpdump"),
                            ("peers", "xdp-tools"), ("vm", "qemu-system-x86")):
            self.assertIn(name, names[group])
        floors = {p.name: p.floor for packages in groups.values() for p in packages}
        # The same floors as CMakeLists.txt; libbpf-dev's Debian version has epoch 1,
        # so a floor without it would let Ubuntu 22.04's 1:0.5.0 pass.
        self.assertEqual((floors["liburing-dev"], floors["libbpf-dev"], floors["libxdp-dev"]),
                         ("2.3", "1:0.8", "1.2"))
        cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
        for module, floor in (("liburing", "2.3"), ("libbpf", "0.8"), ("libxdp", "1.2")):
            self.assertRegex(cmake, rf"zc_require_module\(\w+ {module} {re.escape(floor)} ")
        # Listed for nothing: the BPF programs are assembled in C++ (harness/xdp_prog.cc)
        # and vm/zcvm.py writes its initramfs cpio itself.
        for unused in ("clang", "llvm", "cpio", "make"):
            self.assertNotIn(unused, floors)

    def test_install_plan_per_command(self):
        def plan(command, *argv):
            _, args = cli.parse_args([command, *argv] if command != "run" else list(argv))
            return setup.install_plan(args.command, args)
        self.assertEqual(plan("run"), (["core"], ["peers"]))
        self.assertEqual(plan("ci"), (["core"], ["peers"]))
        self.assertEqual(plan("test"), (["core", "test"], ["peers"]))
        self.assertEqual(plan("list"), (["core"], []))
        self.assertEqual(plan("run", "--kernel", "debian-6.1"), (["core", "vm"], ["peers"]))

    def test_unmet_packages_missing_and_too_old(self):
        versions = {"cmake": "3.25.1-1", "liburing-dev": "2.1-2build1"}
        newer = {("2.1-2build1", "2.3"): False}
        unmet = setup.unmet_packages(
            [pkg("cmake"), pkg("g++"), pkg("liburing-dev", "2.3")], versions.get,
            lambda version, floor: newer[(version, floor)])
        self.assertEqual([(p.name, why) for p, why in unmet],
                         [("g++", "missing"),
                          ("liburing-dev", "2.1-2build1 installed, zcbench needs >= 2.3")])

    @unittest.skipUnless(HAVE_DPKG, "dpkg not installed (not a Debian system)")
    def test_floors_use_dpkg_ordering(self):
        for version, floor, ok in (("2.3-3", "2.3", True), ("2.1-2build1", "2.3", False),
                                   ("1:1.1.2-0+deb12u1", "1:0.8", True),
                                   ("1:0.5.0-1", "1:0.8", False), ("1.3.1-1", "1.2", True),
                                   ("1.2~rc1-1", "1.2", False)):
            with self.subTest(version=version, floor=floor):
                self.assertEqual(setup.version_at_least(version, floor), ok)

    @unittest.skipUnless(HAVE_DPKG, "dpkg not installed (not a Debian system)")
    def test_installed_version_from_dpkg(self):
        self.assertRegex(setup.installed_version("dpkg") or "", r"^\d")
        self.assertIsNone(setup.installed_version("zcbench-no-such-package-xyz"))

    def fake_list(self, text):
        packages = self.tmp / "packages.txt"
        packages.write_text(text)
        return unittest.mock.patch.dict(os.environ, {common.ENV_PACKAGE_LIST: str(packages)})

    def check(self, text, versions, required, optional=()):
        """ensure_packages(no_install=True) with dpkg's answers faked by `versions`."""
        with self.fake_list(text), \
                unittest.mock.patch.object(setup.shutil, "which", return_value="/x"), \
                unittest.mock.patch.object(setup, "installed_version", versions.get), \
                unittest.mock.patch.object(setup, "version_at_least",
                                           lambda v, f: tuple(map(int, v.split("."))) >=
                                           tuple(map(int, f.split(".")))):
            return setup.ensure_packages(True, required, optional)

    LIST = "[core]\ncmake\nliburing-dev >= 2.3\n[test]\nchromium\n[peers]\ntcpdump\n[vm]\nqemu-system-x86\n"

    def test_no_install_names_missing_required_packages(self):
        with self.assertRaises(common.ZcbenchError) as caught:
            self.check(self.LIST, {"liburing-dev": "2.3"}, ["core"], ["peers"])
        self.assertEqual(caught.exception.exit_code, common.EXIT_ENVIRONMENT)
        self.assertIn("cmake (missing)", str(caught.exception))
        self.assertIn("apt-get install -y --no-install-recommends cmake`", str(caught.exception))

    def test_no_install_checks_only_the_needed_groups(self):
        # Plain run: test and vm are not looked at; a missing peer is a note, not a refusal.
        summary = self.check(self.LIST, {"cmake": "3.25", "liburing-dev": "2.3"},
                             ["core"], ["peers"])
        self.assertIn("2 packages of [core] present", summary)
        self.assertIn("not installed, so their trials and tests skip: tcpdump (missing)", summary)
        self.assertIn("apt-get install -y --no-install-recommends tcpdump", summary)
        self.assertNotIn("chromium", summary)
        # test needs its group: chromium missing is an error there.
        with self.assertRaises(common.ZcbenchError) as caught:
            self.check(self.LIST, {"cmake": "3.25", "liburing-dev": "2.3"},
                       ["core", "test"], ["peers"])
        self.assertIn("chromium (missing)", str(caught.exception))
        self.assertNotIn("tcpdump", str(caught.exception))

    def test_no_install_names_a_package_below_its_floor(self):
        with self.assertRaises(common.ZcbenchError) as caught:
            self.check(self.LIST, {"cmake": "3.25", "liburing-dev": "2.1"}, ["core"])
        message = str(caught.exception)
        self.assertIn("liburing-dev (2.1 installed, zcbench needs >= 2.3)", message)
        self.assertIn("apt-get install -y --no-install-recommends liburing-dev`", message)
        self.assertIn("Debian 12 bookworm or later", message)

    def test_no_install_end_to_end(self):
        """run.py's command line against the real dpkg: a missing peer does not stop a run,
        a missing package of the test group stops `run.py test` before ctest."""
        if not HAVE_DPKG:
            self.skipTest("dpkg not installed (not a Debian system)")
        tree = FakeTree(self.tmp)
        tree.packages.write_text("[core]\ndpkg\n[test]\nzcbench-no-such-test-package\n"
                                 "[peers]\nzcbench-no-such-peer\n")
        result = tree.run("--suite", "smoke", "--run-id", "g1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("1 package of [core] present; not installed, so their trials and tests "
                      "skip: zcbench-no-such-peer (missing)", result.stderr)
        result = subprocess.run([sys.executable, str(RUN_PY), "test", "--no-install",
                                 "--no-build", "--build-dir", str(tree.build)],
                                env=tree.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, common.EXIT_ENVIRONMENT, result.stderr)
        self.assertIn("zcbench-no-such-test-package (missing)", result.stderr)
        self.assertNotIn("ctest --test-dir", result.stdout)


class RunIdTest(unittest.TestCase):
    def test_format(self):
        moment = datetime.datetime(2026, 11, 25, 18, 30, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(results.make_run_id(["quick"], moment), "20261125T183000Z-quick")
        self.assertEqual(results.make_run_id(["capture", "generate"], moment),
                         "20261125T183000Z-capture-generate")

    def test_now_is_utc_timestamp(self):
        self.assertRegex(results.make_run_id(["quick"]), r"^\d{8}T\d{6}Z-quick$")

    def test_rejected_ids(self):
        for bad in ("latest", "../escape", ".hidden", "a/b", "", "-x"):
            with self.subTest(bad=bad), self.assertRaises(common.ZcbenchError) as caught:
                results.check_run_id(bad)
            self.assertEqual(caught.exception.exit_code, common.EXIT_USAGE)
        results.check_run_id("20261125T183000Z-quick")

    def test_timestamps_end_in_z(self):
        moment = datetime.datetime(2026, 11, 25, 18, 30, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(common.iso_utc(moment), "2026-11-25T18:30:00Z")


class AtomicWriteTest(TempDirTest):
    def test_write_and_replace_leave_no_temp_files(self):
        path = self.tmp / "run.json"
        results.atomic_write_json(path, {"a": 1})
        results.atomic_write_json(path, {"a": 2})
        self.assertEqual(json.loads(path.read_text()), {"a": 2})
        self.assertEqual(os.listdir(self.tmp), ["run.json"])

    def test_failed_write_keeps_old_file(self):
        path = self.tmp / "run.json"
        results.atomic_write_json(path, {"a": 1})
        with self.assertRaises(TypeError):
            results.atomic_write_json(path, {"a": object()})  # not serializable, mid-write
        self.assertEqual(json.loads(path.read_text()), {"a": 1})
        self.assertEqual(os.listdir(self.tmp), ["run.json"])


class LockTest(TempDirTest):
    def test_second_run_is_refused(self):
        tree = FakeTree(self.tmp)
        with results.ResultsLock(tree.results):
            result = tree.run()
            self.assertEqual(result.returncode, common.EXIT_ENVIRONMENT, result.stderr)
            self.assertIn(f"zcbench: another run (pid {os.getpid()}) is using ", result.stderr)
            self.assertIn("wait for it to finish or pass --results-dir", result.stderr)
        lock = results.ResultsLock(tree.results).acquire()  # free again once released
        lock.release()


class RecordsTest(TempDirTest):
    def test_truncated_last_line_and_interrupted_run(self):
        jsonl = self.tmp / "records.jsonl"
        good = {"kind": "trial", "suite": "quick", "name": "t", "params": {}, "status": "pass",
                "reason": "", "raw": {}, "derived": {}}
        jsonl.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, name="u")) + "\n"
                         + '{"kind": "trial", "sui')
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            records = results.read_records(jsonl)
        self.assertEqual([r["name"] for r in records], ["t", "u"])
        self.assertIn("truncated last line 3", stderr.getvalue())

        started = datetime.datetime(2026, 11, 25, 18, 30, 0, tzinfo=datetime.timezone.utc)
        finished = started + datetime.timedelta(seconds=161)
        context = {"host": {}, "tool": {"name": "zcbench", "version": "0.1.0"},
                   "pmu": {"available": False}, "transports": [], "options": {}}
        document = results.assemble_run("20261125T183000Z-quick", "interrupted", started,
                                       finished, context, records)
        self.assertEqual(document["schema_version"], 1)
        self.assertEqual(document["status"], "interrupted")
        self.assertEqual(document["started_at"], "2026-11-25T18:30:00Z")
        self.assertEqual(document["finished_at"], "2026-11-25T18:32:41Z")
        self.assertEqual(len(document["records"]), 2)
        json.dumps(document)

    def test_missing_file_is_no_records(self):
        self.assertEqual(results.read_records(self.tmp / "absent.jsonl"), [])

    def test_version_parsing(self):
        self.assertEqual(context.parse_version("zcbench 0.1.0 (git abc123def456)\n"),
                         {"name": "zcbench", "version": "0.1.0", "git_sha": "abc123def456"})
        self.assertEqual(context.parse_version("zcbench 0.1.0")["git_sha"], None)


class InterpreterProbeTest(TempDirTest):
    def test_first_interpreter_that_imports_wins(self):
        bad = write_executable(self.tmp / "bad", "#!/bin/sh\nexit 1\n")
        good = write_executable(self.tmp / "good", """
            #!/bin/sh
            [ "$1" = "-c" ] && [ "$2" = "import pandas, matplotlib, jinja2" ]
            """)
        absent = self.tmp / "absent"
        self.assertEqual(report.find_report_python([str(absent), str(bad), str(good)]),
                         str(good))
        self.assertIsNone(report.find_report_python([str(absent), str(bad)]))

    def test_no_interpreter_names_debian_packages(self):
        bad = write_executable(self.tmp / "bad", "#!/bin/sh\nexit 1\n")
        with unittest.mock.patch.dict(os.environ, {common.ENV_REPORT_PYTHON: str(bad)}):
            with self.assertRaises(common.ZcbenchError) as caught:
                report.require_report_python()
        self.assertEqual(caught.exception.exit_code, common.EXIT_ENVIRONMENT)
        self.assertIn("python3-pandas python3-matplotlib python3-jinja2", str(caught.exception))


class ArgumentsTest(TempDirTest):
    def test_defaults(self):
        name, args = cli.parse_args([])
        self.assertEqual((name, args.suite, args.lab_mode, args.repetitions),
                         ("run", ["quick"], None, None))
        name, args = cli.parse_args(["test", "--no-install", "--", "-R", "tpacket"])
        self.assertEqual((name, args.no_install, args.passthrough),
                         ("test", True, ["-R", "tpacket"]))

    def test_errors_exit_2_with_one_line(self):
        tree = FakeTree(self.tmp)
        cases = [["frobnicate"], ["--lab-mode", "bogus"], ["--repetitions", "0"],
                 ["--suite", "nope"], ["--run-id", "../x"], ["--", "x"], ["report"],
                 ["--bogus-option"]]
        for case in cases:
            with self.subTest(case=case):
                result = subprocess.run([sys.executable, str(RUN_PY), *case], env=tree.env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, timeout=30)
                self.assertEqual(result.returncode, common.EXIT_USAGE, result.stderr)
                lines = result.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, result.stderr)
                self.assertTrue(lines[0].startswith("zcbench: "), result.stderr)
        result = subprocess.run([sys.executable, str(RUN_PY), "--suite", "nope"],
                                env=tree.env(), stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertIn("available: quick, smoke", result.stderr)

    def test_help_and_version(self):
        result = subprocess.run([sys.executable, str(RUN_PY), "--help"],
                                stdout=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(result.returncode, 0)
        self.assertIn("./run.py test", result.stdout)
        self.assertIn("--suite", result.stdout)
        result = subprocess.run([sys.executable, str(RUN_PY), "--version"],
                                stdout=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith("zcbench run.py "))


class EndToEndTest(TempDirTest):
    """The run command against fake executables."""

    def test_complete_run(self):
        tree = FakeTree(self.tmp)
        result = tree.run("--suite", "quick", "--run-id", "r1")
        self.assertEqual(result.returncode, 0, result.stderr)
        report = tree.results / "r1" / "report.html"
        self.assertEqual(result.stdout.strip().splitlines()[-1], str(report.resolve()))
        # The count is zcbench-bench's own listing (2 entries, 2 sizes each).
        self.assertIn("running suite quick (4 trials x 3 repetitions)", result.stderr)
        self.assertEqual(os.readlink(tree.results / "latest"), "r1")
        document = tree.run_json()
        self.assertEqual((document["run_id"], document["status"]), ("r1", "complete"))
        self.assertRegex(document["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual([r["kind"] for r in document["records"]],
                         ["trial", "trial", "conformance"])
        context = document["context"]
        self.assertEqual(context["tool"]["git_sha"], "abc123def456")
        self.assertEqual(context["pmu"]["reason"], "no PMU")
        self.assertEqual(context["transports"][0]["name"], "recvmmsg")
        self.assertEqual(context["options"]["suites"], ["quick"])
        self.assertEqual(context["options"]["repetitions"], 3)
        self.assertEqual(context["options"]["lab_mode"], "per trial")
        self.assertGreaterEqual(context["host"]["cpu_count"], 1)
        bench_argv = json.loads(tree.argv_log.read_text().splitlines()[0])
        # The suite file run.py resolved (in ZCBENCH_SUITES_DIR here), by its path: the
        # bench must not fall back to its compiled-in suites/definitions.
        self.assertEqual(bench_argv[:4], ["--suite", str(tree.suites / "quick.json"), "--records",
                                          str(tree.results / "r1" / "records.jsonl")])
        # No --lab-mode unless asked: it would override the xdp trials' own mode.
        self.assertNotIn("--lab-mode", bench_argv)
        self.assertIn(f"--benchmark_out={tree.results / 'r1' / 'gbench-quick.json'}",
                      bench_argv)
        self.assertEqual([p.name for p in (tree.results / "r1").iterdir() if
                          p.name.startswith(".")], [])

    def test_failed_check_exits_1_and_repetitions_pass_through(self):
        tree = FakeTree(self.tmp)
        result = tree.run("--suite", "smoke", "--repetitions", "5", "--lab-mode", "xdp",
                          env=tree.env(FAKE_BENCH_MODE="fail"))
        self.assertEqual(result.returncode, 1, result.stderr)
        document = tree.run_json()
        self.assertEqual(document["status"], "complete")
        self.assertEqual(document["context"]["options"]["repetitions"], 5)
        bench_argv = json.loads(tree.argv_log.read_text().splitlines()[0])
        self.assertIn("--repetitions", bench_argv)
        self.assertEqual(bench_argv[bench_argv.index("--lab-mode") + 1], "xdp")
        self.assertTrue(re.fullmatch(r"\d{8}T\d{6}Z-smoke", document["run_id"]))

    def test_environment_error_of_child_is_a_failed_run(self):
        tree = FakeTree(self.tmp)
        result = tree.run("--suite", "smoke", env=tree.env(FAKE_BENCH_MODE="environment"))
        self.assertEqual(result.returncode, common.EXIT_ENVIRONMENT, result.stderr)
        self.assertEqual(tree.run_json()["status"], "failed")
        self.assertTrue(Path(result.stdout.strip().splitlines()[-1]).is_file())

    def test_ctrl_c_saves_an_interrupted_run(self):
        tree = FakeTree(self.tmp)
        # A session of its own, so the SIGINT below reaches run.py and its child, not us.
        proc = subprocess.Popen(tree.argv("--suite", "quick", "--run-id", "cut"),
                                env=tree.env(FAKE_BENCH_MODE="hang"), cwd=tree.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not tree.started.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(tree.started.exists(), "fake bench never started")
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, common.EXIT_INTERRUPTED, stderr)
        self.assertIn("truncated last line", stderr)
        document = tree.run_json("cut")
        self.assertEqual(document["status"], "interrupted")
        self.assertEqual(len(document["records"]), 1)
        self.assertEqual(stdout.strip().splitlines()[-1],
                         str((tree.results / "cut" / "report.html").resolve()))

    def test_contaminated_trials_are_retried_and_the_retrial_is_what_counts(self):
        tree = FakeTree(self.tmp)
        result = tree.run("--suite", "smoke", "--run-id", "dirty",
                          env=tree.env(FAKE_BENCH_MODE="contaminated"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("retrial 1 of t1", result.stderr)
        self.assertIn("1 contaminated trial retried, 0 still contaminated", result.stderr)
        records = tree.run_json("dirty")["records"]
        retrials = [r for r in records if r["kind"] == "retrial"]
        self.assertEqual(len(retrials), 1)
        self.assertEqual(retrials[0]["params"]["retrial_of"], "t1")
        self.assertEqual(retrials[0]["params"]["attempt"], 1)
        self.assertFalse(retrials[0]["derived"]["contaminated"])
        # The fake `zcbench run` was given the record's own command, with its repetition.
        argv = [json.loads(line) for line in tree.argv_log.read_text().splitlines()]
        run_argv = next(a for a in argv if a[0] == "run")
        self.assertEqual(run_argv[run_argv.index("--repetition") + 1], "1")
        self.assertEqual(run_argv[run_argv.index("--rate") + 1], "50000")
        # The original stays; the comparison reads the clean retrial in its place.
        self.assertEqual([r["name"] for r in records if r["kind"] == "trial"], ["t0", "t1"])
        measured = report.compare_module().measured_trials(records)
        self.assertEqual([r["name"] for r in measured], ["t0", retrials[0]["trial"]["name"]])
        self.assertEqual(measured[1]["params"]["rx"], "recv")
        result = tree.run("--suite", "smoke", "--run-id", "kept", "--no-retrial",
                          env=tree.env(FAKE_BENCH_MODE="contaminated"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([r for r in tree.run_json("kept")["records"] if r["kind"] == "retrial"],
                         [])

    def test_sigkill_of_run_py_stops_its_child(self):
        # run.py gives its children PR_SET_PDEATHSIG: killed outright (no chance to stop
        # them), it must not leave zcbench-bench running without it.
        tree = FakeTree(self.tmp)
        proc = subprocess.Popen(tree.argv("--suite", "quick", "--run-id", "killed"),
                                env=tree.env(FAKE_BENCH_MODE="hang"), cwd=tree.root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        child = None
        try:
            deadline = time.monotonic() + 30
            while not (tree.started.exists() and tree.started.read_text()):
                self.assertLess(time.monotonic(), deadline, "fake bench never started")
                time.sleep(0.05)
            child = int(tree.started.read_text())
            proc.kill()
            proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while process_alive(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertFalse(process_alive(child), "zcbench-bench outlived a SIGKILLed run.py")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if child is not None and process_alive(child):
                os.kill(child, signal.SIGKILL)

    def test_parent_death_signal_is_armed(self):
        # The child reads its own PR_GET_PDEATHSIG (2) back through prctl.
        probe = ("import ctypes, sys; v = ctypes.c_int(); "
                 "ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value)")
        out = subprocess.run([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True,
                             preexec_fn=children.parent_death_signal(), check=True).stdout
        self.assertEqual(int(out), int(signal.SIGTERM))

    def test_report_command_rerenders(self):
        tree = FakeTree(self.tmp)
        self.assertEqual(tree.run("--suite", "smoke", "--run-id", "r2").returncode, 0)
        (tree.results / "r2" / "report.html").unlink()
        result = subprocess.run([sys.executable, str(RUN_PY), "report",
                                 str(tree.results / "latest")], env=tree.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue((tree.results / "r2" / "report.html").is_file())

    def test_test_command_passes_arguments_to_ctest(self):
        tree = FakeTree(self.tmp)
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir()
        write_executable(bin_dir / "ctest", '#!/bin/sh\necho "ctest $*"\nexit 5\n')
        env = tree.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        result = subprocess.run([sys.executable, str(RUN_PY), "test", "--no-install",
                                 "--no-build", "--build-dir", str(tree.build), "--", "-R", "x"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 5, result.stderr)
        junit = tree.build / "Testing" / "junit.xml"
        self.assertIn(f"ctest --test-dir {tree.build} --output-on-failure -LE ^(bench|vm)$ "
                      f"-j1 --output-junit {junit} -R x", result.stdout)
        self.assertIn("CTest wrote no JUnit XML", result.stderr)

    def test_test_command_says_where_ctest_wrote_junit(self):
        tree = FakeTree(self.tmp)
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir()
        # A ctest that writes the file where --output-junit says, as CTest does.
        write_executable(bin_dir / "ctest", '#!/bin/sh\nwhile [ "$1" != --output-junit ]; do '
                         'shift; done\nmkdir -p "$(dirname "$2")"\necho "<testsuite/>" > "$2"\n')
        env = tree.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        result = subprocess.run([sys.executable, str(RUN_PY), "test", "--no-install",
                                 "--no-build", "--build-dir", str(tree.build)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue((tree.build / "Testing" / "junit.xml").is_file())
        self.assertIn("JUnit XML (written by CTest):", result.stderr)
        self.assertIn("junit.xml", result.stderr)


class Measurer:
    """A measurer for ndr_search from a function of the rate; keeps what it returned."""

    def __init__(self, trial):
        self.trial = trial
        self.returned = []

    def measure(self, rate, duration):
        record = self.trial(rate)
        self.returned.append((record, json.dumps(record, sort_keys=True)))
        return record


def model_trial(sink_pps, gen_pps, paced_gen_pps=None, calls=None):
    """A measurer for ndr_search: a sink that takes sink_pps, a generator that reaches
    gen_pps flat out and paced_gen_pps when paced (a pacer that falls behind)."""
    def run_trial(rate):
        if calls is not None:
            calls.append(rate)
        cap = gen_pps if rate == "max" else min(gen_pps, paced_gen_pps or gen_pps)
        sent = cap if rate == "max" else min(float(rate), cap)
        received = min(sent, sink_pps)
        return {"kind": "trial", "status": "pass", "reason": "",
                "params": {"rx": "recv", "kernel": "6.18", "lab_mode": "rps"},
                "derived": {"sent_pps": sent, "received_pps": received,
                            "loss_ratio": (sent - received) / sent if sent else 0.0}}
    return Measurer(run_trial)


def ndr_spec(**overrides):
    spec = dict(ndr.NDR_DEFAULTS, rx="recv", payload_bytes=272)
    spec.update(overrides)
    return spec


class NdrSearchTest(unittest.TestCase):
    def search(self, spec, measurer):
        return ndr.ndr_search(spec, measurer, "s-1")

    def test_finds_the_sink_limit_within_the_resolution_and_confirms(self):
        steps, summary = self.search(ndr_spec(resolution="1%"), model_trial(400_000, 1_000_000))
        d = summary["derived"]
        self.assertLessEqual(d["ndr_pps"], 400_000)
        self.assertGreaterEqual(d["ndr_pps"], 400_000 - 10_000)
        self.assertTrue(d["confirmed"])
        self.assertFalse(d["generator_limited"])
        self.assertEqual(d["steps"], len(steps))
        self.assertEqual([s["params"]["ndr_step"] for s in steps], list(range(len(steps))))
        self.assertEqual({s["params"]["ndr_search_id"] for s in steps}, {"s-1"})
        self.assertEqual(steps[0]["params"]["ndr_role"], "max")
        self.assertEqual(steps[-1]["params"]["ndr_role"], "confirm")
        self.assertEqual(summary["kind"], "ndr")
        self.assertEqual(summary["params"]["method"], "binary search")
        self.assertEqual(summary["params"]["loss_threshold"], 0.0)
        self.assertEqual(summary["status"], "pass")
        self.assertEqual(len(summary["raw"]["steps"]), len(steps))

    def test_steps_are_their_own_records_and_the_trials_are_untouched(self):
        measurer = model_trial(400_000, 1_000_000)
        steps, _ = self.search(ndr_spec(resolution="5%"), measurer)
        self.assertEqual({s["kind"] for s in steps}, {"ndr_step"})
        for step in steps:  # every field the schema requires of a record
            self.assertLessEqual({"kind", "suite", "name", "params", "status", "reason", "raw",
                                  "derived", "trial"}, set(step))
        self.assertEqual(len(steps), len(measurer.returned))
        for step, (trial, as_returned) in zip(steps, measurer.returned):
            self.assertIs(step["trial"], trial)
            # Not one field added, changed or removed by the search.
            self.assertEqual(json.dumps(trial, sort_keys=True), as_returned)
            self.assertNotIn("ndr_search_id", trial["params"])
            self.assertEqual(step["status"], trial["status"])

    def test_a_slow_generator_is_never_reported_as_a_lossless_sink(self):
        steps, summary = self.search(ndr_spec(), model_trial(400_000, 300_000))
        d = summary["derived"]
        self.assertTrue(d["generator_limited"])
        self.assertLessEqual(d["ndr_pps"], 300_000)
        # Confirmed flat out: a paced confirmation would test the pacer, not the sink.
        self.assertEqual([s["params"]["ndr_role"] for s in steps], ["max", "confirm"])
        self.assertEqual(steps[1]["params"]["offered_pps"] if "offered_pps" in
                         steps[1]["params"] else None, None)
        self.assertTrue(d["confirmed"])

    def test_a_pacer_that_falls_behind_caps_the_result(self):
        # Flat out the generator reaches 1 Mpps, paced it holds only 200 Kpps: probes
        # above that are "generator short", so 400 Kpps must not be claimed.
        steps, summary = self.search(ndr_spec(),
                                     model_trial(400_000, 1_000_000, paced_gen_pps=200_000))
        outcomes = [s["derived"]["ndr_outcome"] for s in steps]
        self.assertIn("generator short", outcomes)
        self.assertTrue(summary["derived"]["generator_limited"])
        self.assertLessEqual(summary["derived"]["ndr_pps"], 200_000)

    def test_pdr_threshold_allows_that_much_loss(self):
        _, summary = self.search(ndr_spec(loss_ratio=0.05, resolution="0.5%"),
                                 model_trial(400_000, 1_000_000))
        # loss = (r - 400K) / r <= 5 %  <=>  r <= 421 052
        self.assertGreater(summary["derived"]["ndr_pps"], 400_000)
        self.assertLessEqual(summary["derived"]["ndr_pps"], 421_053)
        self.assertTrue(summary["name"].startswith("PDR 5 %"), summary["name"])

    def test_time_budget_bounds_the_search(self):
        now = [0.0]

        def clock():
            now[0] += 10.0  # every look at the clock: 10 s later
            return now[0]
        calls = []
        ndr.ndr_search(ndr_spec(resolution="1", time_budget_s=25),
                          model_trial(400_000, 1_000_000, calls=calls), "s", clock=clock)
        self.assertLessEqual(len([c for c in calls if c != "max"]), 4)

    def test_skip_of_the_first_trial_is_the_searchs_skip(self):
        def run_trial(rate):
            return {"kind": "trial", "status": "skip", "reason": "unsupported: EPERM",
                    "params": {}, "derived": {}}
        steps, summary = self.search(ndr_spec(), Measurer(run_trial))
        self.assertEqual((summary["status"], summary["reason"]), ("skip", "unsupported: EPERM"))
        self.assertIsNone(summary["derived"]["ndr_pps"])
        self.assertEqual(len(steps), 1)

    def test_bad_entries_are_usage_errors(self):
        for entry in ({"bogus": 1}, {"loss_ratio": 2}, {"resolution": "150%"},
                      {"resolution": "fast"}, {"payload_bytes": 5}, {"duration_s": 0},
                      {"max_rate_pps": "lots"}, {"rx": "recv:noequals"}):
            with self.subTest(entry=entry):
                with self.assertRaises(common.ZcbenchError) as ctx:
                    ndr.ndr_specs(entry, "test")
                self.assertEqual(ctx.exception.exit_code, common.EXIT_USAGE)

    def test_specs_expand_rx_and_sizes(self):
        specs = ndr.ndr_specs({"rx": ["recv", "recvmmsg:batch=8"],
                                  "payload_bytes": [18, 272]}, "t")
        self.assertEqual([(s["rx"], s["payload_bytes"]) for s in specs],
                         [("recv", 18), ("recv", 272), ("recvmmsg:batch=8", 18),
                          ("recvmmsg:batch=8", 272)])
        parameters = json.loads((REPO_ROOT / "tests" / "data" / "zcbench_parameters.json").read_text())
        command = ndr.trial_command("zcbench", specs[3], 1000, "rps", parameters)
        self.assertEqual(command[:8], ["zcbench", "run", "--tx", "sendmmsg", "--rx",
                                       "recvmmsg", "--rx-opt", "batch=8"])
        self.assertIn("--json", command)

    def test_rfc2544_sizes_and_ndr_alone(self):
        _, args = cli.parse_args(["--ndr", "--rfc2544-sizes"])
        suite = ndr.cli_ndr_suite(args)
        self.assertEqual(suite["ndr"][0]["payload_bytes"], [18, 82, 210, 466, 978, 1234, 1472])
        self.assertEqual(args.suite, [])


class CompareTest(TempDirTest):
    FIXTURES = REPO_ROOT / "reports" / "tests" / "fixtures"

    def compare(self, a, b, *extra):
        return subprocess.run([sys.executable, str(RUN_PY), "compare", str(self.FIXTURES / a),
                               str(self.FIXTURES / b), "-o", str(self.tmp / "c.html"), *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60)

    def test_planted_regression_exits_1_and_aa_exits_0(self):
        result = self.compare("baseline.run.json", "regressed.run.json", "--json")
        self.assertEqual(result.returncode, 1, result.stderr)
        # The fixtures are real runs (reports/tests/fixtures/make_fixtures.sh): regressed
        # ran with a busy loop on the sink CPU; what it hurt is named on stderr.
        self.assertIn("REGRESSION", (self.tmp / "c.html").read_text())
        verdicts = json.loads((self.tmp / "c.json").read_text())
        regressed = [r["config"] for r in verdicts["configs"] if r["verdict"] == "regressed"]
        self.assertTrue(regressed)
        self.assertIn(f"{len(regressed)} regressed", result.stderr)
        for config in regressed:
            self.assertIn(f"regressed: {config}", result.stderr)
        # The A/A pair, judged with the margins calibrate measured on it.
        result = self.compare("aa_a.run.json", "aa_b.run.json", "--calibration",
                              str(self.FIXTURES / "aa.calibration.json"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("0 regressed, 0 improved, 2 unchanged, 0 not comparable", result.stderr)

    def test_missing_run_is_a_usage_error(self):
        result = self.compare("baseline.run.json", "nope.run.json")
        self.assertEqual(result.returncode, common.EXIT_USAGE, result.stderr)

    def test_mann_whitney_exact_and_normal(self):
        mw = report.compare_module().mann_whitney
        u, p, method = mw([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
        self.assertEqual((u, method), (0.0, "exact"))
        self.assertAlmostEqual(p, 2 / 252)  # the two extreme splits of C(10, 5)
        self.assertAlmostEqual(mw([1, 2, 3], [4, 5, 6])[1], 0.1)
        self.assertEqual(mw([5, 5, 5], [5, 5, 5])[1], 1.0)  # all ties: no evidence
        _, p, method = mw(list(range(20)), [x + 0.5 for x in range(10, 30)])
        self.assertEqual(method, "normal")
        self.assertLess(p, 0.001)


class NdrAndCiEndToEndTest(TempDirTest):
    def test_ndr_alone_writes_steps_and_a_summary(self):
        tree = FakeTree(self.tmp)
        result = tree.run("--ndr", "--ndr-rx", "recv", "--ndr-resolution", "5%",
                          env=tree.env(FAKE_SINK_PPS="250000"))
        self.assertEqual(result.returncode, 0, result.stderr)
        document = tree.run_json()
        self.assertTrue(document["run_id"].endswith("-ndr"), document["run_id"])
        summaries = [r for r in document["records"] if r["kind"] == "ndr"]
        self.assertEqual(len(summaries), 1)
        d = summaries[0]["derived"]
        self.assertTrue(200_000 < d["ndr_pps"] <= 250_000, d)
        self.assertEqual([r for r in document["records"] if r["kind"] == "trial"], [])
        steps = [r for r in document["records"] if r["kind"] == "ndr_step"]
        self.assertEqual(len(steps), d["steps"])
        # The harness's record, as `zcbench run --json` printed it.
        self.assertEqual({s["trial"]["suite"] for s in steps}, {"adhoc"})
        search_id = summaries[0]["params"]["ndr_search_id"]
        self.assertTrue(all(s["params"]["ndr_search_id"] == search_id for s in steps))
        # Only `zcbench run` was called: no suite ran.
        self.assertTrue(all(json.loads(line)[0] == "run"
                            for line in tree.argv_log.read_text().splitlines()))

    def test_ci_writes_junit_and_gates_on_conformance(self):
        import xml.etree.ElementTree as ET
        tree = FakeTree(self.tmp)
        tree.add_suite("smoke", repetitions=1, conformance_filter="*")
        result = tree.run("ci", "--run-id", "base")
        self.assertEqual(result.returncode, 0, result.stderr)
        root = ET.parse(tree.results / "base" / "junit.xml").getroot()
        self.assertEqual([s.get("name") for s in root], ["conformance", "trials"])
        result = tree.run("ci", "--run-id", "next", "--baseline", str(tree.results / "base"),
                          env=tree.env(FAKE_CONFORMANCE_MODE="fail"))
        self.assertEqual(result.returncode, 1, result.stderr)
        root = ET.parse(tree.results / "next" / "junit.xml").getroot()
        self.assertEqual([s.get("name") for s in root], ["conformance", "trials", "baseline"])
        self.assertEqual(root[0].get("failures"), "1")
        self.assertTrue((tree.results / "next" / "compare.html").is_file())
        self.assertTrue((tree.results / "next" / "compare.json").is_file())


class JunitXmlTest(unittest.TestCase):
    """The hand-built junit.xml of `./run.py ci` (reports/compare.py junit_xml)."""

    def junit(self, records, status="complete", result=None):
        import xml.etree.ElementTree as ET
        text = report.compare_module().junit_xml(
            {"status": status, "records": records}, result)
        return text, ET.fromstring(text.encode("utf-8"))

    def test_error_failure_and_skip_are_distinct(self):
        _, root = self.junit([
            {"kind": "conformance", "name": "a.pass", "status": "pass", "reason": ""},
            {"kind": "conformance", "name": "a.fail", "status": "fail", "reason": "gap at 7"},
            {"kind": "conformance", "name": "a.error", "status": "error", "reason": "harness died"},
            {"kind": "conformance", "name": "a.skip", "status": "skip", "reason": "unsupported: x"},
            {"kind": "trial", "name": "t.weird", "status": "bogus", "reason": "?"}])
        conformance, trials = root
        self.assertEqual((conformance.get("tests"), conformance.get("failures"),
                          conformance.get("errors"), conformance.get("skipped")),
                         ("4", "1", "1", "1"))
        kinds = {c.get("name"): [e.tag for e in c] for c in conformance}
        self.assertEqual(kinds, {"a.pass": [], "a.fail": ["failure"], "a.error": ["error"],
                                 "a.skip": ["skipped"]})
        self.assertEqual(conformance.find("testcase[@name='a.error']/error").get("message"),
                         "harness died")
        # A status that is no verdict is the harness's error, never a pass.
        self.assertEqual([e.tag for e in trials[0]], ["error"])

    def test_incomplete_run_is_an_error(self):
        _, root = self.junit([], status="failed")
        trials = root[1]
        self.assertEqual(trials.get("errors"), "1")
        self.assertEqual(trials[0].get("name"), "run")

    def test_strips_characters_xml_forbids(self):
        dirty = "tool said \x00\x01\x07\x1b[31mred\x7f\t\n\r ok \ud800 \ufffe\uffff\U0001f600 end"
        text, root = self.junit([{"kind": "conformance", "name": "n\x02ame", "status": "fail",
                                  "reason": dirty}])
        case = root[0][0]
        self.assertEqual(case.get("name"), "name")
        message = case.find("failure").text
        # (an XML parser reads a literal carriage return as a newline)
        self.assertEqual(message, "tool said [31mred\x7f\t\n\n ok  \U0001f600 end")
        self.assertIn("\t\n\r ok", text)
        # Encodable as UTF-8 (no lone surrogate) and parsed by a strict parser above.
        text.encode("utf-8")
        self.assertNotIn("\x1b", text)

    def test_baseline_regression_is_a_failure(self):
        result = {"configs": [{"config": "c1", "verdict": "regressed", "why": "slower"},
                              {"config": "c2", "verdict": "not comparable", "why": "new"}],
                  "conformance": []}
        _, root = self.junit([], result=result)
        baseline = root[2]
        self.assertEqual((baseline.get("failures"), baseline.get("skipped"),
                          baseline.get("errors")), ("1", "1", "0"))

def aa_doc(run_id, rng, run_shift=0.0, cpu_shift=0.0, reps=5, rep_noise=0.01):
    """A run of two configurations whose repetitions scatter by rep_noise around a level
    the whole run shares (run_shift, cpu_shift): load drift between runs, as on a
    shared machine."""
    records = []
    for rx, mode in (("recvmmsg", "max"), ("recv", "fixed")):
        for rep in range(reps):
            jitter = lambda: 1 + rng.uniform(-rep_noise, rep_noise)
            records.append({
                "kind": "trial", "suite": "aa", "name": f"{rx} #{rep}", "status": "pass",
                "reason": "", "raw": {},
                "params": {"tx": "sendmmsg", "rx": rx, "payload_bytes": 272, "rate_mode": mode,
                           "offered_pps": None if mode == "max" else 50000.0,
                           "repetition": rep, "kernel": "6.18", "lab_mode": "rps"},
                "derived": {"received_pps": 400_000.0 * (1 + run_shift) * jitter(),
                            "cpu_ns_per_pkt_total": 2000.0 * (1 + cpu_shift) * jitter(),
                            "loss_ratio": 0.0}})
    return {"schema_version": 1, "run_id": run_id, "status": "complete",
            "context": {"host": {"hostname": "h", "cpu_model": "m"}}, "records": records}


class BenchListingTest(unittest.TestCase):
    BENCH = REPO_ROOT / "build" / "zcbench-bench"

    @unittest.skipUnless(os.access(REPO_ROOT / "build" / "zcbench-bench", os.X_OK),
                         "zcbench-bench not built")
    def test_trial_count_is_the_benchs_expansion(self):
        # quick.json has 5 entries whose lists expand to many more trials: the progress
        # line used to say 5 where the bench ran them all.
        quick = suites.load_suite("quick")
        listed = subprocess.run([str(self.BENCH), "--suite", quick["path"], "--list-trials"],
                                stdout=subprocess.PIPE, text=True, check=True).stdout
        count = suites.bench_trial_count(self.BENCH, quick)
        self.assertEqual(count, len(listed.splitlines()))
        self.assertGreater(count, len(quick["trials"]))
        self.assertIsNone(suites.bench_trial_count(self.BENCH, {"path": "/nonexistent.json"}))


class CalibrationTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.compare = report.compare_module()

    def aa_runs(self, n=8, seed=7):
        import random
        rng = random.Random(seed)
        # Whole runs move by up to +-12 % in rate and +-3 % in CPU per packet: more than
        # the fixed 5 % effect for the rate, so the fixed threshold cries wolf.
        return [aa_doc(f"aa-{k}", rng, rng.uniform(-0.12, 0.12), rng.uniform(-0.03, 0.03))
                for k in range(n)]

    def test_a_margin_widens_the_effect_threshold(self):
        import random
        base = aa_doc("a", random.Random(1))
        cur = aa_doc("b", random.Random(2), run_shift=-0.08)
        fixed = self.compare.compare(base, cur)
        self.assertEqual(fixed["counts"]["regressed"], 2, fixed["configs"])
        calibration = {"margins": {"received_pps": {"margin": 0.10}}}
        widened = self.compare.compare(base, cur, calibration)
        self.assertEqual(widened["counts"]["regressed"], 0, widened["configs"])
        rate = next(m for m in widened["configs"][0]["metrics"] if m["metric"] == "received_pps")
        self.assertEqual(rate["threshold"], 0.10)
        self.assertIn("calibrated noise", rate["why"])
        # A margin below the fixed effect never narrows it.
        self.assertEqual(self.compare.effect_threshold("received_pps", {"received_pps": 0.01}),
                         self.compare.EFFECT)

    def test_aa_experiment_false_alarms_before_and_after_and_a_planted_regression(self):
        runs = self.aa_runs()
        cal = self.compare.calibrate(runs, created_at="2026-12-02T00:00:00Z")
        fa = cal["false_alarms"]
        self.assertEqual(fa["fixed_threshold"]["pairs"], 28)
        # The fixed 5 % effect flags many A/A pairs; the margins bring it to the target,
        # also judged with margins measured without the pair (cross-validated).
        self.assertGreater(fa["fixed_threshold"]["rate"], 0.2)
        self.assertLessEqual(fa["calibrated_in_sample"]["rate"], 0.05)
        # Out of sample (margins from the 6 other runs) the rate is higher than in-sample,
        # and still well below the fixed threshold's.
        self.assertLess(fa["calibrated_cross_validated"]["rate"],
                        fa["fixed_threshold"]["rate"] / 2)
        self.assertLess(cal["margins"]["cpu_ns_per_pkt_total"]["margin"], 0.10)
        self.assertGreater(cal["margins"]["received_pps"]["margin"], 0.10)
        planted = cal["planted_regression"]["calibrated"]
        # CPU ns per packet, stable by construction, still catches a 10 % regression;
        # the drifting rate cannot, and says so rather than crying wolf.
        self.assertGreaterEqual(planted["cpu_ns_per_pkt_total"]["rate"], 0.9)
        self.assertLess(planted["received_pps"]["rate"], 0.5)
        lines = "\n".join(self.compare.calibration_lines(cal))
        self.assertIn("false alarms with the fixed 5 % effect", lines)
        self.assertIn("cross-validated", lines)

    def test_a_configuration_is_judged_by_its_own_noise(self):
        # A flat-out trial's noise must not hide a regression of a quiet, paced one: the
        # pooled margin (30 %) would, the configuration's own (0.01 %) does not.
        import random
        base = aa_doc("a", random.Random(1))
        cur = self.compare.plant_regression(aa_doc("b", random.Random(2)), "received_pps")
        labels = sorted({self.compare.config_label(r["params"]) for r in base["records"]})
        pooled = {"margins": {"received_pps": {"margin": 0.30}}}
        self.assertEqual(self.compare.compare(base, cur, pooled)["counts"]["regressed"], 0)
        own = dict(pooled, margins_by_config={labels[0]: {"received_pps": 0.0001}})
        verdicts = {row["config"]: row["verdict"]
                    for row in self.compare.compare(base, cur, own)["configs"]}
        self.assertEqual(verdicts[labels[0]], "regressed")
        self.assertTrue(all(v == "unchanged" for k, v in verdicts.items() if k != labels[0]))
        cal = self.compare.calibrate(self.aa_runs(n=4), created_at="2026-12-02T00:00:00Z")
        self.assertEqual(set(cal["margins_by_config"]), set(labels))

    def test_planted_regression_makes_the_metric_worse_and_leaves_the_run(self):
        import random
        doc = aa_doc("a", random.Random(3))
        planted = self.compare.plant_regression(doc, "cpu_ns_per_pkt_total")
        before = [r["derived"]["cpu_ns_per_pkt_total"] for r in doc["records"]]
        after = [r["derived"]["cpu_ns_per_pkt_total"] for r in planted["records"]]
        self.assertEqual([round(a / b, 9) for a, b in zip(after, before)], [1.1] * len(before))
        slower = self.compare.plant_regression(doc, "received_pps")
        self.assertAlmostEqual(slower["records"][0]["derived"]["received_pps"],
                               doc["records"][0]["derived"]["received_pps"] * 0.9)

    def test_calibrate_command_runs_the_suite_n_times_and_stores_the_noise(self):
        tree = FakeTree(self.tmp)
        result = tree.run("calibrate", "--suite", "smoke", "--runs", "3", "--run-id", "cal")
        self.assertEqual(result.returncode, 0, result.stderr)
        out = tree.results / "calibration.json"
        self.assertEqual(result.stdout.strip().splitlines()[-1], str(out))
        cal = json.loads(out.read_text())
        self.assertEqual(cal["kind"], "zcbench calibration")
        self.assertEqual(cal["runs"], ["cal.0", "cal.1", "cal.2"])
        self.assertEqual(cal["suite"], "smoke")
        self.assertEqual(cal["false_alarms"]["fixed_threshold"]["pairs"], 3)
        self.assertEqual(json.loads((tree.results / "cal" / "calibration.json").read_text()),
                         cal)
        for k in range(3):
            doc = json.loads((tree.results / "cal" / f"aa-{k}.run.json").read_text())
            self.assertEqual(len([r for r in doc["records"] if r["kind"] == "trial"]), 2)
        self.assertIn("A/A run 3/3: suite smoke (4 trials)", result.stderr)
        self.assertIn("false alarms with the fixed 5 % effect", result.stderr)
        bench_runs = [a for a in map(json.loads, tree.argv_log.read_text().splitlines())
                      if a[0] == "--suite"]
        self.assertEqual(len(bench_runs), 3)
        result = tree.run("calibrate", "--suite", "smoke", "--runs", "1")
        self.assertEqual(result.returncode, common.EXIT_USAGE, result.stderr)
        self.assertIn("--runs >= 2", result.stderr)

    def test_ci_gates_with_this_hosts_calibration(self):
        tree = FakeTree(self.tmp)
        self.assertEqual(tree.run("ci", "--run-id", "base").returncode, 0)
        cal = self.compare.calibrate(self.aa_runs(n=3))
        cal["host"] = context.host_context()
        (tree.results / "calibration.json").write_text(json.dumps(cal))
        result = tree.run("ci", "--run-id", "next", "--baseline", str(tree.results / "base"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("gating with the A/A margins of", result.stderr)
        verdicts = json.loads((tree.results / "next" / "compare.json").read_text())
        self.assertEqual(verdicts["calibration"]["runs"], 3)
        options = tree.run_json("next")["context"]["options"]
        self.assertEqual(options["calibration"]["runs"], 3)
        cal["host"] = dict(cal["host"], hostname="elsewhere")
        (tree.results / "calibration.json").write_text(json.dumps(cal))
        result = tree.run("ci", "--run-id", "third", "--baseline", str(tree.results / "base"))
        self.assertIn("not here; the fixed thresholds apply", result.stderr)
        self.assertIsNone(json.loads((tree.results / "third" / "compare.json").read_text())
                          ["calibration"])

    def test_compare_command_takes_a_calibration(self):
        runs = self.aa_runs(n=4)
        paths = []
        for doc in runs[:2]:
            path = self.tmp / f"{doc['run_id']}.run.json"
            path.write_text(json.dumps(doc))
            paths.append(path)
        cal_path = self.tmp / "calibration.json"
        cal_path.write_text(json.dumps(self.compare.calibrate(runs)))
        result = subprocess.run([sys.executable, str(RUN_PY), "compare", *map(str, paths),
                                 "--calibration", str(cal_path), "-o", str(self.tmp / "c.html"),
                                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=60)
        self.assertIn(result.returncode, (0, 1), result.stderr)
        page = (self.tmp / "c.html").read_text()
        self.assertIn('id="calibration"', page)
        self.assertIn("A/A false-alarm rate", page)
        verdicts = json.loads((self.tmp / "c.json").read_text())
        self.assertEqual(verdicts["calibration"]["runs"], 4)
        bad = self.tmp / "bad.json"
        bad.write_text("{}")
        result = subprocess.run([sys.executable, str(RUN_PY), "compare", *map(str, paths),
                                 "--calibration", str(bad)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(result.returncode, common.EXIT_USAGE, result.stderr)
        self.assertIn("./run.py calibrate", result.stderr)


if __name__ == "__main__":
    unittest.main()

