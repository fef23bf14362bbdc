"""The NDR/PDR search (RFC 2544 section 26.1 style, by binary search).

Shaped like CSIT's MLRsearch: the search is a library behind one measurer call,
measure(rate, duration) -> trial record, and never edits what the measurer returns.
Each step is its own record (kind "ndr_step") that carries the harness's trial record
verbatim under "trial" beside the search's own fields (search id, step, role, outcome).
"""

import contextlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from .common import (DEFAULT_LAB_MODE, EXIT_CHECK_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK,
                     EXIT_USAGE, ZcbenchError)
from .setup import (executable)
from .children import (Interrupted, run_child)
from . import params as zcparams


# RFC 2544 section 9.1 frame sizes (Ethernet, FCS included); payload = frame - 46.
RFC2544_FRAMES = (64, 128, 256, 512, 1024, 1280, 1518)
FRAME_OVERHEAD = zcparams.FRAME_OVERHEAD
# The pacer is precise to well under 1 %; a step whose generator sent less than this
# share of the offered rate did not test the sink at that rate.
GENERATOR_ACHIEVED_MIN = 0.98
NDR_DEFAULTS = {"rx": ["recv", "recvmmsg"], "tx": "sendmmsg", "payload_bytes": [272],
                "loss_ratio": 0.0, "resolution": "2%", "duration_s": 1.0, "warmup_s": 0.3,
                "max_rate_pps": "max", "time_budget_s": 60.0}
NDR_FIELDS = tuple(NDR_DEFAULTS)
NDR_METHOD = "binary search"


def parse_resolution(text):
    """'2%' (of the search's upper bound) or a rate in pps; returns (value, is_percent)."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1])
            if 0 < value < 100:
                return value, True
        else:
            value = float(raw)
            if value >= 1:
                return value, False
    except ValueError:
        pass
    raise ZcbenchError(f"NDR resolution '{text}' is not accepted; give a percentage of the "
                       "upper rate between 0 and 100 (e.g. 2%) or a rate in pps >= 1 "
                       "(e.g. 5000)", EXIT_USAGE)


def parse_driver_spec(text):
    """'recvmmsg:batch=64,accounting=count' -> ('recvmmsg', {'batch': '64', ...})."""
    try:
        return zcparams.parse_driver_spec(text)
    except zcparams.ParamError as err:
        raise ZcbenchError(str(err), EXIT_USAGE) from None


def ndr_specs(entry, where):
    """An NDR request (suite "ndr" entry or the command line) -> one spec per rx x size."""
    if not isinstance(entry, dict):
        raise ZcbenchError(f"{where}: an ndr entry must be a JSON object", EXIT_USAGE)
    unknown = sorted(set(entry) - set(NDR_FIELDS))
    if unknown:
        raise ZcbenchError(f"{where}: unknown ndr field '{unknown[0]}'; accepted: "
                           + ", ".join(NDR_FIELDS), EXIT_USAGE)
    merged = dict(NDR_DEFAULTS, **entry)
    listify = lambda v: v if isinstance(v, list) else [v]
    specs = []
    for rx in listify(merged["rx"]):
        for size in listify(merged["payload_bytes"]):
            if not isinstance(size, int) or size < 18:
                raise ZcbenchError(f"{where}: payload_bytes {size!r} is not a whole number "
                                   ">= 18", EXIT_USAGE)
            loss = merged["loss_ratio"]
            if not isinstance(loss, (int, float)) or not 0 <= loss < 1:
                raise ZcbenchError(f"{where}: loss_ratio {loss!r} is not a ratio in [0, 1) "
                                   "(0 = NDR, e.g. 0.001 = PDR at 0.1 %)", EXIT_USAGE)
            for key in ("duration_s", "warmup_s", "time_budget_s"):
                v = merged[key]
                if not isinstance(v, (int, float)) or v < 0 or (key != "warmup_s" and v == 0):
                    raise ZcbenchError(f"{where}: {key} {v!r} is not a positive number of "
                                       "seconds", EXIT_USAGE)
            max_rate = merged["max_rate_pps"]
            if max_rate != "max" and (not isinstance(max_rate, (int, float)) or max_rate < 1):
                raise ZcbenchError(f"{where}: max_rate_pps {max_rate!r} is not 'max' or a "
                                   "rate in pps >= 1", EXIT_USAGE)
            parse_resolution(merged["resolution"])
            parse_driver_spec(rx)
            parse_driver_spec(merged["tx"])
            specs.append(dict(merged, rx=rx, payload_bytes=size))
    return specs


def trial_command(zcbench, spec, rate, lab_mode, parameters):
    """One NDR step as `zcbench run`, built from the harness's parameter table."""
    trial = {key: spec[key] for key in ("tx", "rx", "payload_bytes", "duration_s", "warmup_s")}
    trial.update(rate_pps=rate, lab_mode=lab_mode)
    try:
        return [str(zcbench), "run"] + zcparams.trial_argv(parameters, trial)
    except zcparams.ParamError as err:
        raise ZcbenchError(str(err), EXIT_USAGE) from None


