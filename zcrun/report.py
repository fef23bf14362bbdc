"""The report interpreter (a Python that imports pandas) and rendering."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

from .common import (ENV_REPORT_PYTHON, EXIT_ENVIRONMENT, EXIT_INTERNAL, EXIT_USAGE,
                     REPORT_MODULES, REPORT_PACKAGES, REPO_ROOT, ZcbenchError, display_path)
from .children import (run_child)


def report_python_candidates():
    override = os.environ.get(ENV_REPORT_PYTHON)
    if override:
        return [override]
    return ["/usr/bin/python3", sys.executable]


def find_report_python(candidates=None):
    """The first interpreter that can import what reports/ needs, or None."""
    probe = "import " + ", ".join(REPORT_MODULES)
    seen = set()
    for candidate in candidates if candidates is not None else report_python_candidates():
        if not candidate or candidate in seen:
            continue
        seen.add(candidate)
        try:
            result = subprocess.run([candidate, "-c", probe], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            return candidate
    return None


def require_report_python():
    python = find_report_python()
    if python is None:
        raise ZcbenchError("no Python can import " + ", ".join(REPORT_MODULES) + " for the "
                           "report; install " + " ".join(REPORT_PACKAGES) + " (`sudo apt-get "
                           "install " + " ".join(REPORT_PACKAGES) + "`)", EXIT_ENVIRONMENT)
    return python


def render_report(python, run_json, report_html):
    """reports/ is a package run from the repo root: `python -m reports RUN.json -o OUT`."""
    command = [python, "-m", "reports", str(run_json), "-o", str(report_html)]
    code = run_child(command, stdout=sys.stderr.fileno())
    if code != 0 or not Path(report_html).is_file():
        raise ZcbenchError(f"report rendering failed (`{shlex.join(command)}` exited {code}); "
                           f"run.json is intact; retry with ./run.py report "
                           f"{display_path(Path(run_json).parent)}", EXIT_INTERNAL)


def load_calibration(path):
    """A calibration document (./run.py calibrate), or a usage error naming the fix."""
    if path is None:
        return None
    try:
        return compare_module().load_calibration(path)
    except FileNotFoundError:
        raise ZcbenchError(f"calibration {path} not found; run ./run.py calibrate to measure "
                           "one", EXIT_USAGE) from None
    except (OSError, ValueError) as err:
        raise ZcbenchError(f"calibration {path} is not usable: {err}; run ./run.py calibrate "
                           "to measure a new one", EXIT_USAGE) from None


def compare_module():
    """reports/compare.py: standard library only, so any python3 can import it."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from reports import compare
    return compare


def load_baseline(path):
    """The baseline run document, or a usage error naming the path."""
    compare = compare_module()
    try:
        return compare.load(path)
    except FileNotFoundError:
        raise ZcbenchError(f"baseline {path} not found; pass a results folder "
                           "(results/<run-id>) or its run.json", EXIT_USAGE) from None
    except (OSError, ValueError) as err:
        raise ZcbenchError(f"baseline {path} is not a readable run.json: {err}",
                           EXIT_USAGE) from None
