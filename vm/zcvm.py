#!/usr/bin/env python3
"""zcvm: run zcbench inside a second kernel under qemu (TCG), bring the records back.

    python3 vm/zcvm.py --kernel debian-6.1 --work conformance,pktgen --build build --out DIR

Fetches Debian's kernel package (apt-get download + dpkg-deb -x; never installed
on the host: its hooks would run, and the exact version leaves the mirror over
time), builds an initramfs (busybox-static, the modules the work needs, the
zcbench binaries and their shared libraries), boots it with qemu-system-x86_64
-accel tcg (nested KVM hung at boot here), runs the work inside, and writes

    DIR/vm-records.jsonl   one record per line; params.kernel = the guest's
                           uname -r, params.emulated = true
    DIR/vm-context.json    kernel package and version, qemu, timings, exit codes
    DIR/vm.log             host-side steps, then the guest's serial console
    DIR/artifacts/         files the guest's trials wrote (pktgen scripts)

The guest sends its files over a second serial port (ttyS1), base64 between
marker lines, so kernel messages on the console (ttyS0) cannot interleave.
Standard library only, like run.py. Exit codes as zcbench's: 0 ok, 1 a record
failed, 2 usage, 3 environment (no qemu, no package), 4 the guest gave no
result (timeout, crash), 130 interrupted.
"""
import argparse
import base64
import ctypes
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENV, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

HERE = os.path.dirname(os.path.abspath(__file__))

# --kernel NAME -> Debian meta package and the versioned package prefix it must
# point at (the meta package follows the distribution's current kernel). The one
# list of guest kernels: run.py's --kernel choices and tests/vm_check.py read it.
# 6.12 is bookworm's second kernel line (bookworm-security carries it); its
# modules ship xz-compressed, which module_file() unpacks for busybox insmod.
KERNELS = {
    "debian-6.1": {"meta": "linux-image-amd64", "prefix": "linux-image-6.1."},
    "debian-6.12": {"meta": "linux-image-6.12-amd64", "prefix": "linux-image-6.12."},
}
WORK_ITEMS = ("conformance", "pktgen", "list")
# Modules the guest loads (with their dependencies): the lab's veth and pktgen.
GUEST_MODULES = ("veth", "pktgen")

# pktgen trials run inside the guest by default: a paced one that the sink
# keeps up with (sent == received expected). Emulated CPU: functional figures
# only. (At max rate veth's tx_dropped counts pktgen's retried attempts, which
# the drop attribution must first discount: pktgen.max_rate_sends_its_count.)
DEFAULT_PKTGEN_TRIALS = (
    "run --generator pktgen --rx recvmmsg --size 272 --rate 5000 --count 10000 --duration 20 --warmup 0.2",
)
TPACKET_V3_TRIAL = ("run --generator pktgen --rx tpacket_v3 --size 272 --rate 5000 --count 10000 "
                    "--duration 20 --warmup 0.2")


class ZcvmError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


def usage(msg):
    return ZcvmError(EXIT_USAGE, msg)


def env(msg):
    return ZcvmError(EXIT_ENV, msg)


class Log:
    """Host-side steps, to stderr and to vm.log."""

    def __init__(self, path):
        self.f = open(path, "w", encoding="utf-8")

    def __call__(self, msg):
        line = "zcvm: " + msg
        print(line, file=sys.stderr, flush=True)
        self.f.write(line + "\n")
        self.f.flush()

    def raw(self, text):
        self.f.write(text)
        self.f.flush()


