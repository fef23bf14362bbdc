"""The scale section: rows per path and worker count, efficiency against one
worker, and the note that says why the sweep stops."""
import unittest

from reports import scale
from reports.load import from_doc
from reports.render import render_run
from reports.tests.helpers import trial, trial_doc


def scale_trial(label, workers, received, rep=0, side="sink"):
    t = trial(rx="recvmmsg", received=received, rep=rep, cpu_ns_per_pkt_total=500.0 * workers)
    t["suite"] = "scale"
    t["params"].update({"series": "scale", "label": label,
                        "sink_threads": workers if side == "sink" else 1,
                        "gen_threads": workers if side == "generator" else 1})
    return t


def doc(trials, cpu_count=2):
    d = trial_doc(trials)
    d.setdefault("context", {}).setdefault("host", {})["cpu_count"] = cpu_count
    return d


class ScaleTest(unittest.TestCase):
    def test_efficiency_is_pps_n_over_n_times_pps_1_on_medians(self):
        trials = [scale_trial("rx recvmmsg reuseport", 1, v, rep=i) for i, v in enumerate([900, 1000, 1100])]
        trials += [scale_trial("rx recvmmsg reuseport", 2, v, rep=i) for i, v in enumerate([1400, 1500, 1600])]
        rows = scale.scale_rows(from_doc(doc(trials)).measured)
        self.assertEqual([(r["workers"], r["pps"], r["n"]) for r in rows], [(1, 1000, 3), (2, 1500, 3)])
        self.assertAlmostEqual(rows[0]["efficiency"], 1.0)
        self.assertAlmostEqual(rows[1]["efficiency"], 0.75)
        self.assertEqual(rows[1]["cpu"], 1000.0)

    def test_generator_paths_count_generator_workers(self):
        trials = [scale_trial("tx af_xdp per queue", 1, 2000, side="generator"),
                  scale_trial("tx af_xdp per queue", 2, 3000, side="generator")]
        rows = scale.scale_rows(from_doc(doc(trials)).measured)
        self.assertEqual([(r["side"], r["workers"]) for r in rows], [("generator", 1), ("generator", 2)])
        self.assertAlmostEqual(rows[1]["efficiency"], 0.75)

    def test_no_efficiency_without_a_one_worker_baseline(self):
        rows = scale.scale_rows(from_doc(doc([scale_trial("rx x", 2, 1000)])).measured)
        self.assertIsNone(rows[0]["efficiency"])

    def test_other_suites_are_left_out(self):
        self.assertEqual(scale.scale_rows(from_doc(doc([trial()])).measured), [])

    def test_stop_note_names_the_cpus(self):
        rows = [{"workers": 1}, {"workers": 2}]
        self.assertIn("2 CPUs online", scale.stop_note(rows, 2))
        self.assertIn("shares a CPU", scale.stop_note(rows, 2))
        self.assertIn("of 8 CPUs", scale.stop_note(rows, 8))

    def test_section_is_in_the_page(self):
        trials = [scale_trial("rx recvmmsg reuseport", 1, 1000), scale_trial("rx recvmmsg reuseport", 2, 1500)]
        html = render_run(from_doc(doc(trials)), strict=True)
        self.assertIn("Scaling with workers", html)
        self.assertIn("rx recvmmsg reuseport", html)
        self.assertIn("75\u00a0%", html)


if __name__ == "__main__":
    unittest.main()
