"""The latency section's stack / wake-up split (raw.latency_ns.stack, .wakeup)."""
import unittest

from reports.load import from_doc
from reports.sections import latency
from reports.tests.helpers import trial, trial_doc


def hist(*pairs):
    return {"count": sum(n for _, n in pairs), "buckets": [list(p) for p in pairs]}


def stamped_trial(rx, rep, stack, wakeup, total, source="software", hw_reason=None):
    t = trial(rx=rx, rep=rep, rate=20000, latency_p50_ns=total[0][0], latency_p99_ns=total[-1][0])
    n = sum(c for _, c in total)
    t["raw"]["latency_ns"] = dict(hist(*total), stack=hist(*stack), wakeup=hist(*wakeup),
                                  stamps={"software": n if source == "software" else 0,
                                          "hardware": n if source == "hardware" else 0,
                                          "unstamped": 0, "order_violations": 0,
                                          "source": source})
    t["raw"]["timestamps"] = {"software": True, "hardware": False, "hardware_reason": hw_reason
                              or "veth reports no SOF_TIMESTAMPING_RX_HARDWARE (ETHTOOL_GET_TS_INFO)"}
    return t


class LatencySplit(unittest.TestCase):
    def test_split_rows_merge_repetitions_and_name_the_source(self):
        recs = [stamped_trial("recvmmsg", 0, stack=[(7167, 90), (30719, 10)],
                              wakeup=[(4095, 99), (61439, 1)], total=[(12287, 100)]),
                stamped_trial("recvmmsg", 1, stack=[(7167, 100)], wakeup=[(4095, 100)],
                              total=[(12287, 100)])]
        _, html = latency.render(from_doc(trial_doc(recs)))
        html = str(html)
        self.assertIn("Stack vs wake-up", html)
        self.assertIn("software", html)
        self.assertIn("veth reports no SOF_TIMESTAMPING_RX_HARDWARE", html)
        # Merged over both repetitions: 200 stamped, stack p99 = 30719 (10 of 200 above 7167).
        rows = [latency.split_row({"pair": "p", "params.payload_bytes": 272, "rate_label": "r"},
                                  recs)]
        self.assertEqual(rows[0]["stamped"], 200)
        self.assertEqual(rows[0]["stack_p50"], 7167)
        self.assertEqual(rows[0]["stack_p99"], 30719)
        self.assertEqual(rows[0]["wakeup_p99"], 4095)  # 1 of 200 above: below the 99th percentile
        self.assertEqual(rows[0]["source"], "software")

    def test_no_split_without_stamps(self):
        t = trial(rx="af_xdp", rate=20000, latency_p50_ns=5000, latency_p99_ns=9000)
        t["raw"]["latency_ns"] = dict(hist((5119, 10)), stack=hist(), wakeup=hist(),
                                      stamps={"software": 0, "hardware": 0, "unstamped": 0,
                                              "order_violations": 0, "source": "none"})
        _, html = latency.render(from_doc(trial_doc([t])))
        self.assertNotIn("Stack vs wake-up", str(html))
        self.assertIsNone(latency.split_row({"pair": "p", "params.payload_bytes": 1,
                                             "rate_label": "r"}, [t]))

    def test_records_before_the_split_still_render(self):
        t = trial(rx="recv", rate=20000, latency_p50_ns=5000, latency_p99_ns=9000)
        t["raw"]["latency_ns"] = hist((5119, 10))
        _, html = latency.render(from_doc(trial_doc([t])))
        self.assertIn("5119\xa0ns", str(html))  # the merged total, as before the split
        self.assertNotIn("Stack vs wake-up", str(html))

    def test_stamp_source_lists_each_once(self):
        a = stamped_trial("tpacket_v3", 0, [(1, 1)], [(1, 1)], [(1, 1)])
        b = stamped_trial("tpacket_v3", 1, [(1, 1)], [(1, 1)], [(1, 1)], source="hardware")
        self.assertEqual(latency.stamp_source([a, a, b]), "software + hardware")
        self.assertIsNone(latency.stamp_source([trial()]))


if __name__ == "__main__":
    unittest.main()
