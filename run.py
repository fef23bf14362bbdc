#!/usr/bin/env python3
"""zcbench's front door: install, build, run suites, write run.json, render the report.

Standard library only: this runs under whatever python3 is on PATH, which may not
see the Debian python3-* packages the report needs (those run in a separate
interpreter, found by probing).

Contracts with the C++ side and the report package are described in
docs/results-format.md and next to the functions that use them.
"""

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

SCHEMA_VERSION = 1
DEFAULT_SUITE = "quick"
CI_SUITE = "smoke"
LAB_MODES = ("sender-softirq", "rps", "xdp")
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


# --------------------------------------------------------------------------- install

# The groups of ci/debian-packages.txt, in install order. Which command needs
# which is install_plan's to say; the list's header comment repeats it for readers.
PACKAGE_GROUPS = ("core", "test", "peers", "vm")
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# A Debian version: [epoch:]upstream[-revision], digits first.
PACKAGE_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*")


class Package:
    """One line of the package list: a Debian package and, optionally, a version floor."""

    def __init__(self, name, floor=None):
        self.name = name
        self.floor = floor

    def __repr__(self):
        return f"{self.name} >= {self.floor}" if self.floor else self.name

    def __eq__(self, other):
        return isinstance(other, Package) and (self.name, self.floor) == (other.name, other.floor)


def parse_package_list(text):
    """{group: [Package]} from the list's text: `[group]` headers, then `name` or
    `name >= version` lines; '#' starts a comment. ValueError names the bad line."""
    groups, owner, current = {}, {}, None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[\s*([a-z]+)\s*\]", line)
        if header:
            current = header.group(1)
            if current not in PACKAGE_GROUPS:
                raise ValueError(f"line {number}: unknown group [{current}] "
                                 f"(groups: {', '.join(PACKAGE_GROUPS)})")
            groups.setdefault(current, [])
            continue
        if current is None:
            raise ValueError(f"line {number}: '{line}' comes before any [group] header")
        match = re.fullmatch(rf"({PACKAGE_NAME.pattern})(?:\s*>=\s*({PACKAGE_VERSION.pattern}))?",
                             line)
        if not match:
            raise ValueError(f"line {number}: '{line}' is not `package` or `package >= version`")
        name = match.group(1)
        if name in owner:
            raise ValueError(f"line {number}: {name} is already in [{owner[name]}]; "
                             "a package belongs to one group")
        owner[name] = current
        groups[current].append(Package(name, match.group(2)))
    return groups


def read_package_list(path=None):
    path = Path(path or package_list_path())
    try:
        return parse_package_list(path.read_text())
    except OSError as err:
        raise ZcbenchError(f"cannot read the package list {display_path(path)}: {err.strerror}; "
                           "restore it from git", EXIT_INTERNAL) from err
    except ValueError as err:
        raise ZcbenchError(f"{display_path(path)} {err}; fix the list", EXIT_INTERNAL) from err


def install_plan(command, args):
    """(required, optional) package groups for a command. Required groups missing under
    --no-install are an error; optional ones are installed when installing is allowed and
    otherwise only reported: each peer's probe makes its trials and tests a skip that
    names its package (drivers/capture_peer.h, peer_installed)."""
    required = ["core"]
    if command == "test":
        required.append("test")
    if getattr(args, "kernel", None):
        required.append("vm")
    optional = ["peers"] if command in ("run", "ci", "test") else []
    return required, optional


def installed_version(name):
    """The installed version of a package, or None (dpkg's own status, one line per arch)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}\n", name],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        status, _, version = line.partition("\t")
        if status.split()[-1:] == ["installed"]:
            return version
    return None


def version_at_least(version, floor):
    """Debian's ordering (epochs, ~, revisions) is dpkg's to judge, not ours."""
    return subprocess.run(["dpkg", "--compare-versions", version, "ge", floor]).returncode == 0


def unmet_packages(packages, version_of=None, at_least=None):
    """[(Package, why)] for those missing or older than their floor (dpkg asked by default)."""
    version_of, at_least = version_of or installed_version, at_least or version_at_least
    unmet = []
    for package in packages:
        version = version_of(package.name)
        if version is None:
            unmet.append((package, "missing"))
        elif package.floor and not at_least(version, package.floor):
            unmet.append((package, f"{version} installed, zcbench needs >= {package.floor}"))
    return unmet


def describe_unmet(unmet):
    return "; ".join(f"{package.name} ({why})" for package, why in unmet)


def install_command(unmet):
    return "apt-get install -y --no-install-recommends " + " ".join(p.name for p, _ in unmet)


def upgrade_hint(unmet):
    """Too old is not fixed by apt-get install from the same release: say where from."""
    if any(why != "missing" for _, why in unmet):
        return (" (a package older than its floor needs a newer release: Debian 12 bookworm "
                "or later, or its backports)")
    return ""


def ensure_packages(no_install, required=("core",), optional=()):
    """Install (or, with no_install, check) the listed groups' packages that dpkg lacks or
    has too old. A required group that cannot be had is an error; an optional one that
    cannot is a note in the summary (its trials skip). Returns a one-line summary."""
    groups = read_package_list()
    wanted = [p for g in required for p in groups.get(g, [])]
    extra = [p for g in optional for p in groups.get(g, [])]
    if shutil.which("dpkg-query") is None:
        if no_install:
            return "not a Debian system; packages not checked"
        raise ZcbenchError("dpkg-query not found: the installer needs Debian 12 or later; "
                           f"install the [{'+'.join(required)}] packages in "
                           f"{display_path(package_list_path())} yourself and pass --no-install",
                           EXIT_ENVIRONMENT)
    unmet, unmet_extra = unmet_packages(wanted), unmet_packages(extra)
    if unmet and (no_install or os.geteuid() != 0):
        how = "or run without --no-install" if no_install else \
            "(installing needs root) or run ./run.py with sudo"
        raise ZcbenchError(f"Debian packages not usable: {describe_unmet(unmet)}; install them "
                           f"with `sudo {install_command(unmet)}`{upgrade_hint(unmet)} {how}",
                           EXIT_ENVIRONMENT)
    done = []
    if unmet:
        apt_install(unmet)
        done += unmet
    if unmet_extra and not no_install and os.geteuid() == 0:
        try:
            apt_install(unmet_extra)
            done += unmet_extra
            unmet_extra = []
        except ZcbenchError as err:  # optional: the run goes on, the trials say why they skip
            if err.details:
                sys.stderr.write(err.details)
            warn(str(err))
            unmet_extra = unmet_packages(extra)
    present = len(wanted) + len(extra) - len(done) - len(unmet_extra)
    complete = list(required) + (list(optional) if not unmet_extra else [])
    summary = (f"installed {plural(len(done), 'package')}" if done else
               f"{plural(present, 'package')} of [{'+'.join(complete)}] present")
    if unmet_extra:
        summary += (f"; not installed, so their trials and tests skip: "
                    f"{describe_unmet(unmet_extra)} (`sudo {install_command(unmet_extra)}`)")
    return summary


def apt_install(unmet):
    """apt-get update + install; a floor apt's candidate still misses is an error."""
    print(f"\nzcbench: installing Debian packages: {' '.join(p.name for p, _ in unmet)}",
          file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends",
                     *(p.name for p, _ in unmet)]):
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        if result.returncode != 0:
            raise ZcbenchError(f"`{' '.join(command)}` failed (exit {result.returncode}); see "
                               "the output above, fix apt and run again", EXIT_ENVIRONMENT,
                               details=result.stdout)
    # apt installs this release's candidate, which may still be below a floor.
    still = unmet_packages([p for p, _ in unmet if p.floor])
    if still:
        raise ZcbenchError(f"too old after apt-get install: {describe_unmet(still)}"
                           f"{upgrade_hint(still)}", EXIT_ENVIRONMENT)


