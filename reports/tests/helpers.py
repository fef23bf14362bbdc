"""Shared by the report tests: fixture paths and in-memory variants of them.

The stored fixtures are real runs (fixtures/make_fixtures.sh). What a run here cannot
produce is built below from them, each variant saying why.
"""
import copy
import json
import os

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
NAMES = ["complete", "interrupted", "empty"]   # rendered whole by the page tests
# Every stored run (all real, fixtures/make_fixtures.sh): validated and checked for the
# record's sums.
ALL_NAMES = NAMES + ["ndr", "baseline", "regressed", "aa_a", "aa_b"]


def fixture_path(name):
    return os.path.join(FIXTURES, f"{name}.run.json")


def fixture_doc(name):
    with open(fixture_path(name), encoding="utf-8") as f:
        return json.load(f)


def fixture_calibration():
    """The A/A calibration ./run.py calibrate wrote for aa_a and aa_b."""
    with open(os.path.join(FIXTURES, "aa.calibration.json"), encoding="utf-8") as f:
        return json.load(f)


def measured_records(doc, kind="trial"):
    """A document's records with numbers in them, of one kind."""
    return [r for r in doc["records"] if r.get("kind") == kind
            and r.get("status") in ("pass", "fail")]


def claim2_variant():
    """complete's real generator-short trials (1472 B offered at 20 Mpps, far past any
    generator here) tagged claim 2: the claims suite offers 2.35 Mpps
    at 272 B to three sinks for 2 s a trial, too long for a fixture, and what the claim
    section does with a short generator is the same at any rate."""
    doc = copy.deepcopy(fixture_doc("complete"))
    tagged = []
    for r in doc["records"]:
        if r.get("kind") == "trial" and (r.get("derived") or {}).get("generator_short") \
                and (r["params"].get("offered_pps") or 0) >= 1_000_000:
            r["params"]["claim"] = 2
            tagged.append(r)
    return doc, tagged


def trial_doc(trials, status="complete"):
    """A minimal valid document around hand-made trial records."""
    doc = copy.deepcopy(fixture_doc("empty"))
    doc["status"] = status
    doc["records"] = trials
    return doc


def trial(rx="recv", size=272, rep=0, received=1000.0, rate="max", status="pass", **derived):
    """A small trial record: only what the report reads."""
    d = {"offered_pps": None if rate == "max" else rate, "sent_pps": received * 1.1,
         "received_pps": received, "lost_packets": 0, "loss_ratio": 0.0,
         "cpu_ns_per_pkt_sink": 1000.0, "cpu_ns_per_pkt_total": 2000.0,
         "drops": {"lost": 0, "backlog": 0, "link": 0, "socket_rcvbuf": 0, "socket_other": 0,
                   "ring": 0, "unattributed": 0, "over_attributed": 0},
         "reconciliation_ok": True, "generator_short": False, "achieved_ratio": None}
    d.update(derived)
    return {"kind": "trial", "suite": "quick", "name": f"{rx} {size} #{rep}",
            "params": {"tx": "sendto", "rx": rx, "payload_bytes": size, "frame_bytes": size + 46,
                       "rate_mode": "max" if rate == "max" else "fixed",
                       "offered_pps": None if rate == "max" else rate, "repetition": rep,
                       "lab_mode": "rps", "kernel": "6.18"},
            "status": status, "reason": "" if status == "pass" else "because",
            "raw": {"window_ns": 2_000_000_000, "sent_total": int(received * 2.2),
                    "received_in_window": int(received * 2)},
            "derived": d}
