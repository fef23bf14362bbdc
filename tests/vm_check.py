#!/usr/bin/env python3
"""CTest checks of the second-kernel mode (label vm): run vm/zcvm.py, then
check what came back.

    vm_check.py conformance --build B --out DIR [--kernel debian-6.12]
                                                  the whole conformance suite in the guest
    vm_check.py pktgen --build B --out DIR        the pktgen checks in the guest (pktgen.*:
                                                  a paced flood arrives whole, stop works)
    vm_check.py trials --build B --out DIR        `zcbench run --generator pktgen` trials

Exit 0 when the checks hold, 1 when one does not, 77 (CTest skip) when zcvm
reports the environment cannot run it (exit 3: no qemu, kernel package not
reachable), with its reason. --kernel (default debian-6.1) names the guest,
one of vm/zcvm.py's KERNELS; its records must carry that kernel's release.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ZCVM = os.path.join(HERE, "..", "vm", "zcvm.py")


def fail(msg):
    print("FAIL: " + msg)
    return 1


# The guest's uname -r starts with the version in the --kernel name
# ("debian-6.12" -> "6.12."): "6.1." does not match a 6.12 guest.
RELEASE_PREFIX = {"kernel": "6.1."}


def check_common(records, kind):
    problems = []
    want = RELEASE_PREFIX["kernel"]
    for r in records:
        p = r.get("params", {})
        if not str(p.get("kernel", "")).startswith(want):
            problems.append(f"{r.get('name')}: params.kernel {p.get('kernel')!r} is not the guest's {want}*")
        if p.get("emulated") is not True:
            problems.append(f"{r.get('name')}: params.emulated is not true")
        if r.get("kind") != kind:
            problems.append(f"{r.get('name')}: kind {r.get('kind')!r}, expected {kind}")
    return problems


def check_conformance(records):
    problems = check_common(records, "conformance")
    by_status = {}
    for r in records:
        by_status.setdefault(r["status"], []).append(r["name"])
    print("guest conformance:", {k: len(v) for k, v in by_status.items()})
    for name in by_status.get("fail", []) + by_status.get("error", []):
        problems.append(f"{name} failed in the guest")
    if len(records) < 10:
        problems.append(f"only {len(records)} conformance records came back")
    pktgen = [r for r in records if r["name"].startswith("pktgen.")]
    if not pktgen or any(r["status"] == "skip" for r in pktgen):
        problems.append("the pktgen checks did not run in the guest, whose kernel has pktgen: "
                        + "; ".join(f"{r['name']}: {r['reason']}" for r in pktgen))
    return problems


def check_pktgen_conformance(records):
    problems = check_common(records, "conformance")
    names = {r["name"]: r for r in records}
    for want in ("pktgen.probe_agrees_with_proc", "pktgen.paced_flood_arrives_whole",
                 "pktgen.stop_flag_stops_the_kernel_thread", "pktgen.max_rate_sends_its_count"):
        r = names.get(want)
        if not r:
            problems.append(f"{want} did not run in the guest")
        elif r["status"] != "pass":
            problems.append(f"{want}: {r['status']}: {r.get('reason')}")
    return problems


def check_trials(records):
    problems = check_common(records, "trial")
    if not records:
        return ["no pktgen trial record came back"]
    whole = 0
    for r in records:
        raw, d = r.get("raw", {}), r.get("derived", {})
        sent, received = raw.get("sent_total"), raw.get("received_total")
        print(f"{r['name']}: status {r['status']}, sent {sent}, received {received}, "
              f"received_pps {d.get('received_pps')}, lost {d.get('lost_packets')}, drops {d.get('drops')}")
        if r.get("params", {}).get("generator") != "pktgen":
            problems.append(f"{r['name']}: params.generator is not pktgen")
        if r["status"] != "pass":
            problems.append(f"{r['name']}: {r['status']}: {r.get('reason')}")
        if not sent:
            problems.append(f"{r['name']}: pktgen sent nothing")
        elif sent != received and not d.get("reconciliation_ok"):
            problems.append(f"{r['name']}: sent {sent} != received {received} and the loss is not attributed")
        if sent and sent == received:
            whole += 1
    if not whole:
        problems.append("no pktgen trial arrived whole (sent == received)")
    return problems


def main(argv):
    if len(argv) < 2 or argv[1] not in ("conformance", "pktgen", "trials"):
        print(__doc__)
        return 2
    what, rest = argv[1], argv[2:]
    kernel = "debian-6.1"
    if "--kernel" in rest:
        i = rest.index("--kernel")
        kernel = rest[i + 1]
        del rest[i:i + 2]
    RELEASE_PREFIX["kernel"] = kernel.split("-", 1)[1] + "."
    out = rest[rest.index("--out") + 1] if "--out" in rest else "vm-out"
    work = {"conformance": ["conformance"], "pktgen": ["conformance", "--gtest-filter", "pktgen.*"],
            "trials": ["pktgen"]}[what]
    rc = subprocess.run([sys.executable, ZCVM, "--kernel", kernel, "--work"] + work + rest).returncode
    if rc == 3:
        print("[  SKIPPED ] the environment cannot run the guest (zcvm exit 3); see " + os.path.join(out, "vm.log"))
        return 77
    path = os.path.join(out, "vm-records.jsonl")
    if not os.path.exists(path):
        return fail(f"zcvm exited {rc} without {path}")
    with open(path) as f:
        records = [json.loads(l) for l in f if l.strip()]
    check = {"conformance": check_conformance, "pktgen": check_pktgen_conformance, "trials": check_trials}[what]
    problems = check(records)
    if rc not in (0, 1):
        problems.append(f"zcvm exited {rc}")
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
