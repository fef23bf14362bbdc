import copy
import io
import unittest
from contextlib import redirect_stdout

from reports import validate
from reports.tests.helpers import ALL_NAMES, NAMES, fixture_doc, fixture_path, trial, trial_doc


class SchemaTest(unittest.TestCase):
    def setUp(self):
        self.schema = validate.load_schema()

    def test_fixtures_are_valid(self):
        for name in ALL_NAMES:
            with self.subTest(name):
                self.assertEqual(validate.errors(fixture_doc(name), self.schema), [])

    def test_trial_without_rx_is_rejected_with_its_path(self):
        doc = fixture_doc("complete")
        del doc["records"][0]["params"]["rx"]
        errs = validate.errors(doc, self.schema)
        self.assertTrue(any(e.startswith("$.records[0].params:") and "'rx'" in e for e in errs),
                        errs)

    def test_measured_trial_needs_received_pps_but_skip_may_be_empty(self):
        t = trial()
        del t["derived"]["received_pps"]
        self.assertTrue(validate.errors(trial_doc([t]), self.schema))
        skip = trial(status="skip")
        skip["raw"], skip["derived"] = {}, {}
        skip["reason"] = "unsupported: no such socket family"
        self.assertEqual(validate.errors(trial_doc([skip]), self.schema), [])

    def test_hardware_stamp_fields(self):
        # sink --hw-timestamps (docs/results-format.md "Hardware stamps"): the
        # shapes harness/accounting.cc add_hw_split_json and PhcClock write.
        hist = {"count": 2, "p50": 512, "p99": 512, "p999": 512, "max": 500, "buckets": [[512, 2]]}
        t = trial()
        t["raw"]["latency_ns"] = {"count": 0, "buckets": [],
                                  "nic_interarrival": dict(hist, backwards=0, clock="NIC PHC"),
                                  "nic_split": {"available": False, "order_violations": 0,
                                                "reason": "no PHC-to-system offset measured: no PHC"}}
        t["raw"]["timestamps"] = {"software": True, "hardware": True, "phc_index": -1,
                                  "phc": {"device": None, "offset_valid": False, "reason": "no PHC"}}
        self.assertEqual(validate.errors(trial_doc([t]), self.schema), [])
        ok = copy.deepcopy(t)
        ok["raw"]["latency_ns"].update(nic_kernel=hist, kernel_user=hist)
        ok["raw"]["latency_ns"]["nic_split"] = {"available": True, "order_violations": 0,
                                                "clocks": {"nic_kernel": "PHC -> REALTIME", "kernel_user": "x"}}
        ok["raw"]["timestamps"]["phc"] = {"device": "/dev/ptp0", "offset_valid": True,
                                          "method": "PTP_SYS_OFFSET_EXTENDED", "measurements": 3, "failures": 0,
                                          "realtime_minus_phc_first_ns": -37000000010,
                                          "realtime_minus_phc_last_ns": -37000000004, "drift_ns": 6,
                                          "widest_bracket_ns": 300}
        self.assertEqual(validate.errors(trial_doc([ok]), self.schema), [])
        for mutate in (lambda r: r["raw"]["latency_ns"]["nic_split"].pop("reason"),
                       lambda r: r["raw"]["timestamps"]["phc"].pop("reason"),
                       lambda r: r["raw"]["latency_ns"]["nic_interarrival"].update(backwards=-1)):
            bad = copy.deepcopy(t)
            mutate(bad)
            self.assertTrue(validate.errors(trial_doc([bad]), self.schema))
        no_clocks = copy.deepcopy(ok)
        del no_clocks["raw"]["latency_ns"]["nic_split"]["clocks"]
        self.assertTrue(validate.errors(trial_doc([no_clocks]), self.schema))

    def test_non_pass_needs_a_reason(self):
        t = trial(status="fail")
        t["reason"] = ""
        self.assertTrue(validate.errors(trial_doc([t]), self.schema))

    def test_unknown_fields_are_allowed_and_offered_may_be_null(self):
        doc = copy.deepcopy(fixture_doc("complete"))
        doc["future_field"] = {"x": 1}
        doc["records"][0]["params"]["new_knob"] = "on"
        doc["records"][0]["derived"]["offered_pps"] = None
        self.assertEqual(validate.errors(doc, self.schema), [])

    def test_bad_enums(self):
        for mutate in (lambda d: d.update(status="done"),
                       lambda d: d.update(schema_version=2),
                       lambda d: d["records"][0].update(status="ok"),
                       lambda d: d["records"][0].update(kind="bench")):
            doc = fixture_doc("complete")
            mutate(doc)
            self.assertTrue(validate.errors(doc, self.schema))

    def test_cli_exit_codes(self):
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(validate.main([fixture_path(n) for n in NAMES]), 0)
            self.assertEqual(validate.main(["/nonexistent/run.json"]), 1)
        self.assertIn("valid", out.getvalue())


if __name__ == "__main__":
    unittest.main()
