"""One truth: the record's vocabulary is the harness's, the numbers add up, rates the
generator did not reach are marked, and the decision view never ranks a ceiling."""
import copy
import csv
import json
import os
import tempfile
import unittest

from reports import compare, load, render, results_csv, validate, vocab
from reports.sections import decision, latency
from reports.tests.helpers import ALL_NAMES, claim2_variant, fixture_doc, trial, trial_doc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL = os.path.join(ROOT, "tests", "fixtures", "real.run.json")
VOCAB = os.path.join(ROOT, "tests", "fixtures", "vocabularies.json")


def real_doc():
    with open(REAL, encoding="utf-8") as f:
        return json.load(f)


def with_vocab(doc):
    with open(VOCAB, encoding="utf-8") as f:
        doc["context"]["vocabularies"] = json.load(f)
    return doc


class VocabularyTest(unittest.TestCase):
    def test_schema_drop_keys_are_the_harness_layers(self):
        with open(VOCAB, encoding="utf-8") as f:
            v = json.load(f)
        drops = validate.load_schema()["$defs"]["trial_derived"]["properties"]["drops"]
        expected = {"lost"} | {l["name"] for l in v["drop_layers"]} | set(v["drop_remainders"])
        self.assertEqual(set(drops["required"]), expected)
        self.assertEqual(set(drops["properties"]), expected)
        self.assertFalse(drops["additionalProperties"])

    def test_layers_come_from_the_document_not_a_copy(self):
        doc = with_vocab(trial_doc([trial()]))
        doc["context"]["vocabularies"]["drop_layers"] = [{"name": "only_this", "counter": "x"}]
        self.assertEqual(vocab.drop_layers(doc), [("only_this", "x")])
        del doc["context"]["vocabularies"]
        names = [n for n, _ in vocab.drop_layers(doc)]
        self.assertIn("socket_other", names)  # what the record carries
        self.assertNotIn("unattributed", names)


def trial_records(doc):
    """Every trial record a document holds, retrials' and NDR steps' included."""
    for r in doc["records"]:
        if r.get("kind") == "trial":
            yield r
        elif isinstance(r.get("trial"), dict):
            yield r["trial"]


class StoredRunsAddUpTest(unittest.TestCase):
    """The report fixtures are real runs: what the report shows of them must add up."""

    def test_drop_stacks_add_up_to_lost_in_every_fixture(self):
        n = 0
        for name in ALL_NAMES:
            doc = fixture_doc(name)
            layers = [l for l, _ in vocab.drop_layers(doc)]
            for r in trial_records(doc):
                if r["status"] not in ("pass", "fail"):
                    continue
                d, dc = r["derived"]["drops"], r["raw"]["drop_counters"]
                with self.subTest(fixture=name, trial=r["name"]):
                    self.assertEqual(sum(d[l] for l in layers) + d["unattributed"]
                                     - d["over_attributed"], d["lost"])
                    self.assertEqual(d["lost"], max(0, dc["sent"] - dc["received_unique"]))
                    self.assertEqual(r["derived"]["lost_packets"], d["lost"])
                    n += 1
        self.assertGreater(n, 50)

    def test_generator_short_rows_are_flagged_and_marked_in_every_fixture(self):
        short = 0
        for name in ALL_NAMES:
            doc = fixture_doc(name)
            ratio = vocab.generator_short_ratio(doc)
            for r in trial_records(doc):
                d = r.get("derived") or {}
                if r["status"] not in ("pass", "fail"):
                    continue
                with self.subTest(fixture=name, trial=r["name"]):
                    if d["achieved_ratio"] is None:
                        self.assertFalse(d["generator_short"])
                    else:
                        self.assertEqual(d["generator_short"], d["achieved_ratio"] < ratio)
                short += bool(d["generator_short"])
            t = load.from_doc(doc).trials
            for _, row in t.iterrows() if "rate_label" in t else []:
                self.assertEqual("generator short" in row["rate_label"],
                                 bool(row["generator_short"]), (name, row["rate_label"]))
        self.assertGreater(short, 0)   # complete offers a rate no generator here reaches

    def test_a_lossy_real_trial_attributes_its_drops(self):
        # complete's 64 KiB receive buffer at max rate drops in the socket layer.
        lossy = [r for r in trial_records(fixture_doc("complete"))
                 if r["status"] in ("pass", "fail") and r["derived"]["lost_packets"]]
        self.assertTrue(lossy)
        for r in lossy:
            d = r["derived"]["drops"]
            with self.subTest(r["name"]):
                self.assertGreater(d["lost"] - d["unattributed"], 0)


@unittest.skipUnless(os.path.exists(REAL), "tests/fixtures/real.run.json not generated")
class RealRunTest(unittest.TestCase):
    def test_real_run_matches_the_schema(self):
        self.assertEqual(validate.errors(real_doc()), [])

    def test_drop_stacks_add_up_to_lost(self):
        for r in real_doc()["records"]:
            if r["status"] not in ("pass", "fail"):
                continue
            d = r["derived"]["drops"]
            layers = sum(d[n] for n, _ in vocab.drop_layers(real_doc()))
            with self.subTest(r["name"]):
                self.assertEqual(layers + d["unattributed"] - d["over_attributed"], d["lost"])
                dc = r["raw"]["drop_counters"]
                self.assertEqual(d["lost"], max(0, dc["sent"] - dc["received_unique"]))

    def test_unreachable_rate_is_flagged_and_labelled(self):
        doc = real_doc()
        ratio = vocab.generator_short_ratio(doc)
        for r in doc["records"]:
            d = r["derived"]
            with self.subTest(r["name"]):
                if d["achieved_ratio"] is None:
                    self.assertFalse(d["generator_short"])  # rate max promised nothing
                else:
                    self.assertEqual(d["generator_short"], d["achieved_ratio"] < ratio)
        run = load.from_doc(doc)
        t = run.trials
        self.assertTrue(t[t["params.offered_pps"] == 20_000_000]["generator_short"].all())
        for _, r in t.iterrows():
            self.assertEqual("generator short" in r["rate_label"], bool(r["generator_short"]))

    def test_report_renders_with_decision_first(self):
        html = render.render_run(load.from_doc(real_doc()), strict=True)
        self.assertLess(html.index("Decision view"), html.index("Summary"))