# --------------------------------------------------------------------------- build

def build(build_dir, log=None):
    """Configure and build with CMake; the output goes to build/build.log, shown on failure."""
    if shutil.which("cmake") is None:
        raise ZcbenchError("cmake not found; install it (apt-get install cmake) or run "
                           "without --no-install", EXIT_ENVIRONMENT)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log or build_dir / "build.log")
    configure = ["cmake", "-S", str(REPO_ROOT), "-B", str(build_dir),
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
    # The generator is fixed at the first configure; naming another one later is an error.
    if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
        configure[1:1] = ["-G", "Ninja"]
    jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    compile_ = ["cmake", "--build", str(build_dir), "-j", str(jobs or 1)]
    with open(log_path, "w") as log_file:
        for command, code, what in ((configure, EXIT_ENVIRONMENT, "cmake configure"),
                                    (compile_, EXIT_INTERNAL, "the build")):
            log_file.write(f"$ {shlex.join(command)}\n")
            log_file.flush()
            result = subprocess.run(command, cwd=REPO_ROOT, stdout=log_file,
                                    stderr=subprocess.STDOUT)
            if result.returncode != 0:
                log_file.flush()
                hint = ("fix the error above (a missing library's Debian package belongs in "
                        "ci/debian-packages.txt)" if code == EXIT_ENVIRONMENT
                        else "fix the error above")
                raise ZcbenchError(f"{what} failed (exit {result.returncode}); full log in "
                                   f"{display_path(log_path)}; {hint}", code,
                                   details=log_tail(log_path))


def log_tail(log_path, lines=BUILD_LOG_TAIL_LINES):
    text = Path(log_path).read_text(errors="replace").splitlines()
    skipped = [f"... ({len(text) - lines} earlier lines in {display_path(log_path)})"] \
        if len(text) > lines else []
    return "\n".join(skipped + text[-lines:]) + "\n"


def executable(build_dir, name):
    return Path(build_dir) / name


def require_executables(build_dir, names):
    for name in names:
        path = executable(build_dir, name)
        if not os.access(path, os.X_OK):
            raise ZcbenchError(f"{display_path(path)} not found or not executable; run without "
                               "--no-build to build it", EXIT_ENVIRONMENT)


# --------------------------------------------------------------------------- suites

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


# --------------------------------------------------------------------------- results files

def make_run_id(suites, moment=None):
    """UTC timestamp plus the suite names: 20261125T183000Z-quick."""
    moment = moment or utc_now()
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + "-".join(suites)


RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_run_id(run_id):
    if not RUN_ID_PATTERN.fullmatch(run_id) or run_id == "latest":
        raise ZcbenchError(f"run id '{run_id}' is not accepted; use letters, digits, '.', '_' "
                           "and '-', not starting with '.' or '-', and not 'latest'", EXIT_USAGE)


def atomic_write_json(path, document):
    """Write JSON so readers see the old file or the new one, never half of one.

    A temp file in the same directory, fsync, os.replace: a second Ctrl-C or a crash
    while writing leaves run.json as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def point_latest(results_dir, run_id):
    """Re-point results/latest at this run, atomically (symlink to a temp name, then rename)."""
    latest = Path(results_dir) / "latest"
    tmp = Path(results_dir) / f".latest.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(run_id, tmp)  # relative, so the results folder can be moved or copied
    try:
        os.replace(tmp, latest)
    except OSError as err:
        os.unlink(tmp)
        warn(f"cannot re-point {display_path(latest)}: {err.strerror}; remove it if it is not "
             "a symlink")


class ResultsLock:
    """One run per results folder: flock on RESULTS/.lock, which holds the holder's pid."""

    def __init__(self, results_dir):
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / ".lock"
        self.fd = None

    def acquire(self):
        self.results_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            shown = display_path(self.results_dir).rstrip("/") + "/"
            raise ZcbenchError(f"another run (pid {holder}) is using {shown}; wait for it to "
                               "finish or pass --results-dir", EXIT_ENVIRONMENT) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays for the next run
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def read_records(jsonl_path):
    """Records appended by the executables, one JSON object per line.

    A line the writer had not finished (killed mid-write) is skipped with a warning.
    """
    try:
        text = Path(jsonl_path).read_text(errors="replace")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        is_last = number == len(lines)  # no newline after it: the writer stopped mid-line
        try:
            record = json.loads(line)
        except ValueError:
            what = "truncated last line" if is_last else "unparsable line"
            warn(f"{display_path(jsonl_path)}: skipping {what} {number}")
            continue
        if not isinstance(record, dict):
            warn(f"{display_path(jsonl_path)}: skipping line {number}: not a JSON object")
            continue
        records.append(record)
    return records


def assemble_run(run_id, status, started_at, finished_at, context, records):
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "status": status,
        "started_at": iso_utc(started_at),
        "finished_at": iso_utc(finished_at) if finished_at else None,
        "context": context,
        "records": records,
    }


