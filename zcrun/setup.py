"""Setup: the Debian package plan (ci/debian-packages.txt), apt, and the CMake build."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .common import (BUILD_LOG_TAIL_LINES, EXIT_ENVIRONMENT, EXIT_INTERNAL, REPO_ROOT,
                     ZcbenchError, display_path, package_list_path, plural, warn)


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
    optional = ["peers"] if command in ("run", "ci", "test", "calibrate") else []
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