class ZcbenchMeasurer:
    """measure(rate, duration) by one `zcbench run --json` trial of the spec's rx and tx.

    rate is a whole number of pps or "max"; returns the harness's trial record as
    zcbench printed it (skip records included).
    """

    def __init__(self, zcbench, spec, lab_mode, scratch, parameters):
        self.zcbench, self.spec, self.lab_mode, self.scratch = zcbench, spec, lab_mode, scratch
        self.parameters = parameters  # `zcbench list --json`'s parameter table

    def command(self, rate, duration):
        return trial_command(self.zcbench, dict(self.spec, duration_s=duration), rate,
                             self.lab_mode, self.parameters)

    def measure(self, rate, duration):
        return zcbench_trial(self.command(rate, duration), self.scratch)


def zcbench_trial(command, scratch):
    """One `zcbench run --json`; returns its trial record (skip records included)."""
    out_path = Path(scratch)
    with open(out_path, "w") as out:
        code = run_child(command, stdout=out.fileno())
    if code == EXIT_INTERRUPTED:
        raise Interrupted()
    if code == EXIT_USAGE:
        raise ZcbenchError(f"`{shlex.join(command)}` was refused as a usage error (exit 2); "
                           "see its message above", EXIT_USAGE)
    try:
        doc = json.loads(out_path.read_text())
        return next(r for r in doc["records"] if r.get("kind") == "trial")
    except (ValueError, KeyError, StopIteration, TypeError, AttributeError):
        raise ZcbenchError(f"`{shlex.join(command)}` exited {code} without a trial record "
                           "on stdout; see its message above", EXIT_INTERNAL) from None


def _number(record, key):
    v = (record.get("derived") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) else None


def judge_step(record, offered, threshold):
    """'pass', 'loss', 'generator short', 'fail' (a check failed) or 'skip'/'error'."""
    status = record.get("status")
    if status in ("skip", "error"):
        return status
    if status == "fail":
        return "fail"
    sent = _number(record, "sent_pps") or 0.0
    if offered is not None and sent < GENERATOR_ACHIEVED_MIN * offered:
        return "generator short"
    return "pass" if (_number(record, "loss_ratio") or 0.0) <= threshold else "loss"


def step_record(spec, search_id, number, role, offered, outcome, trial):
    """One search step: the search's fields, and the measurer's trial record untouched."""
    rate = "flat out" if offered is None else f"{int(offered):,} pps"
    return {"kind": "ndr_step", "suite": spec.get("suite", "ndr"),
            "name": f"NDR step {number} ({role}) {spec['tx']}->{spec['rx']} "
                    f"{spec['payload_bytes']}B {rate}",
            "command": trial.get("command", ""),
            "params": {"ndr_search_id": search_id, "ndr_step": number, "ndr_role": role,
                       "offered_pps": offered, "loss_threshold": float(spec["loss_ratio"])},
            "status": trial.get("status"), "reason": trial.get("reason", ""),
            "raw": {}, "derived": {"ndr_outcome": outcome}, "trial": trial}