def count_statuses(records):
    counts = {}
    for record in records:
        status = record.get("status", "?")
        counts[status] = counts.get(status, 0) + 1
    return counts


# --------------------------------------------------------------------------- context

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
    try:
        listing = json.loads(capture([zcbench, "list", "--json"]))
        pmu = listing.get("pmu", pmu)
        transports = listing.get("transports", transports)
    except (ZcbenchError, ValueError, AttributeError) as err:
        warn(f"cannot read `zcbench list --json` ({err}); run.json will lack transports")
    return {"host": host_context(), "tool": tool, "pmu": pmu, "transports": transports,
            "options": options}


# --------------------------------------------------------------------------- children

class Interrupted(Exception):
    """Ctrl-C reached run.py; the child (if any) has been stopped."""


def stop_child(proc, grace_s=CHILD_GRACE_S, term_grace_s=CHILD_TERM_GRACE_S):
    """Wait for a child that got Ctrl-C to finish cleanly, then escalate by its PID only.

    Another Ctrl-C while waiting skips to the next rung instead of abandoning the child.
    """
    rungs = [(None, grace_s), (signal.SIGTERM, term_grace_s), (signal.SIGKILL, None)]
    for sig, timeout in rungs:
        if proc.poll() is not None:
            break
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
                if sig != signal.SIGKILL:
                    warn(f"pid {proc.pid} still running; sent {signal.Signals(sig).name}")
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            continue
    return proc.returncode


def run_child(command, env=None, stdout=None):
    """Run an executable in run.py's process group, so a Ctrl-C reaches both at once."""
    try:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout)
    except OSError as err:
        raise ZcbenchError(f"cannot start {command[0]}: {err.strerror}; run without --no-build",
                           EXIT_ENVIRONMENT) from err
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_child(proc)
        raise Interrupted() from None


# --------------------------------------------------------------------------- report

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


# --------------------------------------------------------------------------- NDR / PDR search

# RFC 2544 section 9.1 frame sizes (Ethernet, FCS included); payload = frame - 46.
RFC2544_FRAMES = (64, 128, 256, 512, 1024, 1280, 1518)
FRAME_OVERHEAD = 46
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
    name, _, opts = str(text).partition(":")
    options = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ZcbenchError(f"transport option '{item}' in '{text}' is not KEY=VALUE",
                               EXIT_USAGE)
        options[key] = value
    if not name:
        raise ZcbenchError(f"transport '{text}' has no name", EXIT_USAGE)
    return name, options


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


def trial_command(zcbench, spec, rate, lab_mode):
    command = [str(zcbench), "run"]
    for flag, text in (("--tx", spec["tx"]), ("--rx", spec["rx"])):
        name, options = parse_driver_spec(text)
        command += [flag, name]
        for key, value in options.items():
            command += [f"{flag}-opt", f"{key}={value}"]
    command += ["--size", str(spec["payload_bytes"]), "--rate", str(rate),
                "--duration", f"{spec['duration_s']:g}", "--warmup", f"{spec['warmup_s']:g}",
                "--lab-mode", lab_mode, "--json"]
    return command


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


def judge_step(record, offered):
    """'pass', 'loss', 'generator short', 'fail' (a check failed) or 'skip'/'error'."""
    status = record.get("status")
    if status in ("skip", "error"):
        return status
    if status == "fail":
        return "fail"
    sent = _number(record, "sent_pps") or 0.0
    if offered is not None and sent < GENERATOR_ACHIEVED_MIN * offered:
        return "generator short"
    return "pass" if (_number(record, "loss_ratio") or 0.0) <= record["_ndr_threshold"] \
        else "loss"


