"""--remote USER@HOST: one side of a trial (generator or sink) on another machine.

Only OpenSSH's client is used: one ControlMaster connection per run (BatchMode, its
ControlPath in a private temp dir, closed with `ssh -O exit` on every exit path),
sessions and scp multiplexed over it; no agent or daemon of ours on either end.

    ./run.py --remote root@hostB --remote-side sink --iface eth1 --remote-iface eth1 \
             --size 272 --rate 100000 --duration 5

The sequence of a run:
1. open the master connection (a refused or silent host: OpenSSH's own message, exit 3);
2. probe both ends the same way (PROBE_SCRIPT: architecture, distribution, zcbench version,
   boot id, clock synchronisation);
3. use the remote zcbench when its `--version` line equals ours; otherwise ship our binary
   (scp into a temp dir held by the master connection's own session, removed when the
   connection ends, however it ends) when architecture and distribution match,
   else say what to install (exit 3);
4. lock-step: the sink starts first; the generator starts once the sink printed its ready
   line (READY_LINE, harness/main.cc); both run under SIDE_SCRIPT, which snapshots the
   host's own counters (CPU, UDP, softnet, the interface) around the zcbench process and
   ends it when our end of the session goes away (SIGKILL of run.py included);
5. merge_sides(): one trial record from both sides' own counters (sent from the
   generator's own count, never inferred from what arrived).

Errors are RemoteError(message, kind) with kind usage | environment | check | internal;
run.py maps the kind to its exit code.
"""

import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from .ndr import GENERATOR_ACHIEVED_MIN  # the harness's kGeneratorShortRatio (harness/derive.cc)

# harness/wire.cc (run_wire_sink) prints this on stderr once its socket or ring is open and
# its window has started: the generator may start.
READY_LINE = "zcbench sink: ready"
SIDE_PREFIX = "zcside: "
SIDES = ("gen", "sink")
CONNECT_TIMEOUT_S = 10
MASTER_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 30.0
# The sink's window covers warm-up + measurement + this much more: the generator starts
# one SSH round trip after the ready line and its own start is 1 ms after it is exec'd.
SINK_SLACK_S = 2.0
PR_SET_PDEATHSIG = 1

# Runs on each end (local: `sh -c`; remote: one SSH session): the facts that decide
# whether the two ends can run one trial, as key=value lines. $1 = the zcbench to ask.
PROBE_SCRIPT = r"""
echo "arch=$(uname -m)"
( . /etc/os-release 2>/dev/null && echo "os=$ID $VERSION_ID" )
echo "kernel=$(uname -r)"
echo "hostname=$(uname -n)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
if z=$(command -v "$1" 2>/dev/null); then
  echo "zcbench=$z"
  echo "version=$("$z" --version 2>&1 | head -n 1)"
fi
if command -v chronyc >/dev/null 2>&1; then
  echo "chrony=$(chronyc -n tracking 2>&1 | tr '\n' ';')"
fi
if command -v pmc >/dev/null 2>&1; then
  echo "ptp=$(pmc -u -b 0 'GET TIME_STATUS_NP' 2>&1 | tr '\n' ';')"
fi
"""

# Wraps one side's zcbench: $1 = the interface it uses, then the zcbench command line. The counters are the
# host's own, read the way every host has them (procfs, `ip -s -j link` over netlink:
# sysfs would show the mounter's namespace, not the process's). The watcher ends
# zcbench when stdin (run.py's end of the pipe or session) reaches EOF before zcbench
# finished: run.py gone, even by SIGKILL, on either end. After a normal end the watcher
# is killed before EOF can come. SIGPIPE and SIGHUP are ignored: the counters after the
# end are still taken when the session went away (and then written nowhere).
SIDE_SCRIPT = r"""
iface=$1; shift
trap '' PIPE HUP
snap() {
  echo "zcside: $1 stat $(head -n 1 /proc/stat)"
  echo "zcside: $1 udp $(grep '^Udp:' /proc/net/snmp | tail -n 1)"
  echo "zcside: $1 softnet $(awk '{print $2}' /proc/net/softnet_stat | tr '\n' ' ')"
  echo "zcside: $1 link $(ip -s -j link show dev "$iface" 2>&1)"
}
snap before >&2
echo "zcside: before cpu $(cut -d ' ' -f 16,17 /proc/$$/stat) $(getconf CLK_TCK)" >&2
exec 3<&0
"$@" </dev/null &
pid=$!
( cat <&3 >/dev/null 2>&1; kill -TERM $pid 2>/dev/null ) \
  </dev/null >/dev/null 2>&1 &
watch=$!
wait $pid
rc=$?
echo "zcside: after cpu $(cut -d ' ' -f 16,17 /proc/$$/stat) $(getconf CLK_TCK)" >&2
kill $watch 2>/dev/null
snap after >&2
exit $rc
"""

