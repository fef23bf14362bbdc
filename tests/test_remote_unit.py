"""zcrun/remote.py's pure parts: which zcbench runs remotely, the clock verdict, the
side script's counter lines and the merge into one record. The SSH parts run against
real sshd in tests/test_remote.py."""

import contextlib
import io
import os
import subprocess
import unittest

from zcrun import remote

LOCAL = {"arch": "x86_64", "os": "debian 12", "version": "zcbench 0.1.0 (git abc)",
         "boot_id": "b1", "kernel": "6.18", "hostname": "a"}


class ZcbenchPlan(unittest.TestCase):
    def test_same_version_is_used(self):
        self.assertEqual(remote.zcbench_plan(LOCAL, dict(LOCAL, zcbench="/usr/bin/zcbench")),
                         ("use", None))

    def test_other_version_same_platform_is_shipped_and_named(self):
        action, why = remote.zcbench_plan(LOCAL, dict(LOCAL, zcbench="/x/zcbench",
                                                      version="zcbench 0.0.9 (git def)"))
        self.assertEqual(action, "ship")
        self.assertIn("'zcbench 0.0.9 (git def)'", why)
        self.assertIn("'zcbench 0.1.0 (git abc)'", why)

    def test_missing_zcbench_is_shipped(self):
        facts = {k: v for k, v in LOCAL.items() if k != "version"}
        self.assertEqual(remote.zcbench_plan(LOCAL, facts)[0], "ship")

    def test_other_distribution_says_what_to_install(self):
        with self.assertRaises(remote.RemoteError) as caught:
            remote.zcbench_plan(LOCAL, dict(LOCAL, os="ubuntu 22.04", version=None))
        self.assertEqual(caught.exception.kind, "environment")
        self.assertIn("install zcbench 'zcbench 0.1.0 (git abc)' there", str(caught.exception))
        self.assertIn("ubuntu 22.04", str(caught.exception))

    def test_other_architecture_says_what_to_install(self):
        with self.assertRaises(remote.RemoteError) as caught:
            remote.zcbench_plan(LOCAL, dict(LOCAL, arch="aarch64", version=None))
        self.assertIn("aarch64", str(caught.exception))

    def test_no_ship_makes_a_difference_an_error(self):
        with self.assertRaises(remote.RemoteError) as caught:
            remote.zcbench_plan(LOCAL, dict(LOCAL, version="zcbench 0.0.9 (git def)"),
                                ship_allowed=False)
        self.assertIn("--no-ship", str(caught.exception))


class ShippableCopy(unittest.TestCase):
    def test_an_elf_is_shipped_without_debug_sections_and_still_runs(self):
        import shutil
        import tempfile
        with tempfile.TemporaryDirectory() as scratch:
            source = os.path.join(scratch, "tool")
            shutil.copy("/bin/true", source)
            os.mkdir(os.path.join(scratch, "out"))
            copy = remote.shippable_copy(source, os.path.join(scratch, "out"))
            if shutil.which("strip"):
                self.assertNotEqual(copy, source)
            self.assertEqual(subprocess.run([copy]).returncode, 0)

    def test_a_script_is_shipped_as_it_is(self):
        import tempfile
        with tempfile.TemporaryDirectory() as scratch:
            source = os.path.join(scratch, "tool")
            with open(source, "w") as f:
                f.write("#!/bin/sh\n")
            self.assertEqual(remote.shippable_copy(source, scratch), source)


class ClockState(unittest.TestCase):
    def test_one_kernel_shares_its_monotonic_clock(self):
        ok, reason, _ = remote.clock_state(LOCAL, dict(LOCAL))
        self.assertTrue(ok, reason)

    def test_two_hosts_are_unavailable_even_when_synchronised(self):
        chrony = "Reference ID    : 1;Leap status     : Normal;"
        ok, reason, evidence = remote.clock_state(dict(LOCAL, chrony=chrony),
                                                  dict(LOCAL, boot_id="b2", chrony=chrony))
        self.assertFalse(ok)
        self.assertIn("CLOCK_MONOTONIC", reason)
        self.assertIn("local, remote synchronised", reason)
        self.assertEqual(evidence["remote"]["chrony"], chrony)

    def test_no_sync_evidence_is_said(self):
        ok, reason, _ = remote.clock_state(LOCAL, dict(LOCAL, boot_id="b2"))
        self.assertFalse(ok)
        self.assertIn("neither end shows chrony or PTP", reason)