def ndr_search(spec, run_trial, search_id, clock=time.monotonic, emit=None):
    """Highest offered rate whose loss ratio is <= the threshold, by binary search.

    run_trial(rate) -> trial record, rate an int pps or "max". The first trial is at the
    generator's maximum: it gives the upper bound (what the generator achieves) and ends
    the search if the sink loses nothing even there (confirmed by a second flat-out
    trial). Otherwise bisect between a lossless
    lower bound (0) and a failing or untestable upper bound until they are within the
    resolution, and confirm the result with one more trial (a second, one resolution
    lower, if the first confirmation fails). A step whose generator fell short of the
    offered rate lowers the upper bound without counting as a pass: the search never
    claims the sink lossless beyond what the generator reached.
    emit(record), when given, receives each step as soon as it is complete (so Ctrl-C
    keeps the steps already run). Returns (step records, summary record).
    """
    started = clock()
    threshold = float(spec["loss_ratio"])
    resolution, is_percent = parse_resolution(spec["resolution"])
    steps, log = [], []
    state = {"generator_limited": False, "failed": None}
    achieved = {}  # offered rate of a passing step -> what the generator really sent

    def step(rate, role):
        record = run_trial(rate)
        record["_ndr_threshold"] = threshold
        offered = None if rate == "max" else float(rate)
        outcome = judge_step(record, offered)
        del record["_ndr_threshold"]
        record["suite"] = spec.get("suite", "ndr")
        params = record.setdefault("params", {})
        params.update(ndr_search_id=search_id, ndr_step=len(steps), ndr_role=role)
        record.setdefault("derived", {})["ndr_outcome"] = outcome
        steps.append(record)
        if emit is not None:
            emit(record)
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
            state["failed"] = record
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
    first = (steps[0].get("params") or {}) if steps else {}
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
    outcome = EXIT_OK
    for number, spec in enumerate(specs):
        spec["suite"] = suite.get("name") or "ndr"
        search_id = f"{spec['suite']}-{number}-{spec['rx']}-{spec['payload_bytes']}"
        print(f"      NDR search {number + 1}/{len(specs)}: {spec['tx']} -> {spec['rx']} "
              f"{spec['payload_bytes']} B, loss <= {spec['loss_ratio']:g}",
              file=sys.stderr, flush=True)
        scratch = Path(records_path).with_name(f".ndr-step-{os.getpid()}.json")

        def run_trial(rate, spec=spec):
            return zcbench_trial(trial_command(zcbench, spec, rate, args.lab_mode or DEFAULT_LAB_MODE), scratch)
        def emit(record):
            with open(records_path, "a") as out:
                out.write(json.dumps(record) + "\n")
        try:
            _, summary = ndr_search(spec, run_trial, search_id, emit=emit)
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


# --------------------------------------------------------------------------- commands

def setup(args, progress):
    """Install (or check) packages, then build (or check the build)."""
    with progress.step("installing Debian packages" if not args.no_install
                       else "checking Debian packages (--no-install)"):
        required, optional = install_plan(getattr(args, "command", "run"), args)
        summary = ensure_packages(args.no_install, required, optional)
    print(f"      {summary}", file=sys.stderr)
    if not args.no_build:
        with progress.step(f"building in {display_path(args.build_dir)}"):
            build(args.build_dir)


def setup_steps(args):
    return 1 + (0 if args.no_build else 1)


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


def compare_module():
    """reports/compare.py: standard library only, so any python3 can import it."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from reports import compare
    return compare


def command_run(args):
    suites = [load_suite(name) for name in args.suite]
    if args.ndr:
        suites.append(cli_ndr_suite(args))
    for suite in suites:  # bad NDR entries are usage errors before the build
        for i, entry in enumerate(suite.get("ndr") or []):
            ndr_specs(entry, f"suite {suite.get('name')} ndr entry {i}")
    args.suite_names = [suite.get("name") or "?" for suite in suites]
    args.baseline_doc = load_baseline(args.baseline) if args.baseline else None
    if args.run_id:
        check_run_id(args.run_id)
    results_dir = Path(args.results_dir).absolute()
    lock = ResultsLock(results_dir).acquire()
    try:
        if args.run_id:
            pick_run_dir(results_dir, args)  # a taken --run-id is refused before the build
        return run_suites(args, suites, results_dir)
    finally:
        lock.release()


def pick_run_dir(results_dir, args):
    if args.run_id:
        run_dir = results_dir / args.run_id
        if run_dir.exists():
            raise ZcbenchError(f"run id '{args.run_id}' already used ({display_path(run_dir)} "
                               "exists); pick another --run-id", EXIT_USAGE)
        return args.run_id, run_dir
    base = make_run_id(args.suite_names)
    run_id, attempt = base, 1
    while (results_dir / run_id).exists():  # two runs within one second
        attempt += 1
        run_id = f"{base}-{attempt}"
    return run_id, results_dir / run_id


def run_suites(args, suites, results_dir):
    progress = Progress(setup_steps(args) + len(suites) + 1 + (1 if getattr(args, "kernel", None) else 0))
    setup(args, progress)
    needed = ["zcbench"]
    if any(suite.get("trials") for suite in suites):
        needed.append("zcbench-bench")
    if any(suite.get("conformance_filter") for suite in suites):
        needed.append("zcbench-conformance")
    require_executables(args.build_dir, needed)
    report_python = require_report_python()

    run_id, run_dir = pick_run_dir(results_dir, args)
    run_dir.mkdir(parents=True)
    records_path = run_dir / "records.jsonl"
    started_at = utc_now()
    options = {"suites": list(args.suite_names), "argv": list(args.argv), "lab_mode": args.lab_mode or "per trial"}
    repetitions = args.repetitions
    if repetitions is None and len({s.get("repetitions") for s in suites}) == 1:
        repetitions = suites[0].get("repetitions")
    if isinstance(repetitions, int) and repetitions >= 1:
        options["repetitions"] = repetitions

    status, exit_code, failed_check = "complete", EXIT_OK, False
    context = None
    try:
        context = run_context(args.build_dir, options)
        for suite in suites:
            outcome = run_one_suite(args, suite, run_dir, records_path, progress)
            if outcome == EXIT_CHECK_FAILED:
                failed_check = True
            elif outcome != EXIT_OK:
                status, exit_code = "failed", outcome
                break
        if getattr(args, "kernel", None) and status == "complete":
            outcome = run_in_vm(args, run_dir, records_path, progress)
            if outcome == EXIT_CHECK_FAILED:
                failed_check = True
            elif outcome != EXIT_OK:
                status, exit_code = "failed", outcome
    except (Interrupted, KeyboardInterrupt):
        status, exit_code = "interrupted", EXIT_INTERRUPTED
        print(file=sys.stderr)
        warn("interrupted; saving the records completed so far")
    except ZcbenchError as err:
        status, exit_code = "failed", err.exit_code
        warn(str(err))

    if context is None:  # interrupted while learning the context: keep what is cheap
        context = {"host": host_context(), "tool": {"name": "zcbench", "version": "unknown"},
                   "pmu": {"available": False, "reason": "unknown: run interrupted"},
                   "transports": [], "options": options}
    records = read_records(records_path)
    document = assemble_run(run_id, status, started_at, utc_now(), context, records)
    run_json = run_dir / "run.json"
    atomic_write_json(run_json, document)

    counts = count_statuses(records)
    if counts.get("fail") or counts.get("error"):
        failed_check = True
    if exit_code == EXIT_OK and failed_check:
        exit_code = EXIT_CHECK_FAILED

    if args.baseline_doc is not None or args.junit:
        exit_code = max(exit_code, gate(args, document, run_dir))

    report_html = run_dir / "report.html"
    try:
        with progress.step("rendering the report", quiet=False):
            render_report(report_python, run_json, report_html)
    except (Interrupted, KeyboardInterrupt):
        point_latest(results_dir, run_id)
        raise ZcbenchError(f"interrupted while rendering the report; run.json is saved; "
                           f"render it with ./run.py report {display_path(run_dir)}",
                           EXIT_INTERRUPTED) from None
    except ZcbenchError:
        point_latest(results_dir, run_id)
        raise
    point_latest(results_dir, run_id)

    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no records"
    print(f"zcbench: run {run_id} {status} in {format_duration(progress.elapsed())}: "
          f"{len(records)} records ({summary}); exit {exit_code}", file=sys.stderr, flush=True)
    print(report_html.resolve(), flush=True)
    return exit_code


def gate(args, document, run_dir):
    """--baseline and ci: compare.json/compare.html, junit.xml; 1 on a regression."""
    compare = compare_module()
    result = None
    code = EXIT_OK
    if args.baseline_doc is not None:
        result = compare.compare(args.baseline_doc, document)
        atomic_write_json(run_dir / "compare.json", result)
        compare.write_text(run_dir / "compare.html", compare.render_html(result))
        warn(f"baseline {result['base']['run_id']}: {compare.summary_line(result)}; "
             f"see {display_path(run_dir / 'compare.html')}")
        code = result["exit_code"]
    if args.junit:
        compare.write_text(run_dir / "junit.xml", compare.junit_xml(document, result))
        failed = [r.get("name") for r in document["records"]
                  if r.get("kind") == "conformance" and r.get("status") in ("fail", "error")]
        if failed:
            warn(f"{plural(len(failed), 'conformance check')} failed: "
                 + ", ".join(map(str, failed[:5])))
            code = EXIT_CHECK_FAILED
    return code


def child_outcome(code, what):
    """Map an executable's exit code to run.py's: checks failing is 1, anything else stops."""
    if code in (EXIT_OK, EXIT_CHECK_FAILED):
        return code
    if code == EXIT_INTERRUPTED:
        raise Interrupted()
    if code in (EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERNAL):
        warn(f"{what} exited {code}; see its message above; stopping the run")
        return code
    warn(f"{what} exited {code} (crashed?); stopping the run")
    return EXIT_INTERNAL


def guest_kernels():
    """The --kernel names vm/zcvm.py knows (its KERNELS table owns the list)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("zcvm", REPO_ROOT / "vm" / "zcvm.py")
    zcvm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zcvm)
    return list(zcvm.KERNELS)