def ndr_search(spec, measurer, search_id, clock=time.monotonic, emit=None):
    """Highest offered rate whose loss ratio is <= the threshold, by binary search.

    measurer.measure(rate, duration) -> trial record, rate an int pps or "max", never
    edited here (see ZcbenchMeasurer). The first trial is at the
    generator's maximum: it gives the upper bound (what the generator achieves) and ends
    the search if the sink loses nothing even there (confirmed by a second flat-out
    trial). Otherwise bisect between a lossless
    lower bound (0) and a failing or untestable upper bound until they are within the
    resolution, and confirm the result with one more trial (a second, one resolution
    lower, if the first confirmation fails). A step whose generator fell short of the
    offered rate lowers the upper bound without counting as a pass: the search never
    claims the sink lossless beyond what the generator reached.
    emit(record), when given, receives each step (an ndr_step record) as soon as it is
    complete (so Ctrl-C keeps the steps already run). Returns (step records, summary).
    """
    started = clock()
    threshold = float(spec["loss_ratio"])
    resolution, is_percent = parse_resolution(spec["resolution"])
    steps, log = [], []
    state = {"generator_limited": False, "failed": None}
    achieved = {}  # offered rate of a passing step -> what the generator really sent

    def step(rate, role):
        record = measurer.measure(rate, spec["duration_s"])
        offered = None if rate == "max" else float(rate)
        outcome = judge_step(record, offered, threshold)
        step_rec = step_record(spec, search_id, len(steps), role, offered, outcome, record)
        steps.append(step_rec)
        if emit is not None:
            emit(step_rec)
        log.append({"step": len(log), "role": role, "offered_pps": offered,
                    "sent_pps": _number(record, "sent_pps"),
                    "received_pps": _number(record, "received_pps"),
                    "loss_ratio": _number(record, "loss_ratio"),
                    "outcome": outcome, "status": record.get("status")})
        if outcome == "generator short":
            state["generator_limited"] = True
        if outcome == "pass" and offered is not None:
            achieved[int(offered)] = min(achieved.get(int(offered), offered),
                                         _number(record, "sent_pps") or 0.0)
        if outcome in ("fail", "error") and state["failed"] is None:
            state["failed"] = step_rec
        return outcome, record

    outcome, first = step("max", "max")
    if outcome in ("skip", "error"):
        return steps, ndr_summary(spec, search_id, steps, log, None, False, state, started,
                                  clock, status=outcome, reason=first.get("reason") or outcome)
    generator_max = _number(first, "sent_pps") or 0.0
    upper = generator_max
    if spec["max_rate_pps"] != "max":
        if spec["max_rate_pps"] > generator_max:
            state["generator_limited"] = True
        upper = min(upper, float(spec["max_rate_pps"]))
    res_pps = max(1.0, upper * resolution / 100) if is_percent else resolution
    lo, hi = 0, int(upper)
    if outcome == "pass" and upper >= generator_max:
        # Lossless at everything the generator can do: the sink is not the limit here.
        # Confirmed flat out too (a paced trial would test the pacer, not the sink), and
        # credited with the lower of the two rates the generator really reached.
        state["generator_limited"] = True
        outcome, again = step("max", "confirm")
        confirmed = outcome == "pass"
        ndr = int(min(generator_max, _number(again, "sent_pps") or 0.0)) if confirmed \
            else int(generator_max)
        return steps, ndr_summary(spec, search_id, steps, log, ndr, confirmed, state, started,
                                  clock, generator_max=generator_max, resolution_pps=None,
                                  search_window=(ndr, ndr))
    else:
        # hi is untested when a user maximum sits below the generator's: test it first.
        if upper < generator_max:
            outcome, _ = step(hi, "probe")
            if outcome == "pass":
                lo = hi
        while hi - lo > res_pps and clock() - started < spec["time_budget_s"]:
            mid = (lo + hi) // 2
            outcome, _ = step(mid, "probe")
            if outcome == "pass":
                lo = mid
            else:
                hi = mid
    # Confirm at the result; if that fails, once more one resolution lower. An unconfirmed
    # result stays the highest passing rate found, flagged confirmed = false.
    confirmed = False
    if lo > 0:
        for rate in (lo, int(lo - res_pps)):
            if rate < 1:
                break
            outcome, _ = step(rate, "confirm")
            if outcome == "pass":
                lo, confirmed = rate, True
                break
    elif not any(e["outcome"] == "loss" and e["role"] != "max" for e in log):
        lo = None  # no probe both reached its rate and lost: nothing can be claimed
    if lo and lo in achieved:
        # Within the pacer's tolerance the generator may have sent a little less than
        # offered: the sink is credited with what it was really given.
        lo = int(min(lo, achieved[lo]))
    return steps, ndr_summary(spec, search_id, steps, log, lo, confirmed, state, started,
                              clock, generator_max=generator_max, resolution_pps=res_pps,
                              search_window=(lo, hi))


