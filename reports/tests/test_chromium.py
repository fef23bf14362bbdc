"""Open rendered reports in headless Chromium: the page must paint something
and log no script or console error about itself."""
import os
import signal
import subprocess
import tempfile
import unittest

from reports import compare
from reports.load import from_doc
from reports.render import render_run
from reports.sections import SECTIONS
from reports.tests.helpers import fixture_doc

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_S = 30  # one run takes 2-4 s here; the limit only guards against a hang


def chromium(url, tmp, *mode):
    """Run headless Chromium once on url; returns (returncode, stdout, stderr).

    It runs in its own session so that on a timeout exactly the process
    group we started is killed, children (zygote, renderer) included.
    """
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=2000", "--window-size=1280,2000", *mode, url]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="replace", start_new_session=True, cwd=tmp)
    try:
        out, err = p.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"chromium did not finish within {TIMEOUT_S} s on {url}")
    return p.returncode, out, err


def page_errors(stderr, report_name):
    """Log lines that blame the page: uncaught exceptions, console errors,
    failed loads of the report's own resources (dbus noise etc. is not ours)."""
    bad = []
    for line in stderr.splitlines():
        if "Uncaught" in line:
            bad.append(line)
        elif "CONSOLE" in line and (report_name in line or "file://" in line):
            bad.append(line)
        elif report_name in line and ("ERROR" in line or "net::ERR" in line):
            bad.append(line)
    return bad


def distinct_colours(png_path):
    import matplotlib.image as mpimg
    import numpy as np
    img = mpimg.imread(png_path)
    flat = (img[..., :3] * 255).astype("uint8").reshape(-1, 3)
    return len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0))


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} not installed")
class ChromiumTest(unittest.TestCase):
    def render_to(self, tmp, name, doc=None):
        path = os.path.join(tmp, f"{name}-report.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(render_run(from_doc(doc or fixture_doc(name)), strict=True))
        return path

    def check_fixture(self, name, doc=None):
        with tempfile.TemporaryDirectory(prefix="zcbench-report-") as tmp:
            report = self.render_to(tmp, name, doc)
            url = "file://" + report
            shot = os.path.join(tmp, "shot.png")
            rc, _, err = chromium(url, tmp, f"--screenshot={shot}")
            self.assertEqual(rc, 0, err[-2000:])
            self.assertEqual(page_errors(err, os.path.basename(report)), [])
            self.assertTrue(os.path.exists(shot), "no screenshot written")
            self.assertGreater(os.path.getsize(shot), 20_000, "screenshot looks blank")
            self.assertGreater(distinct_colours(shot), 20, "screenshot is (nearly) one colour")

            rc, dom, err = chromium(url, tmp, "--dump-dom")
            self.assertEqual(rc, 0, err[-2000:])
            self.assertEqual(page_errors(err, os.path.basename(report)), [])
            for s in SECTIONS:
                self.assertIn(f'id="{s.key}"', dom)
            return dom

    def test_complete_run(self):
        # The stored complete run plus a real NDR search from this machine: one page with
        # every section filled (one render and two browser runs keep this test affordable).
        doc = fixture_doc("complete")
        doc["records"] += fixture_doc("ndr")["records"]
        dom = self.check_fixture("complete", doc)
        self.assertIn("<svg", dom)  # charts survived parsing as inline SVG
        self.assertIn('class="ndr-steps"', dom)
        self.assertIn('<details class="timeseries"', dom)
        self.assertIn('class="spark"', dom)
        self.assertIn('class="csv"', dom)
        self.assertIn('id="suite-quick"', dom)

    def test_empty_run(self):
        self.check_fixture("empty")

    def test_comparison_page(self):
        result = compare.compare(fixture_doc("baseline"), fixture_doc("regressed"))
        with tempfile.TemporaryDirectory(prefix="zcbench-compare-") as tmp:
            page = os.path.join(tmp, "compare.html")
            compare.write_text(page, compare.render_html(result))
            rc, dom, err = chromium("file://" + page, tmp, "--dump-dom")
            self.assertEqual(rc, 0, err[-2000:])
            self.assertEqual(page_errors(err, "compare.html"), [])
            self.assertIn('id="verdict"', dom)
            self.assertIn("REGRESSION", dom)
            self.assertIn('id="configs"', dom)


if __name__ == "__main__":
    unittest.main()