def run_in_vm(args, run_dir, records_path, progress):
    """Runs conformance and pktgen trials inside a second kernel under qemu
    (vm/zcvm.py) and appends its records, each marked params.kernel and
    params.emulated, to this run's records."""
    out = run_dir / f"vm-{args.kernel}"
    command = [sys.executable, str(REPO_ROOT / "vm" / "zcvm.py"), "--kernel", args.kernel,
               "--work", "conformance,pktgen", "--build", str(args.build_dir), "--out", str(out)]
    with progress.step(f"running conformance and pktgen inside {args.kernel} under qemu", quiet=False):
        code = run_child(command, stdout=sys.stderr.fileno())
    vm_records = out / "vm-records.jsonl"
    if vm_records.exists():
        with open(records_path, "a", encoding="utf-8") as dst:
            for line in vm_records.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    dst.write(line.rstrip("\n") + "\n")
            dst.flush()
            os.fsync(dst.fileno())
    return child_outcome(code, "vm/zcvm.py")


def run_one_suite(args, suite, run_dir, records_path, progress):
    name = suite.get("name") or "?"
    repetitions = args.repetitions or suite.get("repetitions")
    trials = trial_count(suite)
    shape = []
    if trials is not None:
        shape.append(plural(trials, "trial"))
    if repetitions:
        shape.append(plural(repetitions, "repetition"))
    if suite.get("ndr"):
        count = len(suite["ndr"])
        shape.append(f"{count} NDR {'entry' if count == 1 else 'entries'}")
    label = f"running suite {name}" + (f" ({' x '.join(shape)})" if shape else "")
    outcome = EXIT_OK
    with progress.step(label, quiet=False):
        if suite.get("trials"):
            command = [str(executable(args.build_dir, "zcbench-bench")), "--suite",
                       suite.get("path") or name,
                       "--records", str(records_path)]
            if args.lab_mode:
                command += ["--lab-mode", args.lab_mode]
            if args.repetitions:
                command += ["--repetitions", str(args.repetitions)]
            command += [f"--benchmark_out={run_dir / f'gbench-{name}.json'}",
                        "--benchmark_out_format=json"]
            # Children's stdout goes to stderr: run.py's stdout carries only the report path.
            outcome = child_outcome(run_child(command, stdout=sys.stderr.fileno()),
                                    "zcbench-bench")
        conformance_filter = suite.get("conformance_filter")
        if conformance_filter and outcome in (EXIT_OK, EXIT_CHECK_FAILED):
            print(f"      conformance checks {conformance_filter}", file=sys.stderr, flush=True)
            command = [str(executable(args.build_dir, "zcbench-conformance")),
                       f"--gtest_filter={conformance_filter}", "--gtest_brief=1"]
            env = dict(os.environ, ZCBENCH_RECORDS=str(records_path))
            code = child_outcome(run_child(command, env=env, stdout=sys.stderr.fileno()),
                                 "zcbench-conformance")
            outcome = code if code != EXIT_OK else outcome
        if suite.get("ndr") and outcome in (EXIT_OK, EXIT_CHECK_FAILED):
            code = run_ndr_searches(args, suite, records_path)
            outcome = code if code != EXIT_OK else outcome
    return outcome