def ndr_summary(spec, search_id, steps, log, ndr, confirmed, state, started, clock,
                status=None, reason="", generator_max=None, resolution_pps=None,
                search_window=None):
    first = ((steps[0].get("trial") or {}).get("params") or {}) if steps else {}
    rx_name, rx_opts = parse_driver_spec(spec["rx"])
    tx_name, tx_opts = parse_driver_spec(spec["tx"])
    failed = state["failed"]
    if status is None:
        status, reason = "pass", ""
        if failed is not None:
            status = failed.get("status") if failed.get("status") in ("fail", "error") \
                else "fail"
            reason = (f"step {failed['params']['ndr_step']}: "
                      f"{failed.get('reason') or 'a check failed'}")
    threshold = float(spec["loss_ratio"])
    kind_text = "NDR" if threshold == 0 else f"PDR {100 * threshold:g} %"
    derived = {"ndr_pps": ndr, "steps": len(steps), "confirmed": confirmed,
               "generator_limited": state["generator_limited"],
               "generator_max_pps": generator_max, "resolution_pps": resolution_pps,
               "elapsed_s": round(clock() - started, 3)}
    if ndr is not None:
        derived["ndr_mbps"] = ndr * spec["payload_bytes"] * 8 / 1e6
    if search_window is not None:
        derived["search_window_pps"] = list(search_window)
    return {
        "kind": "ndr", "suite": spec.get("suite", "ndr"),
        "name": f"{kind_text} {spec['tx']}->{spec['rx']} {spec['payload_bytes']}B",
        "command": shlex.join(["./run.py", "--ndr", "--ndr-rx", spec["rx"], "--ndr-tx",
                               spec["tx"], "--size", str(spec["payload_bytes"]),
                               "--ndr-loss", f"{threshold:g}",
                               "--ndr-resolution", str(spec["resolution"]),
                               "--ndr-duration", f"{spec['duration_s']:g}",
                               "--ndr-max-rate", str(spec["max_rate_pps"])]),
        "params": {"rx": rx_name, "rx_opts": rx_opts, "tx": tx_name, "tx_opts": tx_opts,
                   "payload_bytes": spec["payload_bytes"],
                   "frame_bytes": spec["payload_bytes"] + FRAME_OVERHEAD,
                   "loss_threshold": threshold, "resolution": str(spec["resolution"]),
                   "method": NDR_METHOD, "duration_s": spec["duration_s"],
                   "warmup_s": spec["warmup_s"], "max_rate_pps": spec["max_rate_pps"],
                   "generator_achieved_min": GENERATOR_ACHIEVED_MIN,
                   "ndr_search_id": search_id, "lab_mode": first.get("lab_mode", ""),
                   "kernel": first.get("kernel") or platform.release()},
        "status": status, "reason": reason, "raw": {"steps": log}, "derived": derived,
    }


def run_ndr_searches(args, suite, records_path):
    """The suite's "ndr" entries, each search's steps and summary appended to records."""
    specs = []
    for i, entry in enumerate(suite.get("ndr") or []):
        specs += ndr_specs(entry, f"suite {suite.get('name')} ndr entry {i}")
    zcbench = executable(args.build_dir, "zcbench")
    try:
        parameters = zcparams.load_parameters(zcbench) if specs else []
    except zcparams.ParamError as err:
        raise ZcbenchError(str(err), EXIT_INTERNAL) from None
    outcome = EXIT_OK
    for number, spec in enumerate(specs):
        spec["suite"] = suite.get("name") or "ndr"
        search_id = f"{spec['suite']}-{number}-{spec['rx']}-{spec['payload_bytes']}"
        print(f"      NDR search {number + 1}/{len(specs)}: {spec['tx']} -> {spec['rx']} "
              f"{spec['payload_bytes']} B, loss <= {spec['loss_ratio']:g}",
              file=sys.stderr, flush=True)
        scratch = Path(records_path).with_name(f".ndr-step-{os.getpid()}.json")
        measurer = ZcbenchMeasurer(zcbench, spec, args.lab_mode or DEFAULT_LAB_MODE, scratch,
                                   parameters)

        def emit(record):
            with open(records_path, "a") as out:
                out.write(json.dumps(record) + "\n")
        try:
            _, summary = ndr_search(spec, measurer, search_id, emit=emit)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        emit(summary)
        d = summary["derived"]
        shown = "–" if d["ndr_pps"] is None else f"{d['ndr_pps']:,} pps"
        print(f"      -> {shown} ({summary['status']}; {d['steps']} steps, confirmed "
              f"{d['confirmed']}, generator limited {d['generator_limited']})",
              file=sys.stderr, flush=True)
        if summary["status"] in ("fail", "error"):
            outcome = EXIT_CHECK_FAILED
    return outcome


def cli_ndr_suite(args):
    """`--ndr` on the command line as a one-entry suite."""
    sizes = args.size or NDR_DEFAULTS["payload_bytes"]
    if args.rfc2544_sizes:
        sizes = [frame - FRAME_OVERHEAD for frame in RFC2544_FRAMES]
    entry = {"rx": args.ndr_rx, "tx": args.ndr_tx, "payload_bytes": sizes,
             "loss_ratio": args.ndr_loss, "resolution": args.ndr_resolution,
             "duration_s": args.ndr_duration, "warmup_s": args.ndr_warmup,
             "max_rate_pps": args.ndr_max_rate, "time_budget_s": args.ndr_time_budget}
    suite = {"name": "ndr", "description": "NDR/PDR search from the command line",
             "ndr": [entry]}
    ndr_specs(entry, "--ndr")  # bad values are usage errors before the build
    return suite