# The master connection's own session on the remote host: a private temp dir (for a
# shipped binary) that lives exactly as long as the connection: removed when its stdin
# reaches EOF, which happens however the connection ends (ssh -O exit, run.py killed,
# the network gone).
REMOTE_HOLDER = r"""
trap '' HUP PIPE
d=$(mktemp -d "${TMPDIR:-/tmp}/zcbench-remote.XXXXXX") || exit 1
echo "zcbench-remote-dir=$d"
cat >/dev/null
rm -rf "$d"
"""


class RemoteError(Exception):
    def __init__(self, message, kind="environment"):
        super().__init__(message)
        self.kind = kind


_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(sig=signal.SIGKILL):
    """preexec_fn: the child gets SIG when run.py goes, even by SIGKILL. Only a C call
    in the child: run.py has reader threads, so no import or lock may happen there."""
    _LIBC.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(1)


def _term_with_parent():
    _die_with_parent(signal.SIGTERM)


# The master connection runs under this: when run.py goes (SIGTERM by PR_SET_PDEATHSIG,
# even after a SIGKILL of run.py) it ends ssh and removes the private ControlPath dir,
# which nobody else would remove then. $1 = that dir, then the ssh command line. ssh
# keeps run.py's pipe as stdin (an asynchronous list would get /dev/null).
MASTER_SCRIPT = r"""
dir=$1; shift
exec 3<&0
"$@" <&3 3<&- &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid; rm -rf "$dir"; exit 143' TERM INT HUP
wait $pid
rc=$?
rm -rf "$dir"
exit $rc
"""


def _last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ---- the SSH connection ------------------------------------------------------------