def command_test(args):
    progress = Progress(setup_steps(args) + 1)
    setup(args, progress)
    if shutil.which("ctest") is None:
        raise ZcbenchError("ctest not found; install cmake or run without --no-install",
                           EXIT_ENVIRONMENT)
    junit = ctest_junit_path(args.build_dir)
    command = ["ctest", "--test-dir", str(args.build_dir), "--output-on-failure",
               "-LE", "^(bench|vm)$", "-j1", "--output-junit", str(junit), *args.passthrough]
    try:
        with progress.step(f"testing: {shlex.join(command)}", quiet=False):
            code = run_child(command)
    except Interrupted:
        warn("interrupted")
        return EXIT_INTERRUPTED
    if junit.is_file():
        warn(f"JUnit XML (written by CTest): {display_path(junit)}")
    else:
        warn(f"CTest wrote no JUnit XML at {display_path(junit)} (it needs CTest >= 3.21)")
    return code


def ctest_junit_path(build_dir):
    """Where `./run.py test` has CTest write its JUnit XML: beside CTest's own
    results (Testing/Temporary/LastTest.log) in the build folder, absolute because
    ctest resolves a relative --output-junit against --test-dir."""
    return (Path(build_dir) / "Testing" / "junit.xml").absolute()


def command_list(args):
    progress = Progress(setup_steps(args))
    setup(args, progress)
    require_executables(args.build_dir, ["zcbench"])
    command = [str(executable(args.build_dir, "zcbench")), "list"]
    if args.json:
        command.append("--json")
    try:
        return run_child(command + args.passthrough)
    except Interrupted:
        return EXIT_INTERRUPTED


def command_remote(args):
    """--remote USER@HOST: one trial with one side on another host (zcrun/remote.py)."""
    from zcrun import remote
    exit_for = {"usage": EXIT_USAGE, "environment": EXIT_ENVIRONMENT,
                "check": EXIT_CHECK_FAILED, "internal": EXIT_INTERNAL}
    try:
        spec = remote.spec_from_args(args, FRAME_OVERHEAD, shlex.join(args.argv))
        args.suite_names = ["remote"]
        if args.run_id:
            check_run_id(args.run_id)
        progress = Progress(setup_steps(args) + 1)
        setup(args, progress)
        require_executables(args.build_dir, ["zcbench"])
        results_dir = Path(args.results_dir).absolute()
        lock = ResultsLock(results_dir).acquire()
        try:
            run_id, run_dir = pick_run_dir(results_dir, args)
            started_at = utc_now()
            with progress.step(f"trial with the {args.remote_side} on {args.remote}", quiet=False):
                record = remote.run_remote_trial(
                    spec, str(executable(args.build_dir, "zcbench")),
                    echo=lambda line: print(f"      {line}", file=sys.stderr, flush=True))
            # after the trial: a refused host is reported before any local work
            context = run_context(args.build_dir, {"suites": ["remote"], "argv": list(args.argv),
                                                   "lab_mode": "remote"})
            run_dir.mkdir(parents=True)
            run_json = run_dir / "run.json"
            atomic_write_json(run_json, assemble_run(run_id, "complete", started_at, utc_now(),
                                                     context, [record]))
            point_latest(results_dir, run_id)
        finally:
            lock.release()
    except remote.RemoteError as err:
        raise ZcbenchError(str(err), exit_for[err.kind]) from None
    derived = record["derived"]
    print(f"zcbench: {record['name']}: {record['status']}; sent {derived['sent_pps']:.0f} pps, "
          f"received {derived['received_pps']:.0f} pps, lost {derived['lost_packets']}",
          file=sys.stderr, flush=True)
    print(f"      the report: ./run.py report {display_path(run_dir)}", file=sys.stderr, flush=True)
    print(run_json.resolve(), flush=True)
    return EXIT_CHECK_FAILED if record["status"] == "fail" else EXIT_OK


def add_remote_options(parser):
    from zcrun import remote
    parser.add_argument("--results-dir", type=absolute_path, default=REPO_ROOT / "results",
                        metavar="DIR", help="where results/<run-id>/ goes (default: results)")
    parser.add_argument("--run-id", metavar="ID", help="name of the run folder")
    add_setup_options(parser)
    remote.add_options(parser)


def command_report(args):
    target = Path(args.run).absolute()
    run_json = target / "run.json" if target.is_dir() else target
    if not run_json.is_file():
        raise ZcbenchError(f"{display_path(run_json)} not found; pass a run folder "
                           "(results/<run-id>) or its run.json", EXIT_USAGE)
    report_html = Path(args.output).absolute() if args.output else \
        run_json.with_name("report.html")
    python = require_report_python()
    try:
        render_report(python, run_json, report_html)
    except Interrupted:
        return EXIT_INTERRUPTED
    print(report_html.resolve(), flush=True)
    return EXIT_OK