class SideScript(unittest.TestCase):
    """SIDE_SCRIPT run for real here (sh, procfs, ip) around a short command."""

    def run_side(self, argv):
        # stdin stays open while the command runs, as run.py's end of a session does
        # (at EOF the script's watcher would end the command at once)
        read_end, write_end = os.pipe()
        try:
            return subprocess.run(["sh", "-c", remote.SIDE_SCRIPT, "zcside", "lo"] + argv,
                                  capture_output=True, text=True, timeout=30, stdin=read_end)
        finally:
            os.close(read_end)
            os.close(write_end)

    def test_counters_and_exit_code_pass_through(self):
        result = self.run_side(["sh", "-c", "echo out; exit 7"])
        self.assertEqual(result.returncode, 7)
        self.assertEqual(result.stdout.strip(), "out")
        deltas = remote.side_deltas(remote.parse_side_lines(result.stderr.splitlines()))
        for key in ("udp_delta", "softnet_dropped_delta", "link_delta", "host_cpu_ticks_delta",
                    "process_cpu_ns"):
            self.assertIn(key, deltas, result.stderr)
        self.assertIn("Udp.RcvbufErrors", deltas["udp_delta"])
        self.assertIn("rx_dropped", deltas["link_delta"])

    def test_process_cpu_is_the_commands_own(self):
        busy = ["sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"]
        deltas = remote.side_deltas(remote.parse_side_lines(self.run_side(busy).stderr.splitlines()))
        self.assertGreater(deltas["process_cpu_ns"], 0)

    def test_closed_stdin_ends_the_command(self):
        # stdin at EOF from the start: the watcher ends the command at once, as when
        # run.py's end of the SSH session goes away
        proc = subprocess.Popen(["sh", "-c", remote.SIDE_SCRIPT, "zcside", "lo", "sleep", "30"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.close()
        try:
            code = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self.assertNotEqual(code, 0)  # sleep died of SIGTERM


def outputs(sent=1000, received=1000, unique=None, duplicates=0):
    gen = {"flood": {"sent": sent, "refusals": 0}, "seconds": 1.0, "sent_pps": float(sent)}
    sink = {"received": received, "received_pps": received / 4.0, "kernel_stats": {},
            "latency_ns": {"count": received, "p50": 10, "p99": 20, "p999": 30, "max": 40},
            "sequence": {"checked": True, "unique": received if unique is None else unique,
                         "duplicates": duplicates, "corrupt": 0, "gaps": 0}}
    return gen, sink


def raw(rcvbuf=0, softnet=0, rx_dropped=0, cpu=1_000_000):
    return {"udp_delta": {"Udp.RcvbufErrors": rcvbuf, "Udp.InErrors": rcvbuf, "Udp.NoPorts": 0},
            "softnet_dropped_delta": softnet, "link_delta": {"rx_dropped": rx_dropped, "tx_dropped": 0},
            "process_cpu_ns": cpu}


SPEC = {"tx": "sendmmsg", "rx": "recvmmsg", "tx_opts": {}, "rx_opts": {}, "size": 272,
        "frame_bytes": 318,
        "rate": 1000, "duration": 1.0, "warmup": 0.2, "dst": "198.19.201.2",
        "local_iface": "data0", "remote_iface": "data1", "command": "./run.py --remote x"}


def facts(same_kernel=True):
    local = dict(LOCAL)
    other = dict(LOCAL, hostname="b") if same_kernel else dict(LOCAL, hostname="b", boot_id="b2")
    return {"target": "root@b", "local": local, "remote": other,
            "zcbench": {"shipped": False}, "clock": remote.clock_state(local, other)}


class Merge(unittest.TestCase):
    def test_sent_is_the_generators_and_received_the_sinks(self):
        gen, sink = outputs(sent=1000, received=990)
        record = remote.merge_sides(SPEC, gen, raw(), sink, raw(rcvbuf=10, cpu=2_000_000),
                                    "sink", facts())
        self.assertEqual(record["raw"]["sent_total"], 1000)
        self.assertEqual(record["raw"]["received_total"], 990)
        self.assertEqual(record["derived"]["lost_packets"], 10)
        self.assertEqual(record["derived"]["drops"]["socket_rcvbuf"], 10)
        self.assertTrue(record["derived"]["reconciliation_ok"])
        self.assertEqual(record["status"], "pass")
        self.assertAlmostEqual(record["derived"]["cpu_ns_per_pkt_sink"], 2_000_000 / 990)
        self.assertAlmostEqual(record["derived"]["cpu_ns_per_pkt_total"], 3_000_000 / 990)
        self.assertEqual(record["params"]["remote"]["sink"]["host"], "remote")
        self.assertEqual(record["params"]["remote"]["sink"]["iface"], "data1")
        self.assertEqual(record["params"]["remote"]["gen"]["iface"], "data0")

    def test_unexplained_loss_fails_the_reconciliation(self):
        gen, sink = outputs(sent=100000, received=99000)
        record = remote.merge_sides(SPEC, gen, raw(), sink, raw(), "sink", facts())
        self.assertFalse(record["derived"]["reconciliation_ok"])
        self.assertEqual(record["derived"]["drops"]["unattributed"], 1000)
        self.assertEqual(record["status"], "fail")
        self.assertIn("reconciliation", record["reason"])

    def test_backlog_drops_are_not_counted_twice_by_the_link(self):
        gen, sink = outputs(sent=1000, received=900)
        record = remote.merge_sides(SPEC, gen, raw(), sink, raw(softnet=100, rx_dropped=100),
                                    "sink", facts())
        drops = record["derived"]["drops"]
        self.assertEqual((drops["backlog"], drops["link"], drops["unattributed"]), (100, 0, 0))

    def test_duplicates_fail_integrity(self):
        gen, sink = outputs(sent=1000, received=1001, unique=1000, duplicates=1)
        record = remote.merge_sides(SPEC, gen, raw(), sink, raw(), "sink", facts())
        self.assertEqual(record["status"], "fail")
        self.assertIn("1 duplicates", record["reason"])

    def test_latency_only_with_one_clock(self):
        gen, sink = outputs()
        same = remote.merge_sides(SPEC, gen, raw(), sink, raw(), "sink", facts(True))
        self.assertEqual(same["derived"]["latency_p99_ns"], 20)
        apart = remote.merge_sides(SPEC, gen, raw(), sink, raw(), "gen", facts(False))
        self.assertIsNone(apart["derived"]["latency_p99_ns"])
        self.assertIsNone(apart["raw"]["latency_ns"])
        self.assertIn("unavailable", apart["derived"]["latency_reason"])
        self.assertFalse(apart["params"]["remote"]["clock"]["one_way_latency"])

    def test_record_carries_what_the_schema_requires(self):
        gen, sink = outputs()
        record = remote.merge_sides(SPEC, gen, raw(), sink, raw(), "gen", facts())
        for key in ("rx", "tx", "payload_bytes", "frame_bytes", "repetition", "lab_mode", "kernel"):
            self.assertIn(key, record["params"])
        for key in ("window_ns", "sent_total", "received_in_window"):
            self.assertIn(key, record["raw"])
        for key in ("offered_pps", "sent_pps", "received_pps", "lost_packets", "loss_ratio",
                    "cpu_ns_per_pkt_sink", "cpu_ns_per_pkt_total", "drops", "reconciliation_ok"):
            self.assertIn(key, record["derived"])


class SideSummary(unittest.TestCase):
    """merge_sides reads either output shape of send/sink: today's and the trial record's."""

    def test_todays_send_and_sink_output(self):
        gen, sink = outputs(sent=500, received=499)
        self.assertEqual(remote.side_summary(gen)["sent"], 500)
        self.assertEqual(remote.side_summary(gen)["seconds"], 1.0)
        self.assertEqual(remote.side_summary(sink)["received"], 499)
        self.assertIsNone(remote.side_summary(sink)["active_seconds"])

    def test_trial_records_in_a_run_document(self):
        send = {"records": [{"kind": "trial", "raw": {"sent_total": 700, "window_ns": 2_000_000_000,
                                                      "tx_errors": 3}}]}
        sink = {"kind": "trial", "derived": {"received_pps_window": 100.0},
                "raw": {"received_total": 690, "active_ns": 1_000_000_000,
                        "sequence": {"checked": True, "unique": 690},
                        "driver_stats": {"rx": {"tp_drops": 10}}}}
        g, k = remote.side_summary(send), remote.side_summary(sink)
        self.assertEqual((g["sent"], g["seconds"], g["tx_errors"]), (700, 2.0, 3))
        self.assertEqual((k["received"], k["active_seconds"], k["kernel_stats"]),
                         (690, 1.0, {"tp_drops": 10}))
        record = remote.merge_sides(SPEC, send, raw(), sink, raw(), "sink", facts())
        self.assertEqual(record["derived"]["drops"]["ring"], 10)
        self.assertEqual(record["derived"]["received_pps"], 690.0)  # over the active second
        self.assertTrue(record["derived"]["reconciliation_ok"])

    def test_sent_pps_is_over_the_generators_window_without_its_warm_up(self):
        # Bug: sent_total (warm-up included) over the window read 53 333 pps for a
        # 50 000 pps flood with a 0.2 s warm-up and a 3 s window.
        send = {"kind": "trial", "raw": {"sent_total": 160_000, "sent_in_window": 150_000,
                                         "window_ns": 3_000_000_000}}
        sink = {"kind": "trial", "raw": {"received_total": 160_000, "active_ns": 3_200_000_000,
                                         "sequence": {"checked": True, "unique": 160_000}}}
        record = remote.merge_sides(SPEC, send, raw(), sink, raw(), "sink", facts())
        self.assertAlmostEqual(record["derived"]["sent_pps"], 50_000.0)
        self.assertEqual(record["raw"]["sent_total"], 160_000)


class SideCommands(unittest.TestCase):
    def test_sink_window_covers_the_generator(self):
        spec = dict(SPEC, gen_iface="data0", sink_iface="data1", rx_opts={"batch": "32"})
        gen, sink = remote.side_commands("/a/zcbench", "/b/zcbench", spec)
        self.assertEqual(gen[:2], ["/a/zcbench", "send"])
        self.assertIn("198.19.201.2", gen)
        self.assertEqual(sink[:4], ["/b/zcbench", "sink", "--iface", "data1"])
        window = float(sink[sink.index("--duration") + 1])
        self.assertGreaterEqual(window, SPEC["warmup"] + SPEC["duration"] + remote.SINK_SLACK_S)
        self.assertIn("batch=32", sink)


class CommandLine(unittest.TestCase):
    """./run.py --remote ... is the remote command; its options are checked before any work."""

    @classmethod
    def setUpClass(cls):
        # run.py is a thin wrapper over zcrun: its command line is zcrun.cli's.
        import sys
        import types
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from zcrun import cli, common
        cls.run_py = types.SimpleNamespace(parse_args=cli.parse_args, main=cli.main,
                                           ZcbenchError=common.ZcbenchError)

    def test_remote_option_routes_to_the_remote_command(self):
        name, args = self.run_py.parse_args(["--remote", "root@b", "--iface", "eth1",
                                             "--remote-iface", "eth2", "--rate", "max"])
        self.assertEqual(name, "remote")
        spec = remote.spec_from_args(args, 46)
        self.assertEqual((spec["target"], spec["side"], spec["local_iface"], spec["remote_iface"],
                          spec["rate"]), ("root@b", "sink", "eth1", "eth2", "max"))

    def test_missing_interface_is_a_usage_error(self):
        _, args = self.run_py.parse_args(["--remote", "root@b", "--iface", "eth1"])
        with self.assertRaises(remote.RemoteError) as caught:
            remote.spec_from_args(args, 46)
        self.assertEqual(caught.exception.kind, "usage")
        self.assertIn("--remote-iface", str(caught.exception))

    def test_bad_driver_option_is_a_usage_error(self):
        _, args = self.run_py.parse_args(["--remote", "b", "--iface", "x", "--remote-iface", "y",
                                          "--rx-opt", "batch"])
        with self.assertRaises(remote.RemoteError) as caught:
            remote.spec_from_args(args, 46)
        self.assertIn("KEY=VALUE", str(caught.exception))

    def test_bad_rate_and_side_are_refused_by_the_parser(self):
        for argv in (["--remote", "b", "--rate", "-5"], ["--remote", "b", "--remote-side", "both"]):
            with self.assertRaises(self.run_py.ZcbenchError) as caught:
                self.run_py.parse_args(argv)
            self.assertEqual(caught.exception.exit_code, 2)

    def test_exit_code_of_a_usage_error_through_main(self):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            code = self.run_py.main(["run.py", "--remote", "b", "--iface", "x"])
        self.assertEqual(code, 2)
        self.assertIn("--remote-iface", err.getvalue())


if __name__ == "__main__":
    unittest.main()