def run_cmd(args, **kw):
    try:
        return subprocess.run(args, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        raise env(f"{args[0]} not found; install it (ci/debian-packages.txt lists the packages)")
    except subprocess.CalledProcessError as e:
        raise env(f"{' '.join(args)} failed (exit {e.returncode}): {(e.stderr or e.stdout).strip()[-500:]}")


# ---------------------------------------------------------------------------
# The kernel: resolved, fetched, cached.

def resolve_kernel(name):
    """(package, version) of the current kernel behind --kernel NAME."""
    spec = KERNELS[name]
    out = run_cmd(["apt-cache", "depends", "--important", spec["meta"]]).stdout
    deps = re.findall(r"^\s*Depends:\s*(\S+)", out, re.M)
    pkgs = [d for d in deps if d.startswith(spec["prefix"])]
    if not pkgs:
        raise env(f"{spec['meta']} depends on {deps or 'nothing'}, not a {spec['prefix']}* package; "
                  f"this apt source does not carry the kernel --kernel {name} names (run apt-get update?)")
    pkg = pkgs[0]
    show = run_cmd(["apt-cache", "show", "--no-all-versions", pkg]).stdout
    m = re.search(r"^Version:\s*(\S+)", show, re.M)
    if not m:
        raise env(f"apt-cache show {pkg} gives no Version")
    return pkg, m.group(1)


def cached_kernels(cache_dir):
    found = []
    if os.path.isdir(cache_dir):
        for d in sorted(os.listdir(cache_dir)):
            meta = os.path.join(cache_dir, d, "kernel.json")
            if os.path.isfile(meta):
                with open(meta) as f:
                    found.append((os.path.join(cache_dir, d), json.load(f)))
    return found


def fetch_kernel(name, cache_dir, log):
    """Directory holding boot/vmlinuz-*, lib/modules/<release>/, kernel.json."""
    try:
        pkg, version = resolve_kernel(name)
    except ZcvmError as e:
        # Offline: a kernel fetched earlier still serves, and says which it is.
        prefix = KERNELS[name]["prefix"]
        old = [c for c in cached_kernels(cache_dir) if c[1]["package"].startswith(prefix)]
        if not old:
            raise
        log(f"cannot resolve {name} ({e}); using the cached {old[-1][1]['package']} {old[-1][1]['version']}")
        return old[-1][0], old[-1][1]
    target = os.path.join(cache_dir, f"{pkg}_{version}")
    if os.path.isfile(os.path.join(target, "kernel.json")):
        with open(os.path.join(target, "kernel.json")) as f:
            meta = json.load(f)
        log(f"kernel {pkg} {version} from the cache {target}")
        return target, meta
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir)
    try:
        log(f"apt-get download {pkg}={version} (not installed: extracted with dpkg-deb -x)")
        run_cmd(["apt-get", "download", "-o", "APT::Sandbox::User=root", f"{pkg}={version}"], cwd=tmp)
        debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
        if len(debs) != 1:
            raise env(f"apt-get download {pkg}={version} left {debs} in {tmp}")
        deb = os.path.join(tmp, debs[0])
        sha = hashlib.sha256()
        with open(deb, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
        root = os.path.join(tmp, "root")
        run_cmd(["dpkg-deb", "-x", deb, root])
        releases = os.listdir(os.path.join(root, "lib", "modules"))
        if len(releases) != 1:
            raise env(f"{debs[0]} ships modules for {releases}, expected one release")
        release = releases[0]
        meta = {"name": name, "package": pkg, "version": version, "release": release,
                "deb": debs[0], "deb_sha256": sha.hexdigest(),
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with open(os.path.join(root, "kernel.json"), "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(root, target)  # atomic: a half-extracted kernel is never taken for a cached one
        log(f"kernel {pkg} {version} (release {release}) cached in {target}")
        return target, meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Module files as packages ship them: plain, or compressed by the kernel's
# CONFIG_MODULE_COMPRESS_* (Debian 6.12: .ko.xz). busybox insmod takes only an
# uncompressed ELF, so the initramfs carries them decompressed.
MODULE_SUFFIXES = {".ko": None, ".ko.xz": lzma.decompress}


def module_name(filename):
    """(name with '-' as '_', suffix) of a module file name, or None."""
    for suffix in MODULE_SUFFIXES:
        if filename.endswith(suffix):
            return filename[:-len(suffix)].replace("-", "_"), suffix
    return None


def module_data(path):
    """The uncompressed ELF bytes of a module file."""
    data = read(path)
    unpack = MODULE_SUFFIXES[module_name(os.path.basename(path))[1]]
    return unpack(data) if unpack else data


def modinfo_depends(ko_path):
    """The `depends=` field of a module's .modinfo ELF section (modules.dep is
    written by depmod at install time, so the package does not ship it)."""
    data = module_data(ko_path)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise env(f"{ko_path} is not an ELF64 module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for field in data[off:off + size].split(b"\0"):
                if field.startswith(b"depends="):
                    return [d for d in field[8:].decode().split(",") if d]
            return []
    raise env(f"{ko_path} has no .modinfo section")


def initramfs_name(rel):
    """Where a module lands in the initramfs: its path, uncompressed."""
    name, suffix = module_name(os.path.basename(rel))
    return rel[:-len(suffix)] + ".ko"


def module_load_order(kernel_dir, release, wanted):
    """Module files (relative to lib/modules/<release>) in load order, dependencies first."""
    base = os.path.join(kernel_dir, "lib", "modules", release)
    index = {}
    for dirpath, _, files in os.walk(os.path.join(base, "kernel")):
        for fn in files:
            parsed = module_name(fn)
            if parsed:
                index[parsed[0]] = os.path.relpath(os.path.join(dirpath, fn), base)
    order = []

    def visit(mod, chain):
        key = mod.replace("-", "_")
        if key in chain:
            raise env(f"module dependency cycle: {' -> '.join(chain + [key])}")
        if key not in index:
            raise env(f"module {key} is not in {base} (built in, or not built by this kernel?)")
        rel = index[key]
        if rel in order:
            return
        for dep in modinfo_depends(os.path.join(base, rel)):
            visit(dep, chain + [key])
        order.append(rel)

    builtin = set()
    bfile = os.path.join(base, "modules.builtin")
    if os.path.isfile(bfile):
        with open(bfile) as f:
            builtin = {module_name(os.path.basename(l.strip()))[0] for l in f if module_name(l.strip())}
    for m in wanted:
        if m.replace("-", "_") not in builtin:
            visit(m, [])
    return order


# ---------------------------------------------------------------------------
# The initramfs: a cpio "newc" archive, gzip-compressed.

class Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b""):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self.buf.write(b"\0" * (-(110 + len(name_b)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, path):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        self.dir(os.path.dirname(path))
        self.dirs.add(path)
        self._entry(path, 0o040755)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self._entry(path, 0o100000 | mode, data)

    def symlink(self, path, target):
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self._entry(path, 0o120777, target.encode())

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def shared_libraries(binary):
    """Paths the dynamic loader maps for `binary` (its own path included)."""
    out = run_cmd(["ldd", binary]).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
        elif "not found" in line:
            raise env(f"ldd {binary}: {line.strip()}")
    return libs


def stripped(binary):
    """The binary without debug info (a RelWithDebInfo build is mostly DWARF)."""
    if not shutil.which("objcopy"):
        return read(binary)
    with tempfile.NamedTemporaryFile() as t:
        subprocess.run(["objcopy", "--strip-debug", binary, t.name], check=True)
        return read(t.name)


def build_initramfs(kernel_dir, meta, binaries, work_conf, log):
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.isfile(busybox):
        raise env("busybox not found; install busybox-static")
    c = Cpio()
    for d in ("proc", "sys", "dev", "tmp", "run", "etc", "bin", "sbin", "root"):
        c.dir(d)
    c.file("bin/busybox", read(busybox), 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", read(os.path.join(HERE, "init.sh")), 0o755)
    if os.path.isfile("/etc/os-release"):
        c.file("etc/os-release", read("/etc/os-release"))
    release = meta["release"]
    mods = module_load_order(kernel_dir, release, GUEST_MODULES)
    for rel in mods:
        c.file(f"lib/modules/{release}/{initramfs_name(rel)}",
               module_data(os.path.join(kernel_dir, "lib", "modules", release, rel)))
    c.file("zcvm/modules.list", "".join(f"/lib/modules/{release}/{initramfs_name(m)}\n" for m in mods).encode())
    libs = set()
    for name, path in binaries.items():
        c.file(f"zcvm/bin/{name}", stripped(path), 0o755)
        libs.update(shared_libraries(path))
    for lib in sorted(libs):
        c.file(lib, read(os.path.realpath(lib)), 0o755)
    c.file("zcvm/work.conf", work_conf.encode())
    data = gzip.compress(c.finish(), compresslevel=3)
    log(f"initramfs: {len(data) / 1e6:.1f} MB gzip; modules {', '.join(os.path.basename(m) for m in mods)}; "
        f"{len(libs)} shared libraries")
    return data


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def work_conf(work, pktgen_trials, gtest_filter, item_timeout_s):
    lines = [f"ZC_WORK={shell_quote(' '.join(work))}",
             f"ZC_GTEST_FILTER={shell_quote(gtest_filter)}",
             f"ZC_ITEM_TIMEOUT={int(item_timeout_s)}",
             f"ZC_PKTGEN_COUNT={len(pktgen_trials)}"]
    for i, t in enumerate(pktgen_trials):
        lines.append(f"ZC_PKTGEN_{i}={shell_quote(t)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# qemu

def _die_with_parent(parent):
    """preexec_fn: PR_SET_PDEATHSIG, so qemu dies with zcvm even when zcvm is
    SIGKILLed (zcvm has one thread, the one that forks and waits); if zcvm died
    before prctl took hold, nobody would ever stop qemu: leave at once."""
    def preexec():
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(127)
    return preexec


def memfd(name, data=b""):
    """A file with no name anywhere, for qemu as /dev/fd/N: nothing to remove,
    even when zcvm is SIGKILLed (a temp directory would outlive it)."""
    fd = os.memfd_create(name)  # close-on-exec; handed to qemu through pass_fds
    os.write(fd, data)
    return fd


def boot(kernel_dir, meta, initrd_path, console_path, channel_path, memory, smp, timeout_s, log,
         pass_fds=()):
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise env("qemu-system-x86_64 not found; install qemu-system-x86")
    vmlinuz = os.path.join(kernel_dir, "boot", f"vmlinuz-{meta['release']}")
    cmd = [qemu, "-accel", "tcg", "-cpu", "max", "-m", memory, "-smp", str(smp),
           "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-kernel", vmlinuz, "-initrd", initrd_path,
           "-append", "console=ttyS0 loglevel=4 panic=-1 rdinit=/init",
           "-chardev", f"file,id=console,path={console_path}", "-serial", "chardev:console",
           "-chardev", f"file,id=channel,path={channel_path}", "-serial", "chardev:channel"]
    log("boot: " + " ".join(cmd))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent(os.getpid()), pass_fds=pass_fds)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)  # by PID: only the qemu this run started
        out, _ = proc.communicate()
        timed_out = True
    except BaseException:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    wall = time.monotonic() - t0
    if out:
        log("qemu said: " + out.decode(errors="replace").strip()[-2000:])
    return {"qemu_exit": proc.returncode, "timed_out": timed_out, "boot_to_poweroff_s": round(wall, 2),
            "command": cmd}


MARKER = re.compile(r"^ZCVM-BEGIN (\S+) (\d+) ([0-9a-f]{64})$")


def decode_channel(path):
    """Files the guest sent over ttyS1: {name: bytes}; a damaged file is an error."""
    files, cur, chunks = {}, None, []
    with open(path, "rb") as f:
        text = f.read().decode("ascii", errors="replace")
    for line in text.replace("\r", "").split("\n"):
        m = MARKER.match(line)
        if m:
            cur, chunks = m.groups(), []
        elif cur and line == f"ZCVM-END {cur[0]}":
            data = base64.b64decode("".join(chunks))
            if len(data) != int(cur[1]) or hashlib.sha256(data).hexdigest() != cur[2]:
                raise ZcvmError(EXIT_INTERNAL, f"guest file {cur[0]} arrived damaged over the serial channel")
            files[cur[0]] = data
            cur = None
        elif cur:
            chunks.append(line.strip())
    return files


def tag(record, release, meta):
    params = record.setdefault("params", {})
    params["kernel"] = release
    params["emulated"] = True
    params["kernel_package"] = f"{meta['package']} {meta['version']}"
    return record


def collect_records(files, release, meta):
    records = []
    if "conformance.jsonl" in files:
        for line in files["conformance.jsonl"].decode().splitlines():
            if line.strip():
                records.append(tag(json.loads(line), release, meta))
    for name in sorted(n for n in files if re.fullmatch(r"pktgen-\d+\.json", n)):
        try:
            doc = json.loads(files[name])
        except ValueError:
            continue  # the trial failed before printing; its .err says why (in vm.log)
        for r in doc.get("records", []):
            records.append(tag(r, release, meta))
    return records


def parse_args(argv):
    p = argparse.ArgumentParser(prog="zcvm.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--kernel", required=True, help="accepted: " + ", ".join(KERNELS))
    p.add_argument("--work", default="conformance,pktgen", help="comma list of: " + ", ".join(WORK_ITEMS))
    p.add_argument("--build", default="build", help="CMake build folder holding zcbench and zcbench-conformance")
    p.add_argument("--out", required=True, help="folder for vm-records.jsonl, vm-context.json, vm.log")
    p.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                   os.path.expanduser("~/.cache"), "zcbench", "kernels"))
    p.add_argument("--gtest-filter", default="*", help="conformance tests to run inside the guest")
    p.add_argument("--pktgen-trial", action="append", default=None,
                   help="zcbench arguments of one pktgen trial (repeatable; replaces the defaults)")
    p.add_argument("--memory", default="2G")
    p.add_argument("--smp", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1500, help="seconds for the whole boot")
    a = p.parse_args(argv)
    if a.kernel not in KERNELS:
        raise usage(f"--kernel {a.kernel!r} is unknown; accepted: {', '.join(KERNELS)}")
    a.work = [w for w in a.work.split(",") if w]
    bad = [w for w in a.work if w not in WORK_ITEMS]
    if bad or not a.work:
        raise usage(f"--work {','.join(bad) or '(empty)'} is not accepted; accepted: {', '.join(WORK_ITEMS)}")
    if not (1 <= a.smp <= 8):
        raise usage(f"--smp {a.smp} is not accepted; accepted: 1..8")
    if not (30 <= a.timeout <= 7200):
        raise usage(f"--timeout {a.timeout} is not accepted; accepted: 30..7200 seconds")
    return a


def main(argv=None):
    try:
        a = parse_args(argv)
    except ZcvmError as e:
        print(f"zcvm: {e}", file=sys.stderr)
        return e.code
    os.makedirs(a.out, exist_ok=True)
    log = Log(os.path.join(a.out, "vm.log"))
    t_start = time.monotonic()
    try:
        return run(a, log, t_start)
    except ZcvmError as e:
        log(str(e))
        return e.code
    except KeyboardInterrupt:
        log("interrupted")
        return EXIT_INTERRUPTED


def run(a, log, t_start):
    binaries = {}
    if "conformance" in a.work:
        binaries["zcbench-conformance"] = os.path.join(a.build, "zcbench-conformance")
    if "pktgen" in a.work or "list" in a.work:
        binaries["zcbench"] = os.path.join(a.build, "zcbench")
    for name, path in binaries.items():
        if not os.access(path, os.X_OK):
            raise env(f"{path} is missing; build first (cmake -S . -B {a.build} -G Ninja && cmake --build {a.build})")
    trials = a.pktgen_trial
    if trials is None and "pktgen" in a.work:
        trials = list(DEFAULT_PKTGEN_TRIALS)
        listing = run_cmd([binaries["zcbench"], "list", "--json"]).stdout
        if re.search(r'"name"\s*:\s*"tpacket_v3"', listing):
            trials.append(TPACKET_V3_TRIAL)
    trials = [t + (" --json" if "--json" not in t.split() else "") for t in (trials or [])]

    kernel_dir, meta = fetch_kernel(a.kernel, a.cache, log)
    item_timeout = max(60, a.timeout - 60)
    initrd = build_initramfs(kernel_dir, meta, binaries,
                             work_conf(a.work, trials if "pktgen" in a.work else [], a.gtest_filter, item_timeout), log)
    # qemu's files are memfds, named /dev/fd/N in both processes (see memfd()).
    fds = [memfd("zcvm-initrd", initrd), memfd("zcvm-console"), memfd("zcvm-channel")]
    try:
        initrd_path, console, channel = (f"/dev/fd/{fd}" for fd in fds)
        t_boot = time.monotonic()
        b = boot(kernel_dir, meta, initrd_path, console, channel, a.memory, a.smp, a.timeout, log,
                 pass_fds=fds)
        log(f"guest ran {b['boot_to_poweroff_s']} s" + (" and was killed at the timeout" if b["timed_out"] else ""))
        log.raw("----- guest serial console -----\n")
        if os.path.exists(console):
            log.raw(read(console).decode(errors="replace").replace("\r", ""))
        log.raw("----- end of guest console -----\n")
        files = decode_channel(channel) if os.path.exists(channel) else {}
    finally:
        for fd in fds:
            os.close(fd)
    art_dir = os.path.join(a.out, "artifacts")
    for name, data in files.items():
        if name.startswith("artifacts/"):
            dest = os.path.join(art_dir, os.path.relpath(name, "artifacts"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(data)
        elif name.endswith((".err", ".log")):
            log.raw(f"----- guest {name} -----\n" + data.decode(errors="replace"))
    release = files.get("uname", b"").decode().strip()
    status = json.loads(files["status.json"]) if "status.json" in files else {}
    records = collect_records(files, release or meta["release"], meta)
    with open(os.path.join(a.out, "vm-records.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    counts = {}
    for r in records:
        counts[r.get("status")] = counts.get(r.get("status"), 0) + 1
    context = {"kernel": meta, "guest_release": release, "emulated": True, "accel": "tcg",
               "memory": a.memory, "smp": a.smp, "work": a.work, "pktgen_trials": trials,
               "guest_exit_codes": status, "boot": b, "records": counts,
               "wall_s": round(time.monotonic() - t_start, 2), "guest_wall_s": round(time.monotonic() - t_boot, 2)}
    if "list.json" in files:
        try:
            context["guest_list"] = json.loads(files["list.json"])
        except ValueError:
            log("guest list.json is not JSON")
    with open(os.path.join(a.out, "vm-context.json"), "w") as f:
        json.dump(context, f, indent=1)
    log(f"{len(records)} records from kernel {release or '?'}: {counts}; wrote {a.out}/vm-records.jsonl")
    if b["timed_out"] or "status.json" not in files:
        raise ZcvmError(EXIT_INTERNAL, f"the guest did not finish within {a.timeout:.0f} s "
                        f"(files received: {sorted(files) or 'none'}); see {a.out}/vm.log")
    if release and release != meta["release"]:
        raise ZcvmError(EXIT_INTERNAL, f"the guest runs {release}, not the fetched {meta['release']}")
    bad_items = {k: v for k, v in status.items() if v not in (0, 1)}
    if bad_items:
        log(f"guest work items with environment/internal exit codes: {bad_items}")
    if counts.get("fail") or counts.get("error"):
        return EXIT_FAILED
    return EXIT_INTERNAL if bad_items else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
