"""Two "hosts" for the --remote tests: two network namespaces joined by two veth
pairs, each running Debian's sshd on its own address.

    with SshLab() as lab:            # raises Unavailable(reason) when it cannot stand up
        lab.run_on("a", ["ssh", "-F", lab.ssh_config, f"root@{lab.host('b').mgmt_ip}", "true"])

Host A and host B each get a network namespace held by a `sleep` process (an anonymous
namespace: no name under /run/netns, it dies with its holder) and a mount namespace
with a private tmpfs on /run, so sshd's privilege-separation directory (/run/sshd,
compiled into Debian's sshd) exists there without creating anything on the host.
Two veth pairs join them: `mgmt` carries the SSH session, `data` the measured traffic
(a sink never shares the interface of the session that drives it, as on real hosts).
Every process started here gets PR_SET_PDEATHSIG(SIGKILL), so a killed test leaves no
sshd and no namespace; stop() also ends them by PID and removes the temp dir.

Keys are made for the lab with ssh-keygen in its temp dir: one host key per sshd, one
throwaway client key (AuthorizedKeysFile points at its .pub; StrictModes is off because
the temp dir lies under the world-writable /tmp, which StrictModes rejects). The client
side is one ssh_config file (-F) with the key, a known_hosts file holding both host
keys and BatchMode, so nothing from ~/.ssh is read.
"""

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: it must be started by absolute path
TOOLS = ("ssh", "ssh-keygen", "scp", "unshare", "nsenter", "ip", "mount")
# Addresses from the benchmarking range 198.18.0.0/15 (RFC 2544), away from the
# lab's 198.18.0.x; the namespaces are private, so clashes with other tests are
# impossible anyway.
MGMT_NET = "198.19.200"
DATA_NET = "198.19.201"
START_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: a preexec_fn must not import


class Unavailable(Exception):
    """The lab cannot stand up here; the message is the reason (sshd's own error)."""


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the test process goes (even by SIGKILL)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl: nobody will reap us
        os._exit(1)


@dataclass
class Host:
    name: str
    index: int
    dir: Path
    holder: subprocess.Popen = None
    sshd: subprocess.Popen = None
    mgmt_if: str = ""
    data_if: str = ""
    bin_dir: Path = None  # first on PATH of every SSH session into this host
    tmp_dir: Path = None  # TMPDIR of every SSH session into this host
    log: Path = None

    @property
    def mgmt_ip(self):
        return f"{MGMT_NET}.{self.index}"

    @property
    def data_ip(self):
        return f"{DATA_NET}.{self.index}"

    @property
    def pid(self):
        return self.holder.pid

    def nsenter(self):
        """The prefix that runs a command inside this host (its net and mount namespaces)."""
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", f"--mount=/proc/{self.pid}/ns/mnt"]


