"""The gate's CPU metric and its margins: the sink thread's own CPU per packet is gated,
the lab CPUs' busy time is measured beside it but never decides a verdict, and a margin
from a handful of A/A pairs is not the largest of them alone."""
import copy
import random
import unittest

from reports import compare


def run(run_id, rng, sink_thread=3000.0, total=200_000.0, noise=0.01, reps=5):
    records = []
    for rep in range(reps):
        j = lambda: 1 + rng.uniform(-noise, noise)
        records.append({
            "kind": "trial", "suite": "aa", "name": f"recv #{rep}", "status": "pass",
            "reason": "", "raw": {},
            "params": {"tx": "sendmmsg", "rx": "recv", "payload_bytes": 272,
                       "rate_mode": "fixed", "offered_pps": 20000.0, "repetition": rep,
                       "kernel": "6.18", "lab_mode": "rps"},
            "derived": {"received_pps": 20000.0 * j(), "loss_ratio": 0.0,
                        "cpu_ns_per_pkt_sink_thread": sink_thread * j(),
                        "cpu_ns_per_pkt_total": total * j()}})
    return {"schema_version": 1, "run_id": run_id, "status": "complete",
            "context": {"host": {"hostname": "h", "cpu_model": "m"}}, "records": records}


class GatedMetricTest(unittest.TestCase):
    def test_the_sink_thread_cpu_is_gated_and_the_lab_cpus_are_not(self):
        self.assertIn("cpu_ns_per_pkt_sink_thread", compare.METRICS)
        self.assertNotIn("cpu_ns_per_pkt_total", compare.METRICS)
        self.assertIn("cpu_ns_per_pkt_total", compare.NOISE_ONLY_METRICS)

    def test_a_noise_only_metric_is_compared_but_never_decides(self):
        base = run("a", random.Random(1))
        cur = run("b", random.Random(2), total=300_000.0)   # other work on the lab CPUs
        row = compare.compare(base, cur)["configs"][0]
        self.assertEqual(row["verdict"], "unchanged")
        self.assertEqual([m["verdict"] for m in row["noise_only"]], ["regressed"])
        slower = compare.compare(base, run("c", random.Random(3), sink_thread=3600.0))
        self.assertEqual(slower["configs"][0]["verdict"], "regressed")
        self.assertIn("sink-thread CPU ns/pkt", slower["configs"][0]["why"])

    def test_a_planted_regression_of_each_metric_is_counted_gated_or_not(self):
        docs = [run(f"r{k}", random.Random(k)) for k in range(4)]
        cal = compare.calibrate(docs, created_at="2026-12-02T00:00:00Z")
        planted = cal["planted_regression"]
        for m in ("received_pps", "cpu_ns_per_pkt_sink_thread", "cpu_ns_per_pkt_total"):
            self.assertIn(m, planted["calibrated"])
            self.assertIn(m, planted["calibrated_cross_validated"])
        # 1 % repetition noise: a 10 % regression is caught under held-out margins too.
        self.assertEqual(planted["calibrated_cross_validated"]["cpu_ns_per_pkt_sink_thread"]
                         ["rate"], 1.0)
        summary = compare.calibration_summary(cal)
        self.assertTrue(summary["per_metric"]["cpu_ns_per_pkt_sink_thread"]["gated"])
        self.assertFalse(summary["per_metric"]["cpu_ns_per_pkt_total"]["gated"])
        self.assertNotIn("cpu_ns_per_pkt_total", summary["margins"])
        self.assertIn("(not gated)", "\n".join(compare.calibration_lines(cal)))


class MarginTest(unittest.TestCase):
    def test_few_pairs_are_extrapolated_from_their_median(self):
        # Six A/A pairs: the largest (4 %) would be the rank quantile; the median change
        # (2 %) says a 0.983 quantile near 2.39 sigma = 7.1 %.
        changes = [0.01, 0.015, 0.02, 0.02, 0.03, 0.04]
        expected = compare.Z_QUANTILE * 0.02 / compare.HALF_NORMAL_MEDIAN
        self.assertAlmostEqual(compare.margin_estimate(changes), expected)
        self.assertGreater(compare.margin_estimate(changes), max(changes))

    def test_enough_pairs_take_the_rank_quantile(self):
        changes = [0.01] * 20 + [0.05]
        self.assertEqual(compare.margin_estimate(changes), compare._quantile(
            changes, compare.CALIBRATION_QUANTILE))
        # A wild pair among few does not set the margin alone: the larger estimate wins.
        self.assertEqual(compare.margin_estimate([0.01, 0.01, 0.5]), 0.5)



class NoiseSectionTest(unittest.TestCase):
    def test_the_report_states_each_metrics_false_alarms_and_planted_detection(self):
        from reports.load import from_doc
        from reports.sections import noise
        docs = [run(f"r{k}", random.Random(k)) for k in range(4)]
        doc = copy.deepcopy(docs[0])
        _, html = noise.render(from_doc(doc))
        self.assertIn("No A/A calibration for this run", str(html))
        self.assertIn("CV sink-thread CPU ns/pkt", str(html))
        cal = compare.calibrate(docs, created_at="2026-12-02T00:00:00Z")
        doc["context"]["options"] = {"calibration": compare.calibration_summary(cal)}
        _, html = noise.render(from_doc(doc))
        table = str(html).split('id="aa-metrics"', 1)[1].split("</table>", 1)[0]
        self.assertIn("sink-thread CPU ns/pkt</td><td>gated", table)
        self.assertIn("CPU ns/pkt (lab CPUs)</td><td>shown only", table)
        self.assertIn("100\u00a0%", table)   # the planted 10 % caught at 1 % noise


if __name__ == "__main__":
    unittest.main()


class PlantedRetrialTest(unittest.TestCase):
    def test_a_planted_regression_reaches_the_retrial_a_verdict_reads(self):
        # Bug: plant_regression scaled kind "trial" records only, so a contaminated
        # repetition, which the verdict reads from its clean retrial, kept its old value.
        doc = run("a", random.Random(1), noise=0.0)
        first = doc["records"][0]
        first["derived"]["contamination"] = {"contaminated": True}
        clean = copy.deepcopy(first)
        clean["derived"]["contamination"] = {"contaminated": False}
        doc["records"].append({"kind": "retrial", "suite": "aa",
                               "name": f"retrial 1 of {first['name']}",
                               "params": {"retrial_of": first["name"], "attempt": 1},
                               "status": "pass", "derived": {"contaminated": False},
                               "trial": clean})
        planted = compare.plant_regression(doc, "cpu_ns_per_pkt_sink_thread")
        values = [r["derived"]["cpu_ns_per_pkt_sink_thread"]
                  for r in compare.measured_trials(planted["records"])]
        self.assertEqual(len(values), 5)
        for v in values:
            self.assertAlmostEqual(v, 3000.0 * (1 + compare.PLANTED_REGRESSION))
        # The original run is untouched.
        self.assertEqual(doc["records"][-1]["trial"]["derived"]["cpu_ns_per_pkt_sink_thread"],
                         3000.0)