def command_compare(args):
    """Two saved runs side by side; nothing is run. Exit 1 when the second regressed."""
    compare = compare_module()
    base, current = (load_baseline(p) for p in (args.base, args.current))
    result = compare.compare(base, current)
    out = Path(args.output).absolute() if args.output else \
        Path(compare.resolve(args.current)).with_name("compare.html")
    compare.write_text(out, compare.render_html(result))
    if args.json:
        atomic_write_json(out.with_suffix(".json"), result)
    warn(compare.summary_line(result))
    for row in result["configs"]:
        if row["verdict"] in ("regressed", "improved"):
            warn(f"{row['verdict']}: {row['config']}: {row['why']}")
    print(out, flush=True)
    return result["exit_code"]


def command_ci(args):
    args.junit = True
    if not args.suite and not args.ndr:
        args.suite = [CI_SUITE]
    return command_run(args)


# --------------------------------------------------------------------------- arguments

class Parser(argparse.ArgumentParser):
    """Argument errors as one "zcbench: ..." line, exit 2."""

    def error(self, message):
        raise ZcbenchError(f"{message}; see {self.prog} --help", EXIT_USAGE)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 1")
    return value


def absolute_path(text):
    # Children run from the repo root, so paths given relative to the caller's cwd are fixed now.
    return Path(text).absolute()


def add_setup_options(parser):
    parser.add_argument("--no-install", action="store_true",
                        help="do not install Debian packages: fail naming the missing ones this "
                        "command needs (a missing peer only makes its trials skip)")
    parser.add_argument("--no-build", action="store_true",
                        help="use the existing build instead of running CMake")
    parser.add_argument("--build-dir", type=absolute_path, default=REPO_ROOT / "build",
                        metavar="DIR",
                        help="CMake build folder (default: build)")


def add_run_options(parser, default_suite=DEFAULT_SUITE):
    parser.add_argument("--suite", action="append", metavar="NAME",
                        help=f"suite to run, repeatable (default: {default_suite}); "
                             "definitions live in suites/definitions/NAME.json")
    parser.add_argument("--lab-mode", choices=LAB_MODES, default=None,
                        help=f"where receive work runs, for every trial (default: each trial's own, "
                             f"else {DEFAULT_LAB_MODE}; af_xdp and xdp_drop trials need xdp)")
    parser.add_argument("--kernel", choices=guest_kernels(), default=None,
                        help="also run the conformance suite and pktgen trials inside that kernel "
                             "under qemu (vm/zcvm.py; records marked emulated)")
    parser.add_argument("--repetitions", type=positive_int, metavar="N",
                        help="repetitions per trial (default: the suite's own)")
    parser.add_argument("--results-dir", type=absolute_path, default=REPO_ROOT / "results",
                        metavar="DIR",
                        help="where results/<run-id>/ goes (default: results)")
    parser.add_argument("--run-id", metavar="ID",
                        help="name of the run folder (default: UTC time and suites, "
                             "e.g. 20261125T183000Z-quick)")
    add_setup_options(parser)
    add_ndr_options(parser)
    if default_suite == DEFAULT_SUITE:
        add_baseline_option(parser)


def rate_or_max(text):
    if text == "max":
        return text
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a rate in pps >= 1 or 'max'")
    return value


def ratio(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a loss ratio in [0, 1) "
                                         "(0 = NDR, 0.001 = PDR at 0.1 %)")
    return value


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number of seconds")
    return value


def size_list(text):
    sizes = []
    for item in text.split(","):
        try:
            sizes.append(int(item))
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{item}' is not a payload size in bytes "
                                             "(18 .. MTU-28)") from None
        if sizes[-1] < 18:
            raise argparse.ArgumentTypeError(f"payload {item} is below 18 bytes (the flood "
                                             "header)")
    return sizes


def add_ndr_options(parser):
    group = parser.add_argument_group(
        "NDR/PDR search (RFC 2544 style, by binary search; every step is a trial record)")
    group.add_argument("--ndr", action="store_true",
                       help="search the highest offered rate each sink takes within the loss "
                            "threshold (alone, or besides --suite)")
    group.add_argument("--ndr-rx", default=",".join(NDR_DEFAULTS["rx"]), metavar="LIST",
                       type=lambda t: [x for x in t.split(";" if ":" in t else ",") if x],
                       help="sinks to search, comma-separated (';' when options are given: "
                            "'recvmmsg:batch=64;recv'); default recv,recvmmsg")
    group.add_argument("--ndr-tx", default=NDR_DEFAULTS["tx"], metavar="TX",
                       help=f"generator transport (default {NDR_DEFAULTS['tx']})")
    group.add_argument("--size", type=size_list, metavar="BYTES[,BYTES]",
                       help="UDP payload sizes to search (default 272)")
    group.add_argument("--rfc2544-sizes", action="store_true",
                       help="RFC 2544 frames 64,128,256,512,1024,1280,1518 "
                            "(payload = frame - 46)")
    group.add_argument("--ndr-loss", type=ratio, default=0.0, metavar="RATIO",
                       help="loss threshold: 0 = NDR (default), e.g. 0.001 = PDR at 0.1 %%")
    group.add_argument("--ndr-resolution", default=NDR_DEFAULTS["resolution"], metavar="R",
                       help="stop when the bounds are this close: N%% of the upper rate or "
                            "a rate in pps (default 2%%)")
    group.add_argument("--ndr-duration", type=seconds, default=NDR_DEFAULTS["duration_s"],
                       metavar="S", help="measurement window per step (default 1 s; RFC "
                                         "2544 says 60 s)")
    group.add_argument("--ndr-warmup", type=float, default=NDR_DEFAULTS["warmup_s"],
                       metavar="S", help="warm-up before each step's window (default 0.3 s)")
    group.add_argument("--ndr-max-rate", type=rate_or_max, default="max", metavar="PPS",
                       help="upper bound of the search (default: what the generator reaches "
                            "flat out)")
    group.add_argument("--ndr-time-budget", type=seconds,
                       default=NDR_DEFAULTS["time_budget_s"], metavar="S",
                       help="stop bisecting a search after this long (default 60 s)")