@dataclass
class SshLab:
    port: int = 22
    root: Path = None
    hosts: dict = field(default_factory=dict)
    ssh_config: str = ""
    client_key: str = ""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def host(self, name):
        return self.hosts[name]

    def target(self, name, user="root"):
        return f"{user}@{self.hosts[name].mgmt_ip}"

    # ---- standing up -------------------------------------------------------------

    def start(self):
        if os.geteuid() != 0:
            raise Unavailable("network namespaces need root (CAP_SYS_ADMIN)")
        if not os.access(SSHD, os.X_OK):
            raise Unavailable(f"{SSHD} not installed: apt-get install openssh-server")
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        if missing:
            raise Unavailable(f"missing {', '.join(missing)}: apt-get install openssh-client "
                              "iproute2 util-linux")
        self.root = Path(tempfile.mkdtemp(prefix="zc-sshlab-"))
        atexit.register(self.stop)
        self.client_key = str(self.root / "client_key")
        self._keygen(self.client_key)
        for index, name in ((1, "a"), (2, "b")):
            self.hosts[name] = self._namespace(name, index)
        self._link("mgmt", MGMT_NET)
        self._link("data", DATA_NET)
        known = []
        for host in self.hosts.values():
            known.append(self._start_sshd(host))
        (self.root / "known_hosts").write_text("".join(known))
        self.ssh_config = str(self.root / "ssh_config")
        Path(self.ssh_config).write_text(
            "Host *\n"
            f"  Port {self.port}\n"
            f"  IdentityFile {self.client_key}\n"
            "  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            f"  UserKnownHostsFile {self.root / 'known_hosts'}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n"
            "  ConnectTimeout 5\n"
            "  LogLevel ERROR\n")

    def _keygen(self, path):
        _check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zc-sshlab", "-f", path])

    def _namespace(self, name, index):
        host = Host(name=name, index=index, dir=self.root / name)
        host.dir.mkdir()
        host.bin_dir = host.dir / "bin"
        host.bin_dir.mkdir()
        host.tmp_dir = host.dir / "tmp"
        host.tmp_dir.mkdir()
        # unshare without --fork execs sleep: the namespaces' holder is this very PID, and
        # PR_SET_PDEATHSIG survives the exec (neither binary is set-user-ID).
        host.holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sleep", "3600"],
            preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        own_net = os.readlink("/proc/self/ns/net")
        while True:  # until the exec happened inside the new namespaces
            try:
                if os.readlink(f"/proc/{host.pid}/ns/net") != own_net:
                    break
            except OSError:
                pass
            if host.holder.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"unshare --net --mount failed (exit {host.holder.poll()})")
            time.sleep(0.01)
        self._run(host, ["mount", "-t", "tmpfs", "-o", "mode=0755", "zc-sshlab-run", "/run"])
        self._run(host, ["mkdir", "-m", "0755", "/run/sshd"])
        self._run(host, ["ip", "link", "set", "lo", "up"])
        return host

    def _link(self, role, net):
        a, b = self.hosts["a"], self.hosts["b"]
        # Both ends are created directly inside their namespaces (IFLA_NET_NS_PID): never
        # an interface in the host's namespace, not even for a moment.
        _check(["ip", "link", "add", f"{role}0", "netns", str(a.pid), "type", "veth",
                "peer", "name", f"{role}0", "netns", str(b.pid)])
        for host in (a, b):
            setattr(host, f"{role}_if", f"{role}0")
            # No IPv6 on lab links (no ND/MLD noise in packet sinks); per namespace only.
            self._run(host, ["sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{role}0/disable_ipv6"],
                      check=False)
            self._run(host, ["ip", "addr", "add", f"{net}.{host.index}/24", "dev", f"{role}0"])
            self._run(host, ["ip", "link", "set", f"{role}0", "up"])

    def _start_sshd(self, host):
        key = host.dir / "host_key"
        self._keygen(str(key))
        host.log = host.dir / "sshd.log"
        pid_file = host.dir / "sshd.pid"
        config = host.dir / "sshd_config"
        path = f"{host.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        config.write_text(
            f"ListenAddress {host.mgmt_ip}\n"
            f"Port {self.port}\n"
            f"HostKey {key}\n"
            f"PidFile {pid_file}\n"
            f"AuthorizedKeysFile {self.client_key}.pub\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            # scp speaks SFTP since OpenSSH 9.0: the subsystem must exist
            "Subsystem sftp internal-sftp\n"
            # applied after sshd's own defaults: the tests put fake programs first on PATH
            f"SetEnv PATH={path} TMPDIR={host.tmp_dir}\n"
            "LogLevel ERROR\n")
        with open(host.log, "wb") as log:
            host.sshd = subprocess.Popen(host.nsenter() + [SSHD, "-D", "-e", "-f", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        # sshd writes its PidFile after its listening socket is bound.
        while not pid_file.exists():
            if host.sshd.poll() is not None:
                raise Unavailable(f"sshd on host {host.name} exited {host.sshd.returncode}: "
                                  + _tail(host.log))
            if time.monotonic() > deadline:
                raise Unavailable(f"sshd on host {host.name} not listening after "
                                  f"{START_TIMEOUT_S:.0f} s: " + _tail(host.log))
            time.sleep(0.02)
        public = (key.with_suffix(".pub") if key.suffix else Path(f"{key}.pub")).read_text()
        return f"{host.mgmt_ip} {' '.join(public.split()[:2])}\n"

    # ---- using it ----------------------------------------------------------------

    def _run(self, host, argv, check=True):
        result = subprocess.run(host.nsenter() + argv, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise Unavailable(f"{' '.join(argv)} in host {host.name}: "
                              f"{result.stderr.strip() or 'exit %d' % result.returncode}")
        return result

    def run_on(self, name, argv, **kwargs):
        """subprocess.run(argv) inside host NAME (its network and mount namespaces)."""
        kwargs.setdefault("preexec_fn", _die_with_parent)
        return subprocess.run(self.hosts[name].nsenter() + list(argv), **kwargs)

    def pids_mentioning(self, text):
        """PIDs of processes whose command line contains TEXT (for leftover checks)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
        return found

    def _pids_in_namespace(self, host):
        if host.holder is None or host.holder.poll() is not None:
            return []
        try:
            ns = os.readlink(f"/proc/{host.pid}/ns/net")
        except OSError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != host.pid:
                try:
                    if os.readlink(entry / "ns" / "net") == ns:
                        found.append(int(entry.name))
                except OSError:
                    pass
        return found

    # ---- tearing down ------------------------------------------------------------

    def stop(self):
        for host in self.hosts.values():
            if host.sshd is not None and host.sshd.poll() is None:
                host.sshd.terminate()
                try:
                    host.sshd.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    host.sshd.kill()
                    host.sshd.wait()
            # sshd's per-connection processes outlive its listener and would keep the
            # namespace alive: end every process inside this host's namespace, by PID.
            for pid in self._pids_in_namespace(host):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for proc in (host.sshd, host.holder):
                if proc is not None and proc.poll() is None:
                    proc.terminate() if proc is host.sshd else proc.kill()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        if self.root is not None and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


def _check(argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise Unavailable(f"{' '.join(argv)}: {result.stderr.strip() or 'exit %d' % result.returncode}")
    return result


def _tail(path, lines=5):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(no output)"
