import copy
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import unittest

from html import escape

from reports import fmt
from reports.load import from_doc
from reports.render import render_run
from reports.sections import SECTIONS, register
from reports.tests.helpers import (NAMES, claim2_variant, fixture_doc, fixture_path,
                                   measured_records, trial, trial_doc)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def render(doc):
    return render_run(from_doc(doc), strict=True)


@functools.lru_cache(maxsize=None)
def rendered(name):
    """A fixture's page, rendered once for all tests that only read it."""
    return render(fixture_doc(name))


class SectionsTest(unittest.TestCase):
    def test_each_section_renders_each_fixture(self):
        for name in NAMES:
            run = from_doc(fixture_doc(name))
            for s in SECTIONS:
                with self.subTest(fixture=name, section=s.key):
                    title, html = s.render(run)
                    self.assertTrue(title)
                    self.assertIsInstance(str(html), str)

    def test_sections_survive_sparse_records(self):
        skip = trial(status="skip")
        skip["raw"], skip["derived"] = {}, {}
        error = {"kind": "trial", "suite": "quick", "name": "x", "params": {}, "status": "error",
                 "reason": "lab setup failed", "raw": {}, "derived": {}}
        bare = trial()  # a pass with nothing optional: no lab, no cpu_delta, no latency
        bare["derived"] = {"received_pps": 10.0, "sent_pps": 10.0}
        conf = {"kind": "conformance", "suite": "c", "name": "n", "params": {},
                "status": "skip", "reason": "unsupported: x", "raw": {}, "derived": {}}
        for records in ([skip], [error], [bare], [conf], [skip, error, bare, conf]):
            doc = trial_doc(records)
            doc["context"] = {}
            with self.subTest(records=[r["status"] for r in records]):
                html = render(doc)
                self.assertIn("</html>", html)

    def test_environment_states_the_aa_false_alarm_rate(self):
        from reports.sections import environment
        doc = fixture_doc(NAMES[0])
        _, html = environment.render(from_doc(doc))
        self.assertIn("not measured for this run", str(html))
        doc = copy.deepcopy(doc)
        doc.setdefault("context", {}).setdefault("options", {})["calibration"] = {
            "created_at": "2026-12-02T02:00:00Z", "host": {"hostname": "lab1"}, "runs": 6,
            "margins": {}, "false_alarm_rate": 0.031, "false_alarm_rate_fixed": 0.27,
            "false_alarm_method": "cross-validated"}
        _, html = environment.render(from_doc(doc))
        self.assertIn("3.1 % with the calibrated margins (cross-validated), 27.0 %", str(html))
        self.assertIn("6 runs on lab1", str(html))

    def test_wire_section_says_which_transports_were_left_out(self):
        from reports.sections import wire
        doc = copy.deepcopy(fixture_doc(NAMES[0]))
        doc.setdefault("context", {}).setdefault("options", {})["wire_left_out"] = [
            {"suite": "capture", "rx": "af_xdp", "reason": "af_xdp: binds one XSK on RX queue 0 and the interface has 4 RX queues"}]
        _, html = wire.render(from_doc(doc))
        self.assertIn("capture: af_xdp — af_xdp: binds one XSK on RX queue 0 and the interface has 4 RX queues", str(html))

    def test_conformance_matrix_shows_reason_inline(self):
        html = rendered("complete")
        checks = measured_records(fixture_doc("complete"), "conformance")
        self.assertTrue(checks)
        for r in checks:
            with self.subTest(r["name"]):
                if r["reason"]:   # the harness's own words (gtest's, for a failure)
                    self.assertIn(escape(r["reason"].splitlines()[0][:40]), html)
        statuses = {r["status"] for r in checks}
        self.assertEqual('class="cell fail"' in html, "fail" in statuses)
        self.assertEqual('class="cell pass"' in html, "pass" in statuses)

    def test_claim_two_now_and_unmeasured_claims(self):
        doc, tagged = claim2_variant()
        self.assertTrue(tagged)
        html = render(doc)
        self.assertIn("kept of offered", html)
        self.assertIn("not measured in this run: needs trials tagged claim 1 with\n"
                      "    tpacket_v3, tpacket_v1, pktgen", html)
        # kept of offered = received over the offered rate, median of the repetitions;
        # the generator fell short, and the claim says so.
        kept = statistics.median(r["derived"]["received_pps"] / r["params"]["offered_pps"]
                                 for r in tagged)
        self.assertIn(fmt.pct(kept), html)
        self.assertIn("Not re-measured at", html)
        html = rendered("empty")
        self.assertEqual(html.count("not measured in this run"), 5)

    def test_rates_chart_draws_the_lab_ceiling_where_measured(self):
        from reports.sections import rates
        with_ceiling = from_doc(trial_doc([trial("recv", received=1000.0, rep=r) for r in range(3)] +
                                          [trial("xdp_drop", received=800000.0, rep=r) for r in range(3)]))
        _, html = rates.render(with_ceiling)
        self.assertIn("lab ceiling", html)
        self.assertIn("stroke-dasharray", html)  # the dashed ceiling line in the SVG
        _, html = rates.render(from_doc(trial_doc([trial("recv", rep=r) for r in range(3)])))
        self.assertIn("Lab ceiling: not measured in this run", html)
        self.assertNotIn("stroke-dasharray", html)

    def test_register_adds_a_section(self):
        saved = list(SECTIONS)
        try:
            register("family_x", lambda run: ("Family X", "<p>x</p>"), before="environment")
            html = render(fixture_doc("empty"))
            self.assertIn('href="#family_x"', html)
            self.assertLess(html.index('id="family_x"'), html.index('id="environment"'))
            with self.assertRaises(ValueError):
                register("family_x", lambda run: ("", ""))
        finally:
            SECTIONS[:] = saved


