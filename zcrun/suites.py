"""Suite definitions in suites/definitions/NAME.json, as far as run.py reads them."""

import json
from pathlib import Path

from .common import (EXIT_INTERNAL, EXIT_USAGE, ZcbenchError, display_path, suites_dir)


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
    return suite


def trial_count(suite):
    trials = suite.get("trials")
    return len(trials) if isinstance(trials, list) else None