class Ssh:
    """One ControlMaster connection to TARGET; every session and copy goes over it."""

    def __init__(self, target, config=None, connect_timeout=CONNECT_TIMEOUT_S):
        self.target = target
        self.config = config
        self.connect_timeout = connect_timeout
        self.dir = tempfile.mkdtemp(prefix="zcbench-ssh.")
        self.control = os.path.join(self.dir, "master")
        self.master = None
        self.remote_dir = None

    def options(self):
        argv = ["-F", self.config] if self.config else []
        return argv + ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                       "-o", f"ControlPath={self.control}"]

    def open(self):
        """Connect; the master's own session holds the remote temp dir (REMOTE_HOLDER)."""
        ssh = ["ssh"] + self.options() + ["-o", "ControlMaster=yes", "-o", "ControlPersist=no",
                                          "-T", self.target, "--", f"sh -c {shlex.quote(REMOTE_HOLDER)}"]
        self.master = subprocess.Popen(["sh", "-c", MASTER_SCRIPT, "zcmaster", self.dir] + ssh,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True,
                                       preexec_fn=_term_with_parent)
        deadline = time.monotonic() + MASTER_TIMEOUT_S
        ready = threading.Event()

        def read_dir():
            for line in self.master.stdout:
                if line.startswith("zcbench-remote-dir="):
                    self.remote_dir = line.strip().split("=", 1)[1]
                    ready.set()
        threading.Thread(target=read_dir, daemon=True).start()
        while True:
            if self.master.poll() is not None:
                message = _last_line(self.master.stderr.read()) or \
                    f"ssh exited {self.master.returncode}"
                raise RemoteError(f"ssh {self.target}: {message}")
            if ready.wait(0.05):
                check = subprocess.run(["ssh"] + self.options() + ["-O", "check", self.target],
                                       capture_output=True)
                if check.returncode == 0:
                    return self
            if time.monotonic() > deadline:
                raise RemoteError(f"ssh {self.target}: no connection after {MASTER_TIMEOUT_S:.0f} s")

    def command(self, remote_command):
        return ["ssh"] + self.options() + ["-o", "ControlMaster=no", self.target, "--",
                                           remote_command]

    def run(self, remote_command, timeout=60):
        try:
            return subprocess.run(self.command(remote_command), capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"ssh {self.target}: '{remote_command[:60]}' did not finish "
                              f"within {timeout} s") from None

    def copy(self, local, remote_path):
        result = subprocess.run(["scp", "-q"] + self.options() + ["-o", "ControlMaster=no",
                                                                 local, f"{self.target}:{remote_path}"],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RemoteError(f"scp {local} to {self.target}:{remote_path}: "
                              f"{_last_line(result.stderr) or 'exit %d' % result.returncode}")

    def close(self):
        """EOF to the holder session (the remote dir goes), ssh -O exit, the private dir."""
        if self.master is not None and self.master.poll() is None:
            self.master.stdin.close()
            subprocess.run(["ssh"] + self.options() + ["-O", "exit", self.target],
                           capture_output=True, timeout=10)
            try:
                self.master.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.master.terminate()  # MASTER_SCRIPT's trap ends ssh
                self.master.wait()
        if self.master is not None:
            for stream in (self.master.stdin, self.master.stdout, self.master.stderr):
                stream.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- what each end is ---------------------------------------------------------------

def parse_probe(text):
    facts = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def probe_local(zcbench):
    result = subprocess.run(["sh", "-c", PROBE_SCRIPT, "zcprobe", zcbench], capture_output=True,
                            text=True, timeout=30)
    return parse_probe(result.stdout)


def probe_remote(ssh, zcbench):
    result = ssh.run(f"sh -c {shlex.quote(PROBE_SCRIPT)} zcprobe {shlex.quote(zcbench)}")
    if result.returncode != 0 and not result.stdout:
        raise RemoteError(f"ssh {ssh.target}: {_last_line(result.stderr) or 'probe failed'}")
    return parse_probe(result.stdout)


def shippable_copy(binary, scratch):
    """BINARY without its debug sections (a RelWithDebInfo zcbench is ~50 MB, ~10x its
    code), for a quicker copy; BINARY itself where binutils' strip is missing or fails."""
    out = os.path.join(scratch, "zcbench")
    if shutil.which("strip"):
        result = subprocess.run(["strip", "--strip-debug", "-o", out, binary], capture_output=True)
        if result.returncode == 0:
            return out
    return binary


def zcbench_plan(local, remote, ship_allowed=True):
    """How the remote end gets the same zcbench: ("use", None) | ("ship", why) | error.

    Same version line (version and git sha) = use it. Otherwise our binary runs there when
    architecture and distribution match (same libraries), else the user installs one."""
    want = local.get("version", "")
    found = remote.get("version")
    if found and found == want:
        return "use", None
    what = (f"remote zcbench {remote.get('zcbench')} is '{found}', not '{want}'" if found
            else "no zcbench on the remote PATH")
    same_arch = local.get("arch") == remote.get("arch")
    same_os = local.get("os") == remote.get("os")
    if same_arch and same_os and ship_allowed:
        return "ship", what
    if not ship_allowed:
        fix = "drop --no-ship to copy ours, or install it there"
    else:
        fix = (f"install zcbench '{want}' there (architecture {remote.get('arch') or '?'} vs "
               f"ours {local.get('arch') or '?'}, distribution {remote.get('os') or '?'} vs ours "
               f"{local.get('os') or '?'}: our binary cannot be shipped)")
    raise RemoteError(f"{what}; {fix}")


def clock_state(local, remote):
    """Can one-way latency be taken across the two ends? (available, reason, evidence)."""
    evidence = {side: {k: facts.get(k) for k in ("boot_id", "chrony", "ptp") if facts.get(k)}
                for side, facts in (("local", local), ("remote", remote))}
    if local.get("boot_id") and local.get("boot_id") == remote.get("boot_id"):
        return True, "both ends run on one kernel (same boot_id): one CLOCK_MONOTONIC", evidence
    synced = [side for side, facts in (("local", local), ("remote", remote))
              if "Leap status     : Normal" in facts.get("chrony", "")
              or "gmPresent                  true" in facts.get("ptp", "")]
    sync_text = (", ".join(synced) + " synchronised (chrony/PTP)") if synced else \
        "neither end shows chrony or PTP synchronisation"
    # harness/flood_header.h: tx_ns is the generator's CLOCK_MONOTONIC, which no clock
    # discipline relates across hosts; synchronised wall clocks alone do not help.
    return False, ("unavailable: the flood header's tx_ns is the generator host's "
                   f"CLOCK_MONOTONIC (harness/flood_header.h), meaningless on another host; "
                   f"{sync_text}"), evidence


# ---- running one side -------------------------------------------------------------------

class SideProcess:
    """One side's process (local, or an SSH session); stdout and stderr read by threads."""

    def __init__(self, role, argv, echo=None):
        self.role = role
        self.stdout_lines, self.stderr_lines = [], []
        self.ready = threading.Event()
        self.echo = echo
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=_die_with_parent)
        self.threads = [threading.Thread(target=self._read, args=(self.proc.stdout, False), daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, True), daemon=True)]
        for thread in self.threads:
            thread.start()

    def _read(self, stream, is_stderr):
        for line in stream:
            line = line.rstrip("\n")
            (self.stderr_lines if is_stderr else self.stdout_lines).append(line)
            if is_stderr:
                if line.startswith(READY_LINE):
                    self.ready.set()
                elif not line.startswith(SIDE_PREFIX) and self.echo:
                    self.echo(f"{self.role}: {line}")

    def wait(self, timeout):
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RemoteError(f"the {self.role} side did not finish within {timeout:.0f} s",
                              "internal") from None
        for thread in self.threads:
            thread.join(timeout=5)
        return code

    def stop(self):
        """Closing stdin ends zcbench through SIDE_SCRIPT's watcher, on either end."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def error_text(self):
        lines = [l for l in self.stderr_lines if not l.startswith(SIDE_PREFIX)]
        return _last_line("\n".join(lines)) or f"exit {self.proc.returncode}"

    def output(self):
        """The zcbench JSON document: all of stdout (`--json` prints it indented), else
        the last stdout line that parses."""
        try:
            return json.loads("\n".join(self.stdout_lines))
        except ValueError:
            pass
        for line in reversed(self.stdout_lines):
            try:
                return json.loads(line)
            except ValueError:
                continue
        raise RemoteError(f"the {self.role} side printed no JSON result ({self.error_text()})",
                          "internal")

    def counters(self):
        return parse_side_lines(self.stderr_lines)


def parse_side_lines(lines):
    """SIDE_SCRIPT's snapshots: {"before": {...}, "after": {...}} of raw host counters."""
    snaps = {"before": {}, "after": {}}
    for line in lines:
        if not line.startswith(SIDE_PREFIX):
            continue
        parts = line[len(SIDE_PREFIX):].split(" ", 2)
        if len(parts) < 3 or parts[0] not in snaps:
            continue
        when, what, text = parts
        snap = snaps[when]
        if what == "stat":  # cpu user nice system idle iowait irq softirq steal ... (ticks)
            snap["cpu_ticks"] = [int(v) for v in text.split()[1:]]
        elif what == "udp":
            snap["udp"] = text.split()[1:]
        elif what == "softnet":  # column 2 of softnet_stat, hex, one per CPU
            snap["softnet_dropped"] = sum(int(v, 16) for v in text.split())
        elif what == "link":
            try:
                link = json.loads(text)[0]
                snap["link"] = {"rx": link["stats64"]["rx"], "tx": link["stats64"]["tx"]}
            except (ValueError, KeyError, IndexError, TypeError):
                snap["link_error"] = text
        elif what == "cpu":
            user, system, hz = (int(v) for v in text.split())
            snap["children_cpu_ns"] = (user + system) * 1_000_000_000 // hz
    return snaps


