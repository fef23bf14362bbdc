"""NDR, noise, time series, baselines, kernels and claims in the report, and the
comparison module, on stored and hand-made result documents."""
import copy
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

from reports import compare, validate
from reports.load import from_doc
from reports.sections import claims, conformance, ndr, noise, notes, suites, summary
from reports.tests.helpers import fixture_calibration, fixture_doc, trial, trial_doc


def ndr_record(rx="recv", size=272, ndr_pps=250_000, limited=False, confirmed=True,
               emulated=False, search="quick-0"):
    params = {"rx": rx, "rx_opts": {}, "tx": "sendmmsg", "tx_opts": {}, "payload_bytes": size,
              "frame_bytes": size + 46, "loss_threshold": 0.0, "resolution": "5%",
              "method": "binary search", "duration_s": 0.5, "ndr_search_id": search,
              "lab_mode": "rps", "kernel": "6.18"}
    if emulated:
        params["emulated"] = True
    return {"kind": "ndr", "suite": "quick", "name": f"NDR sendmmsg->{rx} {size}B",
            "command": "./run.py --ndr", "params": params, "status": "pass", "reason": "",
            "raw": {"steps": [
                {"step": 0, "role": "max", "offered_pps": None, "sent_pps": 600_000.0,
                 "received_pps": 300_000.0, "loss_ratio": 0.5, "outcome": "loss",
                 "status": "pass"},
                {"step": 1, "role": "probe", "offered_pps": 300_000, "sent_pps": 250_000.0,
                 "received_pps": 250_000.0, "loss_ratio": 0.0, "outcome": "generator short",
                 "status": "pass"},
                {"step": 2, "role": "confirm", "offered_pps": ndr_pps, "sent_pps": ndr_pps,
                 "received_pps": ndr_pps, "loss_ratio": 0.0, "outcome": "pass",
                 "status": "pass"}]},
            "derived": {"ndr_pps": ndr_pps, "ndr_mbps": ndr_pps * size * 8 / 1e6, "steps": 3,
                        "confirmed": confirmed, "generator_limited": limited,
                        "generator_max_pps": 600_000.0, "resolution_pps": 30_000.0,
                        "elapsed_s": 4.2}}


def step_trial(search="quick-0", step=0):
    t = trial(rx="recv", rep=0, received=999_999.0)
    t["params"].update(ndr_search_id=search, ndr_step=step, ndr_role="probe")
    return t


def with_intervals(t, rates, dt_ns=100_000_000):
    iv, sent = [], 0
    for i, r in enumerate(rates):
        sent += int(r * dt_ns / 1e9)
        iv.append({"t_ns": (i + 1) * dt_ns, "sent": sent, "received": sent,
                   "cpu_busy_ns": [(i + 1) * 10_000_000, (i + 1) * 50_000_000]})
    t["raw"]["intervals"] = iv
    return t


