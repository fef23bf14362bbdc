"""Automatic retrial of contaminated trials.

The harness marks a trial whose lab CPUs lost more than its threshold of the window to
other work (steal, other tasks) as derived.contamination.contaminated
(harness/contamination.h); run.py re-runs such a trial with `zcbench run` (the record's
own reproducing command) up to MAX_ATTEMPTS times, within a budget per suite. Each
attempt is appended as its own record (kind "retrial") carrying the harness's trial
record untouched; the contaminated original stays where it was. The comparison reads a
contaminated trial's first clean retrial in its place (reports/compare.py,
measured_trials).
"""

import math
import shlex
import sys
from pathlib import Path

from .common import ZcbenchError, warn

MAX_ATTEMPTS = 2          # per contaminated trial
BUDGET_SHARE = 0.25       # at most this share of a suite's trials is re-run ...
BUDGET_MIN = 2            # ... but at least this many


def contamination(record):
    c = (record.get("derived") or {}).get("contamination")
    return c if isinstance(c, dict) else {}


def is_contaminated(record):
    return record.get("kind") == "trial" and record.get("status") in ("pass", "fail") \
        and contamination(record).get("contaminated") is True


def retrial_command(zcbench, record):
    """The record's reproducing command run by this build, same repetition number, JSON."""
    argv = shlex.split(record.get("command") or "")
    if len(argv) < 2 or Path(argv[0]).name != "zcbench" or argv[1] != "run":
        return None
    command = [str(zcbench)] + argv[1:]
    repetition = (record.get("params") or {}).get("repetition")
    if isinstance(repetition, int) and "--repetition" not in command:
        command += ["--repetition", str(repetition)]
    if "--json" not in command:
        command.append("--json")
    return command


def retrial_record(original, attempt, trial):
    return {"kind": "retrial", "suite": original.get("suite", "?"),
            "name": f"retrial {attempt} of {original.get('name', '?')}",
            "command": trial.get("command", ""),
            "params": {"retrial_of": original.get("name", "?"), "attempt": attempt,
                       "repetition": (original.get("params") or {}).get("repetition")},
            "status": trial.get("status", "error"), "reason": trial.get("reason", ""),
            "raw": {}, "derived": {"contaminated": is_contaminated(trial)}, "trial": trial}


def retry_contaminated(new_records, measure, emit, budget=None):
    """Re-run the contaminated trials among new_records.

    measure(command) -> the trial record of one `zcbench run --json`, and
    measure.command_for(record) -> that command or None; emit(record) appends a
    retrial record. Returns (retried, still contaminated, left for lack of
    budget) counts.
    """
    trials = [r for r in new_records if r.get("kind") == "trial"]
    candidates = [r for r in trials if is_contaminated(r)]
    if budget is None:
        budget = max(BUDGET_MIN, math.ceil(BUDGET_SHARE * len(trials)))
    retried = dirty = 0
    for original in candidates[:budget]:
        command = measure.command_for(original)
        if command is None:
            warn(f"cannot re-run contaminated {original.get('name')}: its command is not "
                 "a `zcbench run`")
            continue
        retried += 1
        for attempt in range(1, MAX_ATTEMPTS + 1):
            trial = measure(command)
            emit(retrial_record(original, attempt, trial))
            ratio = contamination(original).get("ratio")
            shown = f"{100 * ratio:.0f} %" if isinstance(ratio, (int, float)) else "?"
            clean = not is_contaminated(trial)
            print(f"      retrial {attempt} of {original.get('name')} (contaminated: {shown} "
                  f"of the lab CPUs lost): {'clean' if clean else 'contaminated again'}",
                  file=sys.stderr, flush=True)
            if clean:
                break
        else:
            dirty += 1
    return retried, dirty, max(0, len(candidates) - budget)


class ZcbenchRetrial:
    """measure(command) by `zcbench run --json` into a scratch file."""

    def __init__(self, zcbench, scratch):
        self.zcbench, self.scratch = zcbench, scratch

    def command_for(self, record):
        return retrial_command(self.zcbench, record)

    def __call__(self, command):
        from .ndr import zcbench_trial  # one runner of `zcbench run --json`
        try:
            return zcbench_trial(command, self.scratch)
        except ZcbenchError as err:  # Ctrl-C (Interrupted) goes through to the run
            return {"kind": "trial", "status": "error", "reason": str(err), "params": {},
                    "raw": {}, "derived": {}, "command": shlex.join(command)}
