"""Unit tests of zcrun/wire.py (run.py on named interfaces): the parts that
need no interface. The trials themselves are tests/wire_trial.sh."""
import argparse
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from zcrun import wire  # noqa: E402


def args_for(*argv):
    p = argparse.ArgumentParser()
    p.add_argument("--repetitions", type=int)
    wire.add_arguments(p)
    return p.parse_args(list(argv))


class WirePair(unittest.TestCase):
    def test_two_ports(self):
        self.assertEqual(wire.parse_wire_pair("eth1:eth2"), ("eth1", "eth2"))

    def test_same_port_twice_is_one_clear_line(self):
        with self.assertRaises(wire.WireUsageError) as cm:
            wire.parse_wire_pair("eth1:eth1")
        self.assertIn("names the same port twice", str(cm.exception))
        self.assertNotIn("\n", str(cm.exception))

    def test_malformed(self):
        for bad in ("eth1", "eth1:", ":eth2", "a:b:c", ""):
            with self.assertRaises(wire.WireUsageError):
                wire.parse_wire_pair(bad)


class Validate(unittest.TestCase):
    def test_iface_needs_external_source(self):
        with self.assertRaises(wire.WireUsageError) as cm:
            wire.validate(args_for("--iface", "eth1"))
        self.assertIn("--source external", str(cm.exception))
        wire.validate(args_for("--iface", "eth1", "--source", "external"))

    def test_iface_and_wire_exclude(self):
        with self.assertRaises(wire.WireUsageError):
            wire.validate(args_for("--iface", "eth1", "--wire", "eth2:eth3", "--source", "external"))

    def test_wire_same_port(self):
        with self.assertRaises(wire.WireUsageError):
            wire.validate(args_for("--wire", "eth1:eth1"))


class SuiteSinks(unittest.TestCase):
    def test_lab_only_sinks_left_out_and_order_kept(self):
        suite = {"trials": [{"rx": ["recv", "tpacket_v3:accounting=count", "tcpdump", "recv"]},
                            {"rx": "af_xdp", "lab_mode": "xdp"}, {"rx": "xdp_drop"}, {}]}
        self.assertEqual(wire.plan_rx(suite, None)[0], ["recv", "tpacket_v3:accounting=count", "recvmmsg"])

    def test_xdp_sinks_only_on_one_rx_queue(self):
        suite = {"trials": [{"rx": ["recv", "af_xdp", "xdp_drop:accounting=count", "tcpdump"]}]}
        run, left = wire.plan_rx(suite, 1)
        self.assertEqual(run, ["recv", "af_xdp", "xdp_drop:accounting=count"])
        self.assertEqual([x["rx"] for x in left], ["tcpdump"])
        for queues, said in ((4, "has 4 RX queues"), (None, "unknown number of RX queues")):
            run, left = wire.plan_rx(suite, queues)
            self.assertEqual(run, ["recv"])
            self.assertEqual([x["rx"] for x in left], ["af_xdp", "xdp_drop:accounting=count", "tcpdump"])
            self.assertIn(said, left[0]["reason"])
            self.assertTrue(all(x["reason"] and "\n" not in x["reason"] for x in left))

    def test_rx_queue_count_reads_sysfs(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            for q in ("rx-0", "rx-1", "tx-0"):
                Path(d, "eth9", "queues", q).mkdir(parents=True)
            self.assertEqual(wire.rx_queue_count("eth9", d), 2)
            self.assertIsNone(wire.rx_queue_count("missing0", d))

    def test_rx_flags(self):
        self.assertEqual(wire.rx_flags("tpacket_v3:block_size=1M,accounting=count"),
                         ["--rx", "tpacket_v3", "--rx-opt", "block_size=1M", "--rx-opt", "accounting=count"])

    def test_sink_command_carries_the_window_and_source(self):
        a = args_for("--iface", "eth1", "--source", "external", "--seq", "offset=4,width=8,endian=big",
                     "--wire-rate", "50000")
        a.size = None
        cmd = wire.sink_command("zcbench", a, "eth1", "recvmmsg", 2, "capture")
        for part in (["--iface", "eth1"], ["--source", "external"], ["--seq", "offset=4,width=8,endian=big"],
                     ["--rate", "50000"], ["--repetition", "2"]):
            i = cmd.index(part[0])
            self.assertEqual(cmd[i:i + 2], part)


    def test_hw_timestamps_passed_to_every_sink(self):
        a = args_for("--iface", "eth1", "--source", "external", "--hw-timestamps")
        a.size = None
        wire.validate(a)
        for rx in ("recvmmsg", "tpacket_v3:accounting=count", "af_xdp"):  # zcbench skips the ones that cannot
            self.assertIn("--hw-timestamps", wire.sink_command("zcbench", a, "eth1", rx, 0, "capture"))
        b = args_for("--iface", "eth1", "--source", "external")
        b.size = None
        self.assertNotIn("--hw-timestamps", wire.sink_command("zcbench", b, "eth1", "recvmmsg", 0, "capture"))

    def test_hw_timestamps_needs_a_named_interface(self):
        with self.assertRaisesRegex(wire.WireUsageError, "--iface IF or --wire"):
            wire.validate(args_for("--hw-timestamps"))


class Merge(unittest.TestCase):
    def test_sender_counters_beside_the_sink(self):
        sink = {"kind": "trial", "params": {"lab_mode": "wire", "rx": "recv"}, "raw": {"received_total": 9},
                "derived": {"received_pps": 1.0}}
        send = {"params": {"iface": "eth1", "tx": "tx_ring"}, "raw": {"sent_total": 10},
                "derived": {"sent_pps": 2.0}, "command": "zcbench send ..."}
        m = wire.merge_send(sink, send)
        self.assertEqual(m["raw"]["send"]["sent_total"], 10)
        self.assertEqual(m["raw"]["received_total"], 9)
        self.assertEqual(m["params"]["send"]["tx"], "tx_ring")
        self.assertNotIn("send", sink["raw"])  # the harness's record is not edited in place


if __name__ == "__main__":
    unittest.main()
