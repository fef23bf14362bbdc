"""Constants, the user-facing error, paths and the progress lines every part of run.py shares."""

import contextlib
import datetime
import os
import re
import sys
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

SCHEMA_VERSION = 1
DEFAULT_SUITE = "quick"
CI_SUITE = "smoke"
LAB_MODES = ("sender-softirq", "rps", "xdp")  # checked against `zcbench list --json` by params.python_matches_harness
DEFAULT_LAB_MODE = "rps"
# What the report interpreter must import, and the Debian packages that provide it.
REPORT_MODULES = ("pandas", "matplotlib", "jinja2")
REPORT_PACKAGES = ("python3-pandas", "python3-matplotlib", "python3-jinja2")
# A child that ignores Ctrl-C this long after it was sent is terminated, then killed.
CHILD_GRACE_S = 30.0
CHILD_TERM_GRACE_S = 5.0
BUILD_LOG_TAIL_LINES = 200

# Overrides for the tests (fake executables and suites in a temp dir); not user options.
ENV_SUITES_DIR = "ZCBENCH_SUITES_DIR"
ENV_PACKAGE_LIST = "ZCBENCH_PACKAGE_LIST"
ENV_REPORT_PYTHON = "ZCBENCH_REPORT_PYTHON"


class ZcbenchError(Exception):
    """An error for the user: one line naming the problem and the fix, plus an exit code."""

    def __init__(self, message, exit_code, details=""):
        super().__init__(message)
        self.exit_code = exit_code
        self.details = details  # output worth showing before the message (a build log tail)


def warn(message):
    print(f"zcbench: {message}", file=sys.stderr, flush=True)


def suites_dir():
    return Path(os.environ.get(ENV_SUITES_DIR) or REPO_ROOT / "suites" / "definitions")


def package_list_path():
    return Path(os.environ.get(ENV_PACKAGE_LIST) or REPO_ROOT / "ci" / "debian-packages.txt")


def display_path(path):
    """The path as the user would type it: relative to the repo root when inside it."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_utc(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def tool_version():
    """run.py's own version: the project VERSION in CMakeLists.txt (no build needed)."""
    try:
        text = (REPO_ROOT / "CMakeLists.txt").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"project\(\s*zcbench\b[^)]*\bVERSION\s+([0-9][0-9.]*)", text)
    return match.group(1) if match else "unknown"


# --------------------------------------------------------------------------- progress

class Progress:
    """Numbered step lines on stderr ("[2/4] building ... done (12.3 s)")."""

    def __init__(self, total):
        self.total = total
        self.current = 0
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, label, quiet=True):
        """quiet steps print "done" on the same line; noisy ones (children write) on their own."""
        self.current += 1
        prefix = f"[{self.current}/{self.total}]"
        began = time.monotonic()
        if quiet:
            print(f"{prefix} {label} ...", end="", file=sys.stderr, flush=True)
        else:
            print(f"{prefix} {label} ...", file=sys.stderr, flush=True)
        ok = False
        try:
            yield
            ok = True
        finally:
            elapsed = format_duration(time.monotonic() - began)
            lead = " " if quiet else f"{prefix} {label}: "
            print(f"{lead}{'done' if ok else 'stopped'} ({elapsed})", file=sys.stderr, flush=True)

    def elapsed(self):
        return time.monotonic() - self.started