class CompareModuleTest(unittest.TestCase):
    # baseline and regressed are the same real suite; regressed ran while a busy loop
    # held the sink CPU (fixtures/make_fixtures.sh): a real regression, of whichever
    # configurations it hurt beyond their noise.
    def test_real_regression_is_flagged_by_name(self):
        result = compare.compare(fixture_doc("baseline"), fixture_doc("regressed"))
        self.assertEqual(result["exit_code"], 1)
        self.assertEqual(result["counts"]["not comparable"], 0)
        regressed = [r for r in result["configs"] if r["verdict"] == "regressed"]
        self.assertTrue(regressed)
        for row in regressed:
            with self.subTest(row["config"]):
                worse = [m for m in row["metrics"] if m["verdict"] == "regressed"]
                self.assertTrue(worse)
                for m in worse:
                    self.assertLess(m["p"], compare.ALPHA)
                    self.assertEqual(m["method"], "exact")   # 5 repetitions a side
                    direction = compare.METRICS[m["metric"]][0]
                    self.assertLess(direction * m["delta"], 0)
                    self.assertGreater(abs(m["change"]), m["threshold"])
                    self.assertIn(m["label"], row["why"])

    def test_aa_pair_is_unchanged_within_its_measured_noise(self):
        a, b = fixture_doc("aa_a"), fixture_doc("aa_b")
        cal = fixture_calibration()
        self.assertEqual(cal["runs"], [a["run_id"], b["run_id"]])
        result = compare.compare(a, b, cal)
        self.assertEqual(result["counts"]["not comparable"], 0)
        self.assertEqual(result["exit_code"], 0)
        self.assertEqual(result["counts"]["unchanged"], len(result["configs"]))
        self.assertEqual(result["calibration"]["runs"], 2)
        # What the fixed 5 % effect says of the same real pair is what calibrate stored.
        fixed = compare.compare(a, b)
        alarms = fixed["counts"]["regressed"] + fixed["counts"]["improved"]
        self.assertEqual(alarms, cal["false_alarms"]["fixed_threshold"]["false_alarms"])

    def test_reversed_regression_is_an_improvement(self):
        forward = compare.compare(fixture_doc("baseline"), fixture_doc("regressed"))
        result = compare.compare(fixture_doc("regressed"), fixture_doc("baseline"))
        self.assertEqual(result["exit_code"], 0 if not forward["counts"]["improved"] else 1)
        verdicts = {r["config"]: r for r in result["configs"]}
        for row in forward["configs"]:
            rates = [m for m in row["metrics"] if m["metric"] == "received_pps"]
            if rates and rates[0]["verdict"] == "regressed":
                back = next(m for m in verdicts[row["config"]]["metrics"]
                            if m["metric"] == "received_pps")
                self.assertEqual(back["verdict"], "improved")

    def test_other_kernel_cpu_or_too_few_repetitions_are_not_comparable(self):
        other = copy.deepcopy(fixture_doc("regressed"))
        for r in other["records"]:
            r["params"]["kernel"] = "6.1.0-emulated"
        result = compare.compare(fixture_doc("baseline"), other)
        self.assertEqual(result["counts"]["not comparable"], len(result["configs"]))
        self.assertIn("different kernel", result["configs"][0]["why"])
        self.assertEqual(result["exit_code"], 0)
        other = copy.deepcopy(fixture_doc("regressed"))
        other["context"]["host"]["cpu_model"] = "Some Other CPU"
        self.assertEqual(compare.compare(fixture_doc("baseline"), other)["counts"]["regressed"], 0)
        few = [trial(rep=i, received=1000.0 + i) for i in range(3)]
        slower = [trial(rep=i, received=500.0 + i) for i in range(3)]
        result = compare.compare(trial_doc(few), trial_doc(slower))
        self.assertEqual(result["configs"][0]["verdict"], "not comparable")
        self.assertIn("too few repetitions", result["configs"][0]["why"])

    def test_conformance_pass_to_fail_is_a_regression(self):
        base, cur = fixture_doc("baseline"), copy.deepcopy(fixture_doc("baseline"))
        check = next(r for r in cur["records"] if r["kind"] == "conformance"
                     and r["status"] == "pass")
        check["status"], check["reason"] = "fail", "broke"
        result = compare.compare(base, cur)
        self.assertEqual(result["exit_code"], 1)
        self.assertEqual(result["conformance"][0]["verdict"], "regressed")

    def test_html_and_junit(self):
        result = compare.compare(fixture_doc("baseline"), fixture_doc("regressed"))
        page = compare.render_html(result)
        self.assertIn('id="verdict"', page)
        self.assertIn("REGRESSION", page)
        self.assertNotIn("http://", page.replace("https://", ""))
        doc = fixture_doc("regressed")
        root = ET.fromstring(compare.junit_xml(doc, result))
        suites = {s.get("name"): s for s in root}
        self.assertEqual(suites["baseline"].get("failures"), str(result["counts"]["regressed"]))
        self.assertEqual(int(suites["trials"].get("tests")),
                         sum(1 for r in doc["records"] if r["kind"] in ("trial", "ndr")))