UDP_FIELDS = ("InDatagrams", "NoPorts", "InErrors", "OutDatagrams", "RcvbufErrors",
              "SndbufErrors", "InCsumErrors", "IgnoredMulti", "MemErrors")
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def side_deltas(snaps):
    """Raw counter deltas of one side over its zcbench process (after - before)."""
    before, after = snaps["before"], snaps["after"]
    out = {}
    if "udp" in before and "udp" in after:
        out["udp_delta"] = {f"Udp.{name}": int(b) - int(a) for name, a, b
                            in zip(UDP_FIELDS, before["udp"], after["udp"])}
    if "softnet_dropped" in before and "softnet_dropped" in after:
        out["softnet_dropped_delta"] = after["softnet_dropped"] - before["softnet_dropped"]
    if "link" in before and "link" in after:
        out["link_delta"] = {f"{d}_{k}": after["link"][d][k] - v
                             for d in ("rx", "tx") for k, v in before["link"][d].items()
                             if isinstance(v, int) and k in after["link"][d]}
    elif "link_error" in before or "link_error" in after:
        out["link_error"] = before.get("link_error") or after.get("link_error")
    if "cpu_ticks" in before and "cpu_ticks" in after:
        # /proc/stat's first line is in USER_HZ ticks, summed over all CPUs
        out["host_cpu_ticks_delta"] = {name: b - a for name, a, b
                                       in zip(CPU_FIELDS, before["cpu_ticks"], after["cpu_ticks"])}
    if "children_cpu_ns" in before and "children_cpu_ns" in after:
        out["process_cpu_ns"] = after["children_cpu_ns"] - before["children_cpu_ns"]
    return out


# ---- the merged record ----------------------------------------------------------------

