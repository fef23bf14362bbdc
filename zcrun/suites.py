"""Suite definitions in suites/definitions/NAME.json, as far as run.py reads them."""

import json
import subprocess
from pathlib import Path

from .common import (EXIT_INTERNAL, EXIT_USAGE, ZcbenchError, display_path, suites_dir)
from .children import parent_death_signal


def available_suites():
    directory = suites_dir()
    return sorted(path.stem for path in directory.glob("*.json")) if directory.is_dir() else []


def load_suite(name):
    """A suite definition; run.py reads name, description, repetitions, conformance_filter
    and ndr. A path to a JSON file (containing '/') is a suite outside suites/definitions."""
    available = available_suites()
    if "/" in name and Path(name).is_file():
        path = Path(name).absolute()
        try:
            suite = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ZcbenchError(f"suite file {name} is not readable JSON: {err}",
                               EXIT_USAGE) from err
        if not isinstance(suite, dict):
            raise ZcbenchError(f"suite file {name} is not a JSON object", EXIT_USAGE)
        suite.setdefault("name", path.stem)
        suite["path"] = str(path)
        return suite
    if name not in available:
        listed = ", ".join(available) if available else \
            f"none (no *.json in {display_path(suites_dir())})"
        raise ZcbenchError(f"unknown suite '{name}'; available: {listed}", EXIT_USAGE)
    path = suites_dir() / f"{name}.json"
    try:
        suite = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ZcbenchError(f"suite definition {display_path(path)} is not readable JSON: {err}; "
                           "fix the file", EXIT_INTERNAL) from err
    if not isinstance(suite, dict):
        raise ZcbenchError(f"suite definition {display_path(path)} is not a JSON object; "
                           "fix the file", EXIT_INTERNAL)
    # zcbench-bench is given this path, not the name: it reads the file run.py resolved
    # (suites_dir(), which a test may point elsewhere), not its own compiled-in folder.
    suite["path"] = str(path.absolute())
    return suite


def bench_trial_count(bench, suite, lab_mode=None):
    """How many trials zcbench-bench expands the suite into, from its own listing
    (--list-trials: one reproducing command per trial, sweeps expanded), or None when it
    cannot list them (the run that follows says why). run.py does not read "trials":
    the suite's trials have one reader, the bench binary."""
    command = [str(bench), "--suite", suite["path"], "--list-trials"]
    if lab_mode:
        command += ["--lab-mode", lab_mode]
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, timeout=60, preexec_fn=parent_death_signal())
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return sum(1 for line in result.stdout.splitlines() if line.strip())