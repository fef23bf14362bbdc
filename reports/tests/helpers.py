"""Shared by the report tests: fixture paths and in-memory variants of them."""
import copy
import json
import os

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
NAMES = ["complete", "interrupted", "empty"]


def fixture_path(name):
    return os.path.join(FIXTURES, f"{name}.run.json")


def fixture_doc(name):
    with open(fixture_path(name), encoding="utf-8") as f:
        return json.load(f)


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