class NdrSectionTest(unittest.TestCase):
    def doc(self):
        recs = [trial(rx="recv", rep=i, received=300_000.0) for i in range(3)]
        recs += [trial(rx="xdp_drop", rep=i, received=1_000_000.0 + i) for i in range(3)]
        recs += [ndr_record(), ndr_record(rx="recvmmsg", ndr_pps=240_000, limited=True,
                                          confirmed=False, search="quick-1"),
                 ndr_record(rx="recvmmsg", ndr_pps=50_000, emulated=True, search="vm-0"),
                 step_trial(), step_trial(step=1)]
        return trial_doc(recs)

    def test_steps_are_kept_out_of_the_trial_tables(self):
        run = from_doc(self.doc())
        self.assertEqual(len(run.ndr), 3)
        self.assertEqual(len(run.ndr_steps), 2)
        self.assertFalse((run.trials["params.ndr_search_id"].notna()).any())

    def test_ndr_step_records_are_read_as_steps(self):
        # run.py's step records carry the harness's trial untouched under "trial".
        inner = trial(rx="recv", rep=0, received=250_000.0)
        step = {"kind": "ndr_step", "suite": "quick", "name": "NDR step 0 (max)",
                "params": {"ndr_search_id": "quick-0", "ndr_step": 0, "ndr_role": "max",
                           "offered_pps": None, "loss_threshold": 0.0},
                "status": "pass", "reason": "", "raw": {},
                "derived": {"ndr_outcome": "loss"}, "trial": copy.deepcopy(inner)}
        doc = trial_doc([ndr_record(), step])
        self.assertEqual(validate.errors(doc), [])
        run = from_doc(doc)
        self.assertTrue(run.trials.empty)
        self.assertEqual(list(run.ndr_steps["params.ndr_role"]), ["max"])
        self.assertEqual(list(run.ndr_steps["derived.ndr_outcome"]), ["loss"])
        self.assertEqual(list(run.ndr_steps["params.rx"]), ["recv"])
        self.assertEqual(step["trial"], inner)  # the view copied, never edited
        bad = copy.deepcopy(doc)
        del bad["records"][1]["trial"]
        self.assertTrue(validate.errors(bad))

    def test_run_pys_step_and_retrial_records_are_schema_valid(self):
        # The records zcrun writes around a harness trial, as zcrun builds them.
        from zcrun import ndr as zndr, retrial as zretrial
        inner = trial(rx="recv", rep=1, received=250_000.0)
        spec = dict(zndr.NDR_DEFAULTS, rx="recv", payload_bytes=272, suite="quick")
        step = zndr.step_record(spec, "quick-0", 0, "max", None, "loss", copy.deepcopy(inner))
        again = zretrial.retrial_record(inner, 1, copy.deepcopy(inner))
        doc = trial_doc([ndr_record(), inner, step, again])
        self.assertEqual(validate.errors(doc), [])

    def test_table_has_ceiling_tags_and_steps(self):
        run = from_doc(self.doc())
        rows = ndr.rows(run)
        host = [r for r in rows if not r["emulated"]]
        self.assertEqual(host[0]["ceiling"], 1_000_001.0)
        self.assertAlmostEqual(host[0]["of_ceiling"], 250_000 / 1_000_001.0)
        _, html = ndr.render(run)
        self.assertIn("generator-limited", html)
        self.assertIn("functional only", html)
        self.assertIn("generator short", html)
        self.assertIn('class="ndr-steps"', html)
        self.assertIn("binary search", html)
        self.assertIn("0.5 s", html)

    def test_ceiling_not_measured_without_xdp_drop(self):
        doc = trial_doc([ndr_record()])
        _, html = ndr.render(from_doc(doc))
        self.assertIn("not measured", html)

    def test_ndr_record_is_schema_valid_and_checked(self):
        doc = self.doc()
        self.assertEqual(validate.errors(doc), [])
        bad = copy.deepcopy(doc)
        del next(r for r in bad["records"] if r["kind"] == "ndr")["derived"]["ndr_pps"]
        self.assertTrue(validate.errors(bad))


class NoiseAndSeriesTest(unittest.TestCase):
    def test_noisy_configuration_is_flagged(self):
        recs = [trial(rx="recv", rep=i, received=v) for i, v in enumerate([100.0, 200.0, 300.0])]
        recs += [trial(rx="recvmmsg", rep=i, received=1000.0 + i) for i in range(3)]
        _, html = summary.render(from_doc(trial_doc(recs)))
        self.assertIn('class="noisy"', html)
        _, section = noise.render(from_doc(trial_doc(recs)))
        self.assertIn("noisy: received", section)
        self.assertIn("steady", section)

    def test_steadiness_and_time_series(self):
        steady = with_intervals(trial(rep=0), [1000.0] * 10)
        stalled = with_intervals(trial(rep=1), [1000.0] * 5 + [0.0] + [1000.0] * 4)
        self.assertAlmostEqual(noise.steadiness(steady), 0.0, places=6)
        self.assertGreater(noise.steadiness(stalled), 0.2)
        s = noise.intervals(steady)
        self.assertEqual(len(s["t"]), 10)
        self.assertAlmostEqual(s["received"][3], 1000.0)
        self.assertAlmostEqual(s["cpu"][2][1], 50.0)  # 50 ms busy per 100 ms
        _, html = noise.render(from_doc(trial_doc([steady, stalled])))
        self.assertIn('<details class="timeseries">', html)
        self.assertIn('<svg class="spark"', html)