class GeneratorShortTest(unittest.TestCase):
    def test_claims_rows_of_a_short_generator_are_marked(self):
        run = load.from_doc(fixture_doc("complete"))
        claims = run.trials[run.trials["params.claim"] == 2]
        self.assertTrue(claims["generator_short"].all())  # 905 kpps of 2.35 Mpps
        html = render.render_run(run, strict=True)
        self.assertIn("generator short", html)


class DecisionTest(unittest.TestCase):
    def doc(self):
        t = [trial(rx="recv", rate=100000.0, received=100000.0, cpu_ns_per_pkt_total=3000.0,
                   loss_ratio=0.0),
             trial(rx="recvmmsg", rate=100000.0, received=100000.0, cpu_ns_per_pkt_total=1500.0,
                   loss_ratio=0.0),
             trial(rx="xdp_drop", rate=100000.0, received=100000.0, cpu_ns_per_pkt_total=100.0,
                   loss_ratio=0.0),
             trial(rx="tpacket_v3", rate=100000.0, received=90000.0, cpu_ns_per_pkt_total=500.0,
                   loss_ratio=0.1)]
        return with_vocab(trial_doc(t))

    def test_cheapest_that_kept_it_never_a_ceiling(self):
        rows = decision.decide(load.from_doc(self.doc()))
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual(r["best"]["params.rx"], "recvmmsg")
        self.assertAlmostEqual(r["cores"], 100000 * 1500 / 1e9)
        self.assertTrue(any("ceiling" in x and "xdp_drop" in x for x in r["reference"]))
        self.assertEqual([o for o in r["others"]], ["sendto → recv"])

    def test_a_short_generator_cannot_qualify(self):
        doc = self.doc()
        for rec in doc["records"]:
            if rec["params"]["rx"] == "recvmmsg":
                rec["derived"]["generator_short"] = True
                rec["derived"]["achieved_ratio"] = 0.5
        r = decision.decide(load.from_doc(doc))[0]
        self.assertEqual(r["best"]["params.rx"], "recv")
        self.assertEqual(r["short"], ["sendto → recvmmsg"])


class LatencyMergeTest(unittest.TestCase):
    def test_histograms_merge_by_counts_not_by_averaging_percentiles(self):
        a = {"raw": {"latency_ns": {"buckets": [[1000, 99], [100000, 1]]}}}
        b = {"raw": {"latency_ns": {"buckets": [[1000, 1], [100000, 99]]}}}
        h = latency.merged_histogram([a, b])
        self.assertEqual(h, {1000: 100, 100000: 100})
        self.assertEqual(latency.quantile(h, 0.5), 1000)
        self.assertEqual(latency.quantile(h, 0.51), 100000)
        self.assertIsNone(latency.quantile({}, 0.5))


class ResultsCsvTest(unittest.TestCase):
    def test_one_row_per_trial_with_the_harness_layers(self):
        doc = with_vocab(trial_doc([trial(rep=0), trial(rep=1)]))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "run.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(doc, f)
            render.write_report(path)
            with open(os.path.join(d, "results.csv"), encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 2)
        self.assertIn("drops_socket_other", rows[0])
        self.assertNotIn("drops_sink_gaps", rows[0])
        self.assertEqual({r["repetition"] for r in rows}, {"0", "1"})


class ComparableTest(unittest.TestCase):
    def test_different_path_settings_are_not_comparable(self):
        base = fixture_doc("baseline")
        cur = copy.deepcopy(base)
        base["context"]["host"]["sysctls"] = {"net.core.rmem_max": "212992"}
        cur["context"]["host"]["sysctls"] = {"net.core.rmem_max": "67108864"}
        result = compare.compare(base, cur)
        self.assertTrue(all(r["verdict"] == "not comparable" for r in result["configs"]))
        self.assertIn("net.core.rmem_max", result["configs"][0]["why"])

    def test_unrecorded_fields_do_not_block(self):
        self.assertEqual(compare.host_differences({"cpu_governor": "performance"}, {}), [])
        self.assertEqual(compare.host_differences({"smt": True}, {"smt": False}),
                         ["smt (True vs False)"])




class ClaimsSayWhatWasRemeasuredTest(unittest.TestCase):
    def test_claim2_states_the_rate_was_not_reached(self):
        from reports.sections import claims
        doc, tagged = claim2_variant()   # complete's real generator-short trials
        self.assertTrue(all(r["derived"]["generator_short"] for r in tagged))
        html = str(claims.render(load.from_doc(doc))[1])
        self.assertIn("Not re-measured at", html)
        self.assertIn("generator short", html)


if __name__ == "__main__":
    unittest.main()