def add_baseline_option(parser, required=False):
    parser.add_argument("--baseline", metavar="RUN", required=required,
                        help="compare with this run (results/<run-id> or its run.json): "
                             "compare.html beside the report, exit 1 on a regression")


def add_ci_options(parser):
    add_run_options(parser, default_suite=CI_SUITE)
    add_baseline_option(parser)


def add_compare_options(parser):
    parser.add_argument("base", metavar="BASELINE", help="baseline run folder or run.json")
    parser.add_argument("current", metavar="CURRENT", help="current run folder or run.json")
    parser.add_argument("-o", "--output", metavar="HTML",
                        help="comparison page (default: compare.html beside CURRENT's run.json)")
    parser.add_argument("--json", action="store_true",
                        help="also write the verdicts as JSON beside the page")


def add_test_options(parser):
    add_setup_options(parser)


def add_list_options(parser):
    parser.add_argument("--json", action="store_true", help="machine-readable listing")
    add_setup_options(parser)


def add_report_options(parser):
    parser.add_argument("run", metavar="RUN_JSON_OR_DIR",
                        help="a run folder (results/<run-id>, results/latest) or its run.json")
    parser.add_argument("-o", "--output", metavar="HTML",
                        help="where to write the report (default: report.html beside run.json)")


class Command:
    def __init__(self, summary, add_options, handler, passthrough=False):
        self.summary = summary
        self.add_options = add_options
        self.handler = handler
        self.passthrough = passthrough  # accepts arguments after `--` for the tool it wraps


# The command table: a new subcommand (compare, ci, ...) is one entry here.
COMMANDS = {
    "run": Command("install, build, run suites, write results/<run-id>/ and the report "
                   "(the default)", add_run_options, command_run),
    "test": Command("install, build, then ctest without the bench and vm labels; "
                    "arguments after -- go to ctest", add_test_options, command_test,
                    passthrough=True),
    "list": Command("install, build, then list transports and generators usable here",
                    add_list_options, command_list, passthrough=True),
    "report": Command("re-render report.html from a saved run.json", add_report_options,
                      command_report),
    "compare": Command("compare two saved runs (Mann-Whitney U per configuration): "
                       "compare.html, exit 1 on a regression; runs nothing",
                       add_compare_options, command_compare),
    "remote": Command("one trial with its generator or sink on another host over SSH "
                      "(./run.py --remote USER@HOST ...)", add_remote_options, command_remote),
    "ci": Command(f"run the CI suite ({CI_SUITE}), compare with --baseline, write junit.xml; "
                  "exit 1 on a regression or a conformance failure", add_ci_options,
                  command_ci),
}

DESCRIPTION = """\
zcbench measures Linux packet I/O paths (recv, recvmmsg, PACKET_MMAP, AF_XDP, ...)
inside private network namespaces and checks them against the kernel's documented
behaviour. Without a command it installs missing Debian packages, builds with CMake,
runs the suites, writes results/<run-id>/run.json and renders report.html, whose path
is the last line on stdout."""

EXAMPLES = """\
commands:
{commands}

examples:
  sudo ./run.py              run the quick suite and open the report it prints
  sudo ./run.py test         build and run the unit and conformance tests (CTest)
  ./run.py --suite capture --suite generate --repetitions 5
  ./run.py test -- -R tpacket_v3
  ./run.py report results/latest
  ./run.py --ndr --ndr-rx recv,recvmmsg --size 272            zero-loss rate per sink
  ./run.py --suite smoke --baseline results/<run-id>          compare with an earlier run
  ./run.py compare results/<old-run> results/<new-run>        comparison page, exit 1 on regression
  ./run.py ci --baseline results/<run-id>                     CI gate with junit.xml

exit codes: 0 ok, 1 a check failed, 2 usage, 3 environment, 4 internal, 130 interrupted"""


def make_parser(name):
    command = COMMANDS[name]
    if name == "run":
        width = max(len(n) for n in COMMANDS)
        listing = "\n".join(f"  {n:<{width}}  {c.summary}" for n, c in COMMANDS.items())
        parser = Parser(prog="./run.py", description=DESCRIPTION,
                        epilog=EXAMPLES.format(commands=listing),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--version", action="version",
                            version=f"zcbench run.py {tool_version()}")
    else:
        parser = Parser(prog=f"./run.py {name}", description=command.summary)
    command.add_options(parser)
    return parser


def parse_args(argv):
    """argv without the program name; returns (command name, namespace)."""
    argv = list(argv)
    passthrough = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    name = "run"
    if any(a == "--remote" or a.startswith("--remote=") for a in argv):
        name = "remote"  # ./run.py --remote USER@HOST ...: a trial across two hosts
    if argv and argv[0] in COMMANDS:
        name, argv = argv[0], argv[1:]
    elif argv and not argv[0].startswith("-"):
        raise ZcbenchError(f"unknown command '{argv[0]}'; commands: {', '.join(COMMANDS)}; "
                           "see ./run.py --help", EXIT_USAGE)
    if passthrough and not COMMANDS[name].passthrough:
        raise ZcbenchError(f"'{name}' takes no arguments after --; see ./run.py --help",
                           EXIT_USAGE)
    args = make_parser(name).parse_args(argv)
    args.passthrough = passthrough
    args.command = name
    if name == "run" and not args.suite:
        args.suite = [] if args.ndr else [DEFAULT_SUITE]
    if name in ("run", "ci"):
        args.junit = name == "ci"
        args.suite = args.suite or []
    return name, args


def main(argv=None):
    argv = sys.argv if argv is None else argv
    try:
        name, args = parse_args(argv[1:])
        args.argv = list(argv)
        return COMMANDS[name].handler(args)
    except ZcbenchError as err:
        if err.details:
            sys.stderr.write(err.details)
        warn(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        warn("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
