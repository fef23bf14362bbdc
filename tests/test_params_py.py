"""zcrun/params.py against the real harness: the `parameters` block of
`zcbench list --json`, the commands it builds (the same as the harness's
trial_command for the same suite entry), and the few facts run.py needs
before anything is built (checked copies in zcrun/params.py).

Run by CTest with ZCBENCH and ZCBENCH_BENCH naming the built binaries
(tests/CMakeLists.txt); skipped when they are not given.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from zcrun import params as zcparams  # noqa: E402

FIXTURE = REPO_ROOT / "tests" / "data" / "zcbench_parameters.json"
ZCBENCH = os.environ.get("ZCBENCH")
ZCBENCH_BENCH = os.environ.get("ZCBENCH_BENCH")

# Suite entries covering every kind of parameter a suite can set; CPUs 0 only,
# so they validate on a one-CPU machine too.
SPECS = [
    {"tx": "sendmmsg", "rx": "recvmmsg:batch=8", "payload_bytes": 272, "rate_pps": 1000,
     "duration_s": 0.5, "warmup_s": 0.2, "lab_mode": "rps"},
    {"rx": "recvmmsg:accounting=count,batch=16", "payload_bytes": "64:7,576:4,1518:1",
     "rate_pps": "max", "flows": 4, "burst": 8, "gro": True, "ports": 2, "count": 5000},
    {"tx": "sendto", "rx": "recv", "payload_bytes": 7200, "mtu": 9000, "duration_s": 1.5,
     "warmup_s": 0.25, "traffic": "tap", "lab_mode": "sender-softirq", "rate_pps": 2350000},
    {"queues": 2, "sink_threads": 1, "sink_cpus": "0", "gen_cpus": 0, "rate_pps": 123456.5,
     "claim": 2, "label": "x"},
]


def cpu_zero(spec):
    return dict(spec, gen_cpu=0, sink_cpu=0)


class FixtureTest(unittest.TestCase):
    def test_checked_copies_match_the_fixture(self):
        parameters = json.loads(FIXTURE.read_text())
        self.assertEqual(zcparams.frame_overhead(parameters), zcparams.FRAME_OVERHEAD)
        self.assertEqual(tuple(zcparams.choices(parameters, "--lab-mode")), zcparams.LAB_MODES)

    def test_trial_argv_defaults(self):
        parameters = json.loads(FIXTURE.read_text())
        argv = zcparams.trial_argv(parameters, {"rx": "recv:rcvbuf=1M", "rate_pps": "max"})
        self.assertEqual(argv[:6], ["--tx", "sendmmsg", "--rx", "recv", "--rx-opt", "rcvbuf=1M"])
        self.assertIn("--rate", argv)
        self.assertEqual(argv[argv.index("--rate") + 1], "max")
        self.assertEqual(argv[-1], "--json")
        with self.assertRaises(zcparams.ParamError) as ctx:
            zcparams.trial_argv(parameters, {"payload": 64})
        self.assertIn("unknown field 'payload'; accepted: tx, rx, payload_bytes", str(ctx.exception))


@unittest.skipUnless(ZCBENCH and ZCBENCH_BENCH, "ZCBENCH / ZCBENCH_BENCH not given (run through CTest)")
class HarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.parameters = zcparams.load_parameters(ZCBENCH)

    def test_fixture_is_the_harness_table(self):
        # tests/test_run_py.py's fake zcbench prints the fixture: it must be the real table.
        self.assertEqual(json.loads(FIXTURE.read_text()), self.parameters,
                         "tests/data/zcbench_parameters.json is stale; regenerate it: build/zcbench list "
                         "--json | python3 -c 'import json,sys; json.dump(json.load(sys.stdin)"
                         "[\"parameters\"], sys.stdout, indent=1)' > tests/data/zcbench_parameters.json")

    def test_checked_copies(self):
        self.assertEqual(zcparams.frame_overhead(self.parameters), zcparams.FRAME_OVERHEAD)
        self.assertEqual(tuple(zcparams.choices(self.parameters, "--lab-mode")), zcparams.LAB_MODES)

    def test_same_command_as_trial_command(self):
        specs = [cpu_zero(s) for s in SPECS]
        with tempfile.TemporaryDirectory() as tmp:
            suite = Path(tmp) / "params_py.json"
            suite.write_text(json.dumps({"name": "params_py", "repetitions": 1, "trials": specs}))
            out = subprocess.run([ZCBENCH_BENCH, "--suite", str(suite), "--list-trials"],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), len(specs))
        for spec, line in zip(specs, lines):
            with self.subTest(spec=spec):
                harness = shlex.split(line)
                self.assertEqual(harness[:2], ["build/zcbench", "run"])
                extra = {k: v for k, v in spec.items() if k not in ("claim", "label")}
                self.assertEqual(zcparams.trial_argv(self.parameters, extra), harness[2:])
                self.assertEqual(zcparams.trial_argv(self.parameters, spec), harness[2:])


if __name__ == "__main__":
    unittest.main()
