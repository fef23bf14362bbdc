"""The context block of run.json: host, tool version, PMU, transports."""

import json
import os
import platform
import re
import shlex
import socket
import subprocess
from pathlib import Path

from .common import (EXIT_INTERNAL, REPO_ROOT, ZcbenchError, warn)
from .setup import (executable)


def read_text(path, default=""):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return default


def host_context():
    cpuinfo = read_text("/proc/cpuinfo")
    cpu_model = ""
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not cpu_model:
            cpu_model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    distro = ""
    for line in read_text("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            distro = line.split("=", 1)[1].strip().strip('"')
    memory_bytes = None
    match = re.search(r"^MemTotal:\s+(\d+)\s+kB", read_text("/proc/meminfo"), re.MULTILINE)
    if match:
        memory_bytes = int(match.group(1)) * 1024
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 1,
        "kernel": platform.release(),
        "distro": distro or platform.system(),
        "memory_bytes": memory_bytes,
        "virtualized": ("hypervisor" in flags) if flags else None,
    }


def parse_version(text):
    """`zcbench --version` output, e.g. "zcbench 0.1.0 (git abc123def456)"."""
    match = re.match(r"\s*(\S+)\s+(\S+)(?:\s+\(git\s+([^)\s]+)\))?", text)
    if not match:
        return {"name": "zcbench", "version": text.strip() or "unknown", "git_sha": None}
    return {"name": match.group(1), "version": match.group(2), "git_sha": match.group(3)}


def capture(command, timeout=60):
    """stdout of a quick helper command, or raise ZcbenchError naming it."""
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=timeout, cwd=REPO_ROOT)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ZcbenchError(f"`{shlex.join(command)}` failed: {err}", EXIT_INTERNAL) from err
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [""])[-1]
        raise ZcbenchError(f"`{shlex.join(command)}` exited {result.returncode}: {detail}",
                           EXIT_INTERNAL)
    return result.stdout


def run_context(build_dir, options):
    """The context block of run.json; what cannot be learnt is said, not fatal."""
    zcbench = str(executable(build_dir, "zcbench"))
    try:
        tool = parse_version(capture([zcbench, "--version"]))
    except ZcbenchError as err:
        warn(f"{err}; run.json will say version unknown")
        tool = {"name": "zcbench", "version": "unknown", "git_sha": None}
    pmu = {"available": False, "reason": "unknown: `zcbench list --json` failed"}
    transports = []
    listing = {}
    try:
        listing = json.loads(capture([zcbench, "list", "--json"]))
        pmu = listing.get("pmu", pmu)
        transports = listing.get("transports", transports)
    except (ZcbenchError, ValueError, AttributeError) as err:
        warn(f"cannot read `zcbench list --json` ({err}); run.json will lack transports")
    listing = listing if isinstance(listing, dict) else {}
    # The harness owns the host context and the vocabularies (harness/context.cc,
    # harness/vocabulary.cc); run.py's own host probe is only the fallback.
    context = {"host": listing.get("host") or host_context(), "tool": tool, "pmu": pmu,
               "transports": transports, "options": options}
    if listing.get("vocabularies"):
        context["vocabularies"] = listing["vocabularies"]
    return context