class PageTest(unittest.TestCase):
    def test_toc_links_every_section(self):
        html = rendered("complete")
        for s in SECTIONS:
            self.assertIn(f'href="#{s.key}"', html)
            self.assertIn(f'id="{s.key}"', html)
        self.assertNotIn('class="error"', html)

    def test_interrupted_banner(self):
        # interrupted: the complete suite, SIGINT to run.py after a few trials.
        doc = fixture_doc("interrupted")
        self.assertEqual(doc["status"], "interrupted")
        done = len(from_doc(doc).measured)
        # The same suite cut short: fewer records than the complete run of it.
        self.assertLess(len(doc["records"]), len(fixture_doc("complete")["records"]))
        html = rendered("interrupted")
        self.assertIn(f"Partial run: {done} trials completed", html)
        self.assertNotIn("Partial run", rendered("complete"))

    def test_no_external_references(self):
        for name in NAMES:
            html = rendered(name)
            with self.subTest(name):
                self.assertIsNone(re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', html))
                self.assertNotIn("http://", html)
                self.assertNotIn("https://", html)
                self.assertNotIn("<script", html.lower())
                self.assertNotIn("@import", html)
                self.assertIsNone(re.search(r"url\(\s*['\"]?(https?:)?//", html))

    def test_strings_from_the_json_are_escaped(self):
        doc = copy.deepcopy(fixture_doc("complete"))
        evil = '<script>alert("x")</script>'
        doc["records"][-1]["reason"] = evil  # a conformance record
        doc["records"][0]["params"]["rx"] = "<img src=x onerror=alert(1)>"
        doc["context"]["host"]["hostname"] = '"><b>host</b>'
        doc["run_id"] = "</title><script>1</script>"
        html = render(doc)
        self.assertNotIn("<script", html)
        self.assertNotIn("<img", html)
        self.assertNotIn("<b>host</b>", html)
        self.assertIn("&lt;script&gt;alert(", html)

    def test_cli_writes_report_beside_run_json(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "run.json")
            shutil.copy(fixture_path("interrupted"), src)
            p = subprocess.run([sys.executable, "-m", "reports", src], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = os.path.join(d, "report.html")
            self.assertTrue(os.path.getsize(out) > 10_000)
            other = os.path.join(d, "x.html")
            p = subprocess.run([sys.executable, "-m", "reports", src, "-o", other], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.exists(other))
            p = subprocess.run([sys.executable, "-m", "reports", os.path.join(d, "none.json")],
                               cwd=REPO, capture_output=True, text=True, timeout=120)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("none.json", p.stderr)


if __name__ == "__main__":
    unittest.main()


class SizeMixLabelTest(unittest.TestCase):
    def test_every_section_names_a_mix_as_imix(self):
        # complete's real paced recvmmsg trials relabelled as a mix: the complete
        # suite sends no mix (a mix trial would double the fixture's size); what
        # the sections print comes from params.size_mix alone.
        doc = copy.deepcopy(fixture_doc("complete"))
        mixed = 0
        for r in doc["records"]:
            if r.get("kind") == "trial" and r.get("status") in ("pass", "fail"):
                r["params"]["size_mix"] = "64:7,576:4,1518:1"
                mixed += 1
        self.assertGreater(mixed, 0)
        run = from_doc(doc)
        for s in SECTIONS:
            with self.subTest(section=s.key):
                _, html = s.render(run)
                if not html:
                    continue
                self.assertNotRegex(html, r">\d+\u00a0B</td>",
                                    "a mix's row printed as its largest payload")
        self.assertIn("IMIX 64:7,576:4,1518:1", render(doc))
