"""./run.py --remote against real sshd: two "hosts" (tests/sshlab.py), run.py in host A,
the other side in host B reached over SSH. Nothing is mocked: OpenSSH's client and
server, the veth link, zcbench on both ends.

    python3 tests/test_remote.py [BUILD_DIR]     # exit 77 when the lab cannot stand up

BUILD_DIR (default build/) holds the zcbench to test. Exit 77 (CTest's skip) when every
test skipped: no root, no sshd, no zcbench built, with the reason printed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import sshlab  # noqa: E402
sys.path.insert(0, str(REPO))
from zcrun import remote  # noqa: E402

BUILD_DIR = Path(os.environ.get("ZCBENCH_BUILD_DIR", REPO / "build")).resolve()
SYSTEM_PYTHON = "/usr/bin/python3"  # sees Debian's python3-jsonschema
# short and slow: the tests check what lands in run.json, not speed
TRIAL = ["--size", "272", "--rate", "5000", "--duration", "0.5", "--warmup", "0.1"]
FAKE_VERSION = "zcbench 0.0.1 (git 000000000000)"


class RemoteTrials(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        cls.zcbench = BUILD_DIR / "zcbench"
        if not os.access(cls.zcbench, os.X_OK):
            raise unittest.SkipTest(f"{cls.zcbench} not built")
        try:
            cls.lab = sshlab.SshLab()
            cls.lab.start()
        except sshlab.Unavailable as err:
            cls.lab.stop()
            raise unittest.SkipTest(f"two sshd hosts cannot stand up here: {err}")
        cls.version = subprocess.run([str(cls.zcbench), "--version"], capture_output=True,
                                     text=True).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        if cls.lab is None or cls.lab.root is None:
            return
        lab, root = cls.lab, cls.lab.root
        pids = [h.holder.pid for h in lab.hosts.values()] + [h.sshd.pid for h in lab.hosts.values()]
        lab.stop()
        # nothing left behind: no sshd, no namespace holder, no temp dir
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                 and "zombie" not in _state(pid)]
        assert not alive, f"lab processes still running: {alive}"
        assert not root.exists(), f"{root} left behind"
        assert not lab.pids_mentioning(str(root)), "processes still mention the lab dir"

    def setUp(self):
        self.remote_bin = self.lab.host("b").bin_dir / "zcbench"

    def tearDown(self):
        if self.remote_bin.exists() or self.remote_bin.is_symlink():
            self.remote_bin.unlink()
        self.assert_nothing_left()

    def leftovers(self):
        return {"ssh clients": self.lab.pids_mentioning(str(self.lab.root / "ssh")),
                "temp on a": os.listdir(self.lab.host("a").tmp_dir),
                "temp on b": os.listdir(self.lab.host("b").tmp_dir)}

    def assert_nothing_left(self, within_s=5.0):
        """No ssh master or session, no ControlPath dir here, no remote temp dir there.
        The remote dir goes when the connection's end reaches the remote shell: allow
        WITHIN_S for that."""
        deadline = time.monotonic() + within_s
        while any(self.leftovers().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.leftovers()
        for name in ("a", "b"):  # so that one failure does not fail the next tests too
            for entry in left[f"temp on {name}"]:
                shutil.rmtree(self.lab.host(name).tmp_dir / entry, ignore_errors=True)
        self.assertFalse(any(left.values()), f"left behind: {left}")

    def fake_remote_zcbench(self, version_line):
        self.remote_bin.write_text(f"#!/bin/sh\necho '{version_line}'\n")
        self.remote_bin.chmod(0o755)

    def run_py(self, *extra, config=None, target=None, side="sink"):
        a = self.lab.host("a")
        argv = self.run_py_argv(*extra, config=config, target=target, side=side)
        # TMPDIR: run.py's private ControlPath dir lands where the test can look for it
        env = dict(os.environ, TMPDIR=str(a.tmp_dir))
        return self.lab.run_on("a", argv, env=env, capture_output=True, text=True, timeout=120)

    def run_py_argv(self, *extra, config=None, target=None, side="sink"):
        a = self.lab.host("a")
        return [sys.executable, str(REPO / "run.py"), "--remote", target or self.lab.target("b"),
                "--remote-side", side, "--iface", a.data_if,
                "--remote-iface", self.lab.host("b").data_if,
                "--ssh-config", config or self.lab.ssh_config,
                "--no-install", "--no-build", "--build-dir", str(BUILD_DIR),
                "--results-dir", str(self.lab.root / "results")] + TRIAL + list(extra)

    def record_of(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)
        run_json = Path(result.stdout.strip().splitlines()[-1])
        document = json.loads(run_json.read_text())
        self.assertEqual(len(document["records"]), 1)
        self.check_schema(run_json)
        return document["records"][0]

    def check_schema(self, run_json):
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import jsonschema"], capture_output=True)
        if probe.returncode != 0:
            return  # the schema test proper (cli.run_json_matches_schema) reports that
        check = subprocess.run([SYSTEM_PYTHON, "-m", "reports.validate", str(run_json)],
                               cwd=REPO, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def assert_merged(self, record, side):
        raw, derived = record["raw"], record["derived"]
        self.assertEqual(record["status"], "pass", record["reason"])
        self.assertEqual(record["params"]["remote"]["side"], side)
        # sent is the generator's own count, received the sink's own
        gen_side = remote.side_summary(raw["gen"]["output"])
        sink_side = remote.side_summary(raw["sink"]["output"])
        self.assertEqual(raw["sent_total"], gen_side["sent"])
        self.assertGreater(raw["sent_total"], 0)
        self.assertEqual(raw["received_total"], sink_side["received"])
        unique = sink_side["sequence"]["unique"]
        self.assertEqual(derived["lost_packets"], raw["sent_total"] - unique)
        self.assertTrue(derived["reconciliation_ok"], derived["drops"])
        # each host's own kernel counters, from its own namespace
        self.assertGreaterEqual(raw["sink"]["udp_delta"]["Udp.InDatagrams"], raw["received_total"])
        self.assertGreaterEqual(raw["gen"]["udp_delta"]["Udp.OutDatagrams"], raw["sent_total"])
        self.assertGreaterEqual(raw["gen"]["link_delta"]["tx_packets"], raw["sent_total"])
        self.assertGreaterEqual(raw["sink"]["link_delta"]["rx_packets"], raw["received_total"])
        self.assertIsNotNone(derived["cpu_ns_per_pkt_sink"])
        # the sink thread's CPU metric is the sink side's own (its task-clock over its
        # packets), not recomputed from the generator side's counters
        sink_record = raw["sink"]["output"]["records"][0]
        self.assertIsNotNone(sink_record["derived"]["cpu_ns_per_pkt_sink_thread"], sink_record["raw"].get("perf"))
        self.assertEqual(derived["cpu_ns_per_pkt_sink_thread"], sink_record["derived"]["cpu_ns_per_pkt_sink_thread"])
        # one kernel under both "hosts": one CLOCK_MONOTONIC, so latency is taken
        self.assertTrue(record["params"]["remote"]["clock"]["one_way_latency"])

    def test_sink_on_the_remote_host_with_another_version_there(self):
        self.fake_remote_zcbench(FAKE_VERSION)
        result = self.run_py(side="sink")
        self.assertIn(f"is '{FAKE_VERSION}', not '{self.version}'", result.stderr)
        self.assertIn("shipping", result.stderr)
        record = self.record_of(result)
        self.assert_merged(record, "sink")
        zc = record["params"]["remote"]["zcbench"]
        self.assertTrue(zc["shipped"])
        self.assertEqual(zc["remote_found"], FAKE_VERSION)
        self.assertEqual(record["params"]["remote"]["sink"]["host"], "remote")
        self.assertEqual(record["params"]["frame_bytes"], 272 + 46)

    def test_generator_on_the_remote_host_with_the_same_version_there(self):
        self.remote_bin.symlink_to(self.zcbench)
        record = self.record_of(self.run_py(side="gen"))
        self.assert_merged(record, "gen")
        zc = record["params"]["remote"]["zcbench"]
        self.assertFalse(zc["shipped"])
        self.assertEqual(zc["remote_path"], str(self.remote_bin))

    def test_another_version_without_shipping_is_an_environment_error(self):
        self.fake_remote_zcbench(FAKE_VERSION)
        result = self.run_py("--no-ship")
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn(f"is '{FAKE_VERSION}', not '{self.version}'", result.stderr)
        self.assertEqual(list((self.lab.root / "results").glob("*/run.json")), [])

    def test_sigkill_of_run_py_leaves_nothing_on_either_host(self):
        self.interrupt_run_py(signal.SIGKILL)

    def test_ctrl_c_of_run_py_exits_130_and_leaves_nothing(self):
        self.assertEqual(self.interrupt_run_py(signal.SIGINT), 130)

    def interrupt_run_py(self, sig):
        """Start a long remote-sink trial, send SIG to run.py once the remote sink runs;
        check that nothing is left on either host. Returns run.py's exit status."""
        a, b = self.lab.host("a"), self.lab.host("b")
        argv = self.run_py_argv("--duration", "20", side="sink")
        env = dict(os.environ, TMPDIR=str(a.tmp_dir))
        log = self.lab.root / "interrupted.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(a.nsenter() + argv, env=env, stdout=subprocess.DEVNULL,
                                    stderr=err, preexec_fn=sshlab._die_with_parent)
        shipped = str(b.tmp_dir / "zcbench-remote.")
        try:
            deadline = time.monotonic() + 60
            while not any("sink" in _cmdline(pid) for pid in self.lab.pids_mentioning(shipped)):
                self.assertIsNone(proc.poll(), "run.py ended before its remote sink ran: "
                                  + log.read_text(errors="replace"))
                self.assertLess(time.monotonic(), deadline, "the remote sink never started")
                time.sleep(0.05)
            proc.send_signal(sig)  # nsenter execs: this is run.py itself
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        # the remote sink ends when its session's stdin closes, the master when run.py's
        # PR_SET_PDEATHSIG fires; the scripts remove the shipped binary and ControlPath dir
        deadline = time.monotonic() + 15
        while self.lab.pids_mentioning(shipped) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.lab.pids_mentioning(shipped), [], "the remote sink survived")
        self.assert_nothing_left(within_s=10)
        return code

    def config_with(self, name, **changes):
        text = Path(self.lab.ssh_config).read_text()
        for key, value in changes.items():
            lines = [l for l in text.splitlines() if not l.strip().startswith(key + " ")]
            text = "\n".join(lines + [f"  {key} {value}"]) + "\n"
        path = self.lab.root / f"ssh_config.{name}"
        path.write_text(text)
        return str(path)

    def test_refused_port_gives_opensshs_message_and_exit_3(self):
        result = self.run_py(config=self.config_with("port", Port="1"))
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn(f"ssh: connect to host {self.lab.host('b').mgmt_ip} port 1: Connection refused",
                      result.stderr)

    def test_wrong_key_gives_opensshs_message_and_exit_3(self):
        other = self.lab.root / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        result = self.run_py(config=self.config_with("key", IdentityFile=str(other)))
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("Permission denied (publickey)", result.stderr)

    def test_silent_host_gives_opensshs_message_and_exit_3(self):
        # an address on host A's management link that nobody answers for
        result = self.run_py(config=self.config_with("silent", ConnectTimeout="2"),
                             target=f"root@{sshlab.MGMT_NET}.9")
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn(f"ssh: connect to host {sshlab.MGMT_NET}.9 port 22:", result.stderr)


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "zombie"


def main(argv):
    global BUILD_DIR
    if len(argv) > 1:
        BUILD_DIR = Path(argv[1]).resolve()  # nsenter --mount starts in /
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(RemoteTrials)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    # a skip in setUpClass counts as one skipped and none run: that is a skip, never a pass
    if result.skipped and len(result.skipped) >= result.testsRun:
        print(f"SKIP: {result.skipped[0][1]}")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