def reconciliation_tolerance(sent):
    # Mirrors harness/attribution.cc (the owner); goes when the sink's own record
    # carries its attribution (the wire work).
    return max(10, sent // 1000)


def side_summary(doc):
    """The few figures merge_sides needs from one side's zcbench output, in either shape:
    today's `send`/`sink` JSON ({"flood": {"sent"}, "seconds"} / {"received", "sequence",
    "latency_ns", "kernel_stats"}) or a trial record (a run document's records[0], or the
    record itself) as `send`/`sink` print them once they are trials (raw.sent_total,
    raw.window_ns, raw.received_total, raw.active_ns, ...). The one place to adapt."""
    if isinstance(doc.get("records"), list) and doc["records"]:
        doc = doc["records"][0]
    if doc.get("kind") == "trial":
        raw = doc.get("raw") or {}
        active_ns = raw.get("active_ns")
        return {"sent": raw.get("sent_total"), "sent_in_window": raw.get("sent_in_window"),
                "seconds": (raw.get("window_ns") or 0) / 1e9,
                "tx_errors": raw.get("tx_errors") or 0, "received": raw.get("received_total"),
                "sequence": raw.get("sequence") or {}, "latency_ns": raw.get("latency_ns") or {},
                "kernel_stats": (raw.get("driver_stats") or {}).get("rx") or {},
                "active_seconds": active_ns / 1e9 if active_ns else None,
                "sink_window_pps": (doc.get("derived") or {}).get("received_pps_window"),
                "cpu_ns_per_pkt_sink_thread": (doc.get("derived") or {}).get("cpu_ns_per_pkt_sink_thread")}
    flood = doc.get("flood") or {}
    return {"sent": flood.get("sent"), "sent_in_window": None, "seconds": doc.get("seconds") or 0.0,
            "tx_errors": flood.get("refusals") or 0, "received": doc.get("received"),
            "sequence": doc.get("sequence") or {}, "latency_ns": doc.get("latency_ns") or {},
            "kernel_stats": doc.get("kernel_stats") or {}, "active_seconds": None,
            "sink_window_pps": doc.get("received_pps"), "cpu_ns_per_pkt_sink_thread": None}


def merge_sides(spec, gen_out, gen_raw, sink_out, sink_raw, remote_side, facts):
    """One trial record from both sides' own counters.

    gen_out / sink_out: the JSON that `zcbench send` / `zcbench sink` print; gen_raw /
    sink_raw: side_deltas() of each host. Sent is the generator's own count; received the
    sink's; each drop is attributed once by the lab's precedence (docs/results-format.md):
    backlog (sink host softnet), link (sink rx_dropped + rx_missed, or generator
    tx_dropped, beyond the backlog drops), socket_rcvbuf, socket_other, ring."""
    gen, sink = side_summary(gen_out), side_summary(sink_out)
    sent = int(gen["sent"] or 0)
    sequence = dict(sink["sequence"])
    received = int(sink["received"] or 0)
    unique = int(sequence.get("unique", received)) if sequence.get("checked") else received
    gen_seconds = float(gen["seconds"] or 0.0)
    udp = sink_raw.get("udp_delta", {})
    sink_link = sink_raw.get("link_delta", {})
    gen_link = gen_raw.get("link_delta", {})
    ring = sum(int(v) for k, v in sink["kernel_stats"].items()
               if k in ("tp_drops", "rx_dropped", "rx_ring_full") and isinstance(v, int))
    drops = {"lost": max(sent - unique, 0)}
    drops["backlog"] = max(int(sink_raw.get("softnet_dropped_delta", 0)), 0)
    link_counted = max(sink_link.get("rx_dropped", 0) + sink_link.get("rx_missed", 0),
                       gen_link.get("tx_dropped", 0))
    drops["link"] = max(link_counted - drops["backlog"], 0)
    drops["socket_rcvbuf"] = max(udp.get("Udp.RcvbufErrors", 0), 0)
    drops["socket_other"] = max(udp.get("Udp.InErrors", 0) - udp.get("Udp.RcvbufErrors", 0), 0) \
        + max(udp.get("Udp.NoPorts", 0), 0)
    drops["ring"] = ring
    attributed = sum(drops[k] for k in ("backlog", "link", "socket_rcvbuf", "socket_other", "ring"))
    drops["unattributed"] = max(drops["lost"] - attributed, 0)
    drops["over_attributed"] = max(attributed - drops["lost"], 0)
    tolerance = reconciliation_tolerance(sent)
    reconciled = drops["unattributed"] <= tolerance and drops["over_attributed"] <= tolerance
    integrity = [f"{n} {k}" for k in ("duplicates", "corrupt") if (n := int(sequence.get(k, 0)))]

    sink_cpu = sink_raw.get("process_cpu_ns")
    gen_cpu = gen_raw.get("process_cpu_ns")
    latency = sink["latency_ns"]
    latency_ok, latency_reason, clock_evidence = facts["clock"]
    # Today's sink divides by its whole window (it starts before the generator and runs
    # SINK_SLACK_S longer): the rate is over the sink's active period (first to last
    # packet) where it reports one, else over the generator's sending time.
    active = sink["active_seconds"] or gen_seconds
    received_pps = received / active if active > 0 else 0.0
    derived = {
        "offered_pps": spec["rate"] if spec["rate"] != "max" else None,
        # Sent in the generator's measurement window over that window, as a lab trial's:
        # sent_total also holds the warm-up, which the window leaves out.
        "sent_pps": (gen["sent_in_window"] if gen["sent_in_window"] is not None else sent)
        / gen_seconds if gen_seconds > 0 else 0.0,
        "received_pps": received_pps,
        "received_pps_sink_window": sink["sink_window_pps"],
        "lost_packets": sent - unique,
        "loss_ratio": (sent - unique) / sent if sent else None,
        # process CPU (user + system of the zcbench process on each host); softirq work on
        # other CPUs is in raw.<side>.host_cpu_ticks_delta, not here
        "cpu_ns_per_pkt_sink": sink_cpu / received if sink_cpu is not None and received else None,
        "cpu_ns_per_pkt_total": (sink_cpu + gen_cpu) / received
        if sink_cpu is not None and gen_cpu is not None and received else None,
        # the sink thread's own task-clock per packet, as the sink side's record says
        # (never recomputed here from the generator side's counters)
        "cpu_ns_per_pkt_sink_thread": sink["cpu_ns_per_pkt_sink_thread"],
        "sink_cpu_percent": 100.0 * sink_cpu / (gen_seconds * 1e9)
        if sink_cpu is not None and gen_seconds > 0 else None,
        "latency_p50_ns": latency.get("p50") if latency_ok else None,
        "latency_p99_ns": latency.get("p99") if latency_ok else None,
        "latency_p999_ns": latency.get("p999") if latency_ok else None,
        "latency_reason": "" if latency_ok else latency_reason,
        "drops": drops,
        "reconciliation_ok": reconciled,
    }
    # Achieved vs offered, as the harness derives it (harness/derive.cc; the 98 % rule).
    offered = derived["offered_pps"]
    derived["achieved_ratio"] = derived["sent_pps"] / offered if offered else None
    derived["generator_short"] = bool(offered) and derived["achieved_ratio"] < GENERATOR_ACHIEVED_MIN
    status, reason = "pass", ""
    if integrity:
        status, reason = "fail", "integrity: " + ", ".join(integrity)
    elif not reconciled:
        status, reason = "fail", (f"reconciliation: {drops['unattributed']} lost packets in no "
                                  f"counter, {drops['over_attributed']} over-attributed "
                                  f"(tolerance {tolerance})")
    hosts = {"local": facts["local"], "remote": facts["remote"]}
    gen_host, sink_host = ("remote", "local") if remote_side == "gen" else ("local", "remote")
    params = {
        "tx": spec["tx"], "tx_opts": spec["tx_opts"], "rx": spec["rx"], "rx_opts": spec["rx_opts"],
        "generator": "flood",
        "payload_bytes": spec["size"],
        "frame_bytes": spec["frame_bytes"],
        "rate_mode": "max" if spec["rate"] == "max" else "fixed",
        "offered_pps": spec["rate"] if spec["rate"] != "max" else None,
        "duration_s": spec["duration"], "warmup_s": spec["warmup"],
        "repetition": 0,
        "lab_mode": "remote",
        "kernel": hosts[sink_host].get("kernel") or "unknown",
        "traffic": "host-addressed",
        "remote": {
            "target": facts["target"], "side": remote_side,
            "gen": {"host": gen_host, "iface": spec[f"{gen_host}_iface"],
                    "hostname": hosts[gen_host].get("hostname"), "kernel": hosts[gen_host].get("kernel")},
            "sink": {"host": sink_host, "iface": spec[f"{sink_host}_iface"], "dst": spec["dst"],
                     "hostname": hosts[sink_host].get("hostname"), "kernel": hosts[sink_host].get("kernel")},
            "zcbench": facts["zcbench"],
            "clock": {"one_way_latency": latency_ok, "reason": latency_reason,
                      "evidence": clock_evidence},
        },
    }
    raw = {
        "window_ns": int(gen_seconds * 1e9),
        "sent_total": sent,
        "tx_errors": int(gen["tx_errors"]),
        "received_total": received,
        "received_in_window": received,
        "sequence": {k: v for k, v in sequence.items() if isinstance(v, (int, bool))},
        "snmp_sink_delta": udp,
        "link_delta": {"gen": gen_link, "sink": sink_link},
        "driver_stats": {"rx": sink["kernel_stats"], "tx": {}},
        "latency_ns": latency if latency_ok else None,
        "gen": {"output": gen_out, **gen_raw},
        "sink": {"output": sink_out, **sink_raw},
    }
    return {"kind": "trial", "suite": "remote",
            "name": f"{spec['tx']}->{spec['rx']} {spec['size']}B {spec['rate']}pps "
                    f"remote {remote_side} #0",
            "command": spec.get("command", ""),
            "params": params, "status": status, "reason": reason, "raw": raw, "derived": derived}


# ---- one remote trial -----------------------------------------------------------------------

def side_commands(zcbench_gen, zcbench_sink, spec):
    common = ["--size", str(spec["size"]), "--json"]  # each side prints its trial record
    gen = [zcbench_gen, "send", "--iface", spec["gen_iface"], "--dst", spec["dst"], "--tx", spec["tx"],
           "--rate", str(spec["rate"]), "--duration", str(spec["duration"]),
           "--warmup", str(spec["warmup"])] + common
    for key, value in spec["tx_opts"].items():
        gen += ["--tx-opt", f"{key}={value}"]
    sink_seconds = spec["warmup"] + spec["duration"] + SINK_SLACK_S
    sink = [zcbench_sink, "sink", "--iface", spec["sink_iface"], "--rx", spec["rx"],
            "--duration", f"{sink_seconds:g}"] + common
    for key, value in spec["rx_opts"].items():
        sink += ["--rx-opt", f"{key}={value}"]
    return gen, sink


def iface_ipv4(run, iface):
    """The first IPv4 address of IFACE, through RUN(argv) -> CompletedProcess."""
    result = run(["ip", "-4", "-o", "addr", "show", "dev", iface])
    for line in (result.stdout or "").splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    raise RemoteError(f"interface {iface} has no IPv4 address ({_last_line(result.stderr) or 'none'}); "
                      "give it one in 198.18.0.0/15 or pass --dst", "usage")


def run_remote_trial(spec, local_zcbench, echo=print):
    """spec: target, side, ssh_config, local_iface, remote_iface, remote_zcbench, ship,
    tx, rx, tx_opts, rx_opts, size, rate, duration, warmup, dst (or None), command.
    Returns the merged trial record; raises RemoteError."""
    side = spec["side"]
    if side not in SIDES:
        raise RemoteError(f"--remote-side {side!r}: choose gen or sink", "usage")
    local = probe_local(local_zcbench)
    if not local.get("version"):
        raise RemoteError(f"{local_zcbench} --version failed; build zcbench first", "environment")
    ssh = Ssh(spec["target"], spec.get("ssh_config"))
    sides = []
    try:
        ssh.open()
        remote = probe_remote(ssh, spec["remote_zcbench"])
        action, why = zcbench_plan(local, remote, spec.get("ship", True))
        zc = {"local": local.get("version"), "remote_found": remote.get("version"),
              "remote_path": remote.get("zcbench"), "shipped": action == "ship"}
        remote_zcbench = remote.get("zcbench")
        if action == "ship":
            remote_zcbench = f"{ssh.remote_dir}/zcbench"
            echo(f"{why}; shipping {local_zcbench} ({local.get('version')}) to "
                 f"{spec['target']}:{remote_zcbench} (same {remote.get('arch')}, {remote.get('os')})")
            ssh.copy(shippable_copy(local_zcbench, ssh.dir), remote_zcbench)
            zc["remote_path"] = remote_zcbench
            check = ssh.run(f"{shlex.quote(remote_zcbench)} --version")
            if _last_line(check.stdout) != local.get("version"):
                raise RemoteError(f"shipped zcbench on {spec['target']} says "
                                  f"'{_last_line(check.stdout) or _last_line(check.stderr)}'")
        spec = dict(spec)
        if side == "sink":
            spec["sink_iface"], spec["gen_iface"] = spec["remote_iface"], spec["local_iface"]
        else:
            spec["sink_iface"], spec["gen_iface"] = spec["local_iface"], spec["remote_iface"]
        if not spec.get("dst"):
            if side == "sink":
                spec["dst"] = iface_ipv4(lambda argv: ssh.run(shlex.join(argv)), spec["sink_iface"])
            else:
                spec["dst"] = iface_ipv4(lambda argv: subprocess.run(argv, capture_output=True, text=True),
                                         spec["sink_iface"])
        gen_zc, sink_zc = ((remote_zcbench, local_zcbench) if side == "gen"
                           else (local_zcbench, remote_zcbench))
        gen_argv, sink_argv = side_commands(gen_zc, sink_zc, spec)

        def start(role, argv, iface, on_remote):
            if on_remote:
                command = ssh.command(f"sh -c {shlex.quote(SIDE_SCRIPT)} zcside "
                                      f"{shlex.quote(iface)} {shlex.join(argv)}")
            else:
                command = ["sh", "-c", SIDE_SCRIPT, "zcside", iface] + argv
            process = SideProcess(role, command, echo=echo)
            sides.append(process)
            return process

        sink = start("sink", sink_argv, spec["sink_iface"], side == "sink")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not sink.ready.wait(0.05):
            if sink.proc.poll() is not None or time.monotonic() > deadline:
                sink.wait(5) if sink.proc.poll() is not None else sink.stop()
                raise RemoteError(f"the sink on {'the remote' if side == 'sink' else 'this'} host "
                                  f"did not get ready: {sink.error_text()}")
        gen = start("gen", gen_argv, spec["gen_iface"], side == "gen")
        gen_code = gen.wait(spec["warmup"] + spec["duration"] + 60)
        if gen_code != 0:
            raise RemoteError(f"the generator failed: {gen.error_text()}",
                              "usage" if gen_code == 2 else "environment")
        sink_code = sink.wait(spec["warmup"] + spec["duration"] + SINK_SLACK_S + 60)
        if sink_code != 0:
            raise RemoteError(f"the sink failed: {sink.error_text()}",
                              "usage" if sink_code == 2 else "environment")
        facts = {"target": spec["target"], "local": local, "remote": remote, "zcbench": zc,
                 "clock": clock_state(local, remote)}
        return merge_sides(spec, gen.output(), side_deltas(gen.counters()), sink.output(),
                           side_deltas(sink.counters()), side, facts)
    finally:
        for process in sides:
            process.close()
        ssh.close()


def spec_from_args(args, frame_overhead, command=""):
    """The trial's spec from run.py's options; FRAME_OVERHEAD is run.py's (one owner)."""
    def options(pairs, flag):
        out = {}
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise RemoteError(f"{flag} {pair!r}: write KEY=VALUE", "usage")
            out[key] = value
        return out
    if not args.iface or not args.remote_iface:
        raise RemoteError("--remote needs --iface (this host's interface) and --remote-iface "
                          "(the remote host's)", "usage")
    return {"target": args.remote, "side": args.remote_side, "ssh_config": args.ssh_config,
            "local_iface": args.iface, "remote_iface": args.remote_iface,
            "remote_zcbench": args.remote_zcbench, "ship": not args.no_ship,
            "frame_bytes": args.size + frame_overhead,
            "tx": args.tx, "rx": args.rx, "tx_opts": options(args.tx_opt, "--tx-opt"),
            "rx_opts": options(args.rx_opt, "--rx-opt"), "size": args.size, "rate": args.rate,
            "duration": args.duration, "warmup": args.warmup, "dst": args.dst,
            "command": command}


def rate_or_max(text):
    import argparse
    if text == "max":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive rate in pps or 'max'")
    return value


def add_options(parser):
    """The --remote options (./run.py --remote ... is routed to the `remote` command)."""
    group = parser.add_argument_group("a second host over SSH (README: \"A second host\")")
    group.add_argument("--remote", metavar="USER@HOST", required=True,
                       help="the other host, as ssh names it (ssh_config aliases work)")
    group.add_argument("--remote-side", choices=SIDES, default="sink",
                       help="which side runs there (default sink)")
    group.add_argument("--iface", metavar="IF", help="this host's interface")
    group.add_argument("--remote-iface", metavar="IF", help="the remote host's interface")
    group.add_argument("--dst", metavar="IP",
                       help="destination (default: the sink interface's IPv4 address)")
    group.add_argument("--ssh-config", metavar="FILE", help="ssh -F FILE (default ~/.ssh/config)")
    group.add_argument("--remote-zcbench", default="zcbench", metavar="PATH",
                       help="zcbench on the remote host (default: the one on its PATH)")
    group.add_argument("--no-ship", action="store_true",
                       help="never copy our zcbench there: a different version is an error")
    trial = parser.add_argument_group("the trial")
    trial.add_argument("--tx", default="sendmmsg", metavar="NAME")
    trial.add_argument("--rx", default="recvmmsg", metavar="NAME")
    trial.add_argument("--tx-opt", action="append", metavar="K=V")
    trial.add_argument("--rx-opt", action="append", metavar="K=V")
    trial.add_argument("--size", type=int, default=272, metavar="BYTES", help="UDP payload")
    trial.add_argument("--rate", type=rate_or_max, default=100000, metavar="PPS|max")
    trial.add_argument("--duration", type=float, default=3.0, metavar="S")
    trial.add_argument("--warmup", type=float, default=0.5, metavar="S")
