import statistics
import unittest

from reports import fmt
from reports.load import from_doc
from reports.sections import summary
from reports.stats import by_config
from reports.tests.helpers import fixture_doc, trial, trial_doc


class MedianTest(unittest.TestCase):
    def test_median_min_max_n_over_repetitions(self):
        doc = trial_doc([trial(rep=0, received=100.0), trial(rep=1, received=500.0),
                         trial(rep=2, received=300.0), trial(rx="recvmmsg", rep=0, received=7.0)])
        agg = by_config(from_doc(doc).trials, ["derived.received_pps"])
        self.assertEqual(len(agg), 2)  # repetitions collapse, sinks do not
        recv = agg[agg["params.rx"] == "recv"].iloc[0]
        self.assertEqual(recv["derived.received_pps.med"], 300.0)
        self.assertEqual(recv["derived.received_pps.min"], 100.0)
        self.assertEqual(recv["derived.received_pps.max"], 500.0)
        self.assertEqual(recv["derived.received_pps.n"], 3)

    def test_even_n_median_and_skips_excluded(self):
        skip = trial(rep=3, status="skip")
        skip["raw"], skip["derived"] = {}, {}
        doc = trial_doc([trial(rep=0, received=100.0), trial(rep=1, received=200.0), skip])
        row = by_config(from_doc(doc).trials, ["derived.received_pps"]).iloc[0]
        self.assertEqual(row["derived.received_pps.med"], 150.0)
        self.assertEqual(row["derived.received_pps.n"], 2)

    def test_fixture_medians(self):
        # complete is a real run: each configuration's median, min and max are those of
        # its measured repetitions' received rates, read straight from the trial table.
        run = from_doc(fixture_doc("complete"))
        agg = by_config(run.trials, ["derived.received_pps"])
        self.assertGreater(len(agg), 3)
        for _, row in agg.iterrows():
            t = run.measured
            mine = t[(t["pair"] == row["pair"]) & (t["params.payload_bytes"] == row["params.payload_bytes"])
                     & (t["rate_label"] == row["rate_label"])]["derived.received_pps"].dropna()
            with self.subTest(pair=row["pair"], rate=row["rate_label"]):
                self.assertEqual(row["derived.received_pps.n"], len(mine))
                self.assertAlmostEqual(row["derived.received_pps.med"], statistics.median(mine))
                self.assertEqual(row["derived.received_pps.min"], min(mine))
                self.assertEqual(row["derived.received_pps.max"], max(mine))
        # The suite ran 3 repetitions of every configuration.
        self.assertEqual(set(agg["derived.received_pps.n"]), {3})

    def test_sink_labels_show_only_varying_options(self):
        run = from_doc(fixture_doc("complete"))
        by_rx = {}
        for r in fixture_doc("complete")["records"]:
            if r["kind"] == "trial":
                by_rx.setdefault(r["params"]["rx"], []).append(r["params"].get("rx_opts") or {})
        sinks = set(run.trials["sink"])
        for rx, opts in by_rx.items():
            varying = {k for k in set().union(*opts) if len({str(o.get(k)) for o in opts}) > 1}
            mine = {s for s in sinks if s.split(" ")[0] == rx}
            with self.subTest(rx=rx):
                self.assertTrue(mine)
                shown = {kv.split("=")[0] for s in mine for kv in s.split(" ")[1:]}
                self.assertEqual(shown, varying)   # only what tells its configs apart


class BestSinkTest(unittest.TestCase):
    def test_fixture_best_is_the_highest_median_at_the_top_rate(self):
        run = from_doc(fixture_doc("complete"))
        agg = by_config(run.trials, summary.METRICS)
        best = summary.best_per_size(agg)
        self.assertTrue(best)
        for size, (b, second) in best.items():
            with self.subTest(size=size):
                self.assertEqual(b["params.payload_bytes"], size)
                if second is not None:
                    self.assertGreaterEqual(b["derived.received_pps.med"],
                                            second["derived.received_pps.med"])

    def test_best_uses_median_and_top_rate(self):
        trials = [
            # recv: one lucky repetition, a lower median.
            trial(rx="recv", rep=0, received=900.0), trial(rx="recv", rep=1, received=100.0),
            trial(rx="recv", rep=2, received=110.0),
            # recvmmsg: steady, higher median.
            trial(rx="recvmmsg", rep=0, received=500.0), trial(rx="recvmmsg", rep=1,
                                                               received=510.0),
            trial(rx="recvmmsg", rep=2, received=490.0),
            # A fixed-rate trial with more received must not count: not the top rate.
            trial(rx="splice", rep=0, received=5000.0, rate=5000),
        ]
        run = from_doc(trial_doc(trials))
        best, second = summary.best_per_size(by_config(run.trials, summary.METRICS))[272]
        self.assertEqual(best["params.rx"], "recvmmsg")
        self.assertEqual(best["derived.received_pps.med"], 500.0)
        self.assertEqual(second["params.rx"], "recv")


class FormatTest(unittest.TestCase):
    def test_missing_values_render_as_dash(self):
        for f in (fmt.pps, fmt.ns, fmt.pct, fmt.count, fmt.size, fmt.mbytes):
            self.assertEqual(f(None), "–")
            self.assertEqual(f(float("nan")), "–")

    def test_units(self):
        self.assertEqual(fmt.pps(2_350_000), "2.35\u00a0Mpps")
        self.assertEqual(fmt.ns(1850), "1850\u00a0ns")
        self.assertEqual(fmt.pct(0.25), "25\u00a0%")


if __name__ == "__main__":
    unittest.main()