class KernelsClaimsNotesTest(unittest.TestCase):
    def test_conformance_matrix_has_a_column_per_kernel(self):
        doc = fixture_doc("complete")
        extra = copy.deepcopy(next(r for r in doc["records"] if r["kind"] == "conformance"))
        extra["params"]["kernel"] = "6.1.0-debian"
        extra["params"]["emulated"] = True
        doc["records"].append(extra)
        _, html = conformance.render(from_doc(doc))
        self.assertIn("6.1.0-debian (emulated)", html)
        self.assertIn(f"{extra['params']['transport']} · 6.18", html)

    def test_conformance_matrix_takes_any_number_of_kernels(self):
        # The host and two guests (vm/zcvm.py's debian-6.1 and debian-6.12), and a
        # made-up 6.9 that a string sort would put after 6.18.
        doc = fixture_doc("complete")
        base = next(r for r in doc["records"] if r["kind"] == "conformance")
        for kernel in ("6.12.117+deb12-amd64", "6.1.0-debian", "6.9.0"):
            extra = copy.deepcopy(base)
            extra["params"].update(kernel=kernel, emulated=True)
            doc["records"].append(extra)
        transports, _, totals = conformance.matrix(from_doc(doc).conformance)
        t = base["params"]["transport"]
        mine = [c for c in transports if c.startswith(t + " · ")]
        self.assertEqual(mine, [f"{t} · 6.1.0-debian (emulated)", f"{t} · 6.9.0 (emulated)",
                                f"{t} · 6.12.117+deb12-amd64 (emulated)", f"{t} · {base['params']['kernel']}"])
        for c in mine:
            self.assertTrue(totals[c], c)

    def test_emulated_trials_are_never_ranked(self):
        host = [trial(rx="recv", rep=i, received=100.0) for i in range(3)]
        vm = [trial(rx="recvmmsg", rep=i, received=900.0) for i in range(3)]
        for t in vm:
            t["params"]["emulated"] = True
            t["params"]["kernel"] = "6.1"
        _, html = summary.render(from_doc(trial_doc(host + vm)))
        best = html.split("Best sink per payload size", 1)[1].split("</table>", 1)[0]
        self.assertIn("recv", best)
        self.assertNotIn("recvmmsg", best)
        self.assertIn("functional only", html)

    def test_a_subsection_per_suite(self):
        recs = [trial(rx="recv", rep=i) for i in range(2)]
        other = trial(rx="recvmmsg")
        other["suite"] = "capture"
        vm = trial(rx="recv", rep=0)
        vm["params"].update(emulated=True, kernel="6.1.0-debian")
        _, html = suites.render(from_doc(trial_doc(recs + [other, vm, ndr_record()])))
        self.assertIn('id="suite-quick"', html)
        self.assertIn('id="suite-capture"', html)
        self.assertIn("1 NDR searches", html)
        self.assertIn("6.1.0-debian (functional only)", html)

    def test_claims_not_measured_and_claim5_ratio(self):
        recs = []
        for rx, cpu in (("io_uring_recv", 500.0), ("recv", 2000.0)):
            for i in range(3):
                t = trial(rx=rx, rep=i, rate=100000, received=100000.0, cpu_ns_per_pkt_total=cpu)
                t["params"]["claim"] = 5
                recs.append(t)
        _, html = claims.render(from_doc(trial_doc(recs)))
        self.assertIn("not measured in this run", html)
        self.assertIn("io_uring_recv vs recv", html)
        self.assertIn("×0.25", html)

    def test_claim1_and_claim3_ratios(self):
        recs = []
        for rx, rate, cpu_pct in (("tpacket_v3", 900.0, 30.0), ("tpacket_v1", 600.0, 50.0)):
            for i in range(3):
                t = trial(rx=rx, rep=i, received=rate, sink_cpu_percent=cpu_pct)
                t["params"]["claim"] = 1
                recs.append(t)
        for tx, rate in (("tx_ring", 1000.0), ("sendto", 250.0)):
            t = trial(rx="recv", size=7200, received=rate)
            t["params"].update(tx=tx, claim=3)
            recs.append(t)
        _, html = claims.render(from_doc(trial_doc(recs)))
        self.assertIn("tpacket_v3 vs tpacket_v1", html)
        self.assertIn("×1.50", html)   # captured 900 vs 600
        self.assertIn("×0.60", html)   # sink CPU 30 % vs 50 %
        self.assertIn("×4.00 of sendto", html)

    def test_driver_notes_are_shown_per_transport(self):
        t = trial(rx="af_xdp")
        t["raw"]["driver_stats"] = {"rx": {"notes": ["copy mode: veth has no zero-copy"],
                                           "zerocopy_refused": "EOPNOTSUPP"}, "tx": {}}
        _, html = notes.render(from_doc(trial_doc([t])))
        self.assertIn("copy mode: veth has no zero-copy", html)
        self.assertIn("zero-copy refused: EOPNOTSUPP", html)

    def test_tables_export_csv(self):
        _, html = summary.render(from_doc(fixture_doc("complete")))
        self.assertIn('download="best.csv"', html)
        href = html.split('download="best.csv" href="', 1)[1].split('"', 1)[0]
        text = urllib.parse.unquote(href.split(",", 1)[1])
        self.assertTrue(text.startswith("payload_bytes,best,"), text[:80])
        self.assertGreater(len(text.splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
