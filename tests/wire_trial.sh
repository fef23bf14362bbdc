#!/usr/bin/env bash
# Wire trials on interfaces zcbench did not create (issue "Leave the lab"):
# the TEST builds a veth pair between two network namespaces of its own,
# standing for a NIC pair, and runs `zcbench send` / `zcbench sink` on it as a
# user would on real ports. Real parts only: tcpdump counts what our send put
# on the wire, trafgen stands for an FPGA, a small Python sender writes a
# foreign payload layout (8-byte big-endian counter at payload offset 4) with
# planted gaps, a duplicate and a reorder.
#
#   wire_trial.sh ZCBENCH CHECK    CHECK: send_tcpdump | trafgen_sink | seq_foreign |
#                                         settings_restored | safety | bad_input | xdp_link |
#                                         size_mix | af_xdp_send | run_py_xdp |
#                                         hw_timestamps_refused
#
# Namespaces: side A is this script's own (unshare --net, re-exec below); side
# B is held by a `sleep` with PR_SET_PDEATHSIG (setpriv --pdeathsig), so both
# die with the test, SIGKILL included. Exit 77: cannot run here (no root, no
# netns, a tool missing).
set -u
ZC=$(realpath "${1:?usage: wire_trial.sh ZCBENCH CHECK}")
CHECK=${2:?usage: wire_trial.sh ZCBENCH CHECK}
skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if [[ "${ZC_WIRE_INNER:-}" != 1 ]]; then
  [[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veth)"
  for t in unshare nsenter setpriv ip python3; do command -v $t >/dev/null || skip "$t not installed"; done
  ZC_WIRE_INNER=1 exec unshare --net --mount --propagation private --fork --kill-child "$0" "$@"
  skip "unshare --net failed (no CAP_SYS_ADMIN?)"
fi

# Side A: a private sysfs, so /sys/class/net shows this namespace's devices.
mount -t sysfs none /sys || skip "cannot mount a private sysfs"
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
ip link set lo up
TMP=$(mktemp -d /tmp/zcwire.XXXXXX)
cleanup() { [[ -n "${BPID:-}" ]] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# Side B: its own network and mount namespace with its own sysfs.
setpriv --pdeathsig KILL unshare --net --mount --propagation private \
  sh -c 'mount -t sysfs none /sys && sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up; exec sleep 600' &
BPID=$!
for _ in $(seq 50); do [[ "$(readlink /proc/$BPID/ns/net)" != "$(readlink /proc/self/ns/net)" ]] && break; sleep 0.1; done
sleep 0.3
# In side B. Started in the background as `$INB cmd &`, not through a shell
# function, so $! is the command itself (nsenter execs it) and signals reach it.
INB="nsenter --net=/proc/$BPID/ns/net --mount=/proc/$BPID/ns/mnt"
inb() { $INB "$@"; }

ip link add zcwa type veth peer name zcwb || skip "cannot create a veth pair"
ip link set zcwb netns /proc/$BPID/ns/net || ip link set zcwb netns "$BPID" || skip "cannot move the veth peer"
inb sysctl -qw net.ipv6.conf.zcwb.disable_ipv6=1 2>/dev/null
sysctl -qw net.ipv6.conf.zcwa.disable_ipv6=1 2>/dev/null
ip addr add 198.18.1.1/24 dev zcwa && ip link set zcwa up
inb ip addr add 198.18.1.2/24 dev zcwb && inb ip link set zcwb up
MAC_A=$(cat /sys/class/net/zcwa/address)
MAC_B=$(inb cat /sys/class/net/zcwb/address)
# Static neighbours both ways: an FPGA does no ARP, and an unresolved
# neighbour's queue would drop packets no interface counter sees.
ip neigh replace 198.18.1.2 lladdr "$MAC_B" dev zcwa nud permanent
inb ip neigh replace 198.18.1.1 lladdr "$MAC_A" dev zcwb nud permanent
for _ in $(seq 50); do [[ "$(cat /sys/class/net/zcwa/operstate)" == up ]] && break; sleep 0.1; done

REPO=$(cd "$(dirname "$0")/.." && pwd)
# A real record against schema/run.schema.json (the report package's validator).
valid() { (cd "$REPO" && /usr/bin/python3 -m reports.validate "$1") >"$TMP/validate.out" 2>&1 || fail "$1 does not match the schema: $(tail -5 "$TMP/validate.out")"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d["records"][0]; print(eval(sys.argv[2]))' "$@"; }
# Every setting a wire trial may change on zcwb, read by the system's own
# tools (ethtool -T: its timestamping capabilities, beside them).
state() {
  inb sh -c 'ip -d link show zcwb; ethtool -k zcwb; ethtool -g zcwb 2>&1; ethtool -T zcwb 2>&1; cat /sys/class/net/zcwb/threaded
    for f in /sys/class/net/zcwb/queues/*/rps_cpus /sys/class/net/zcwb/queues/*/xps_cpus; do echo "$f $(cat $f 2>&1)"; done'
}
same() { [[ "$(state)" == "$before" ]] || fail "$1: settings differ: $(diff <(echo "$before") <(state) | tr '\n' ' ')"; }

case "$CHECK" in
send_tcpdump)
  command -v tcpdump >/dev/null || skip "tcpdump not installed (apt-get install tcpdump)"
  # Nothing listens on B's port 9000: every datagram provokes an ICMP port
  # unreachable, which must be counted, never fatal.
  # -B: a 64 MiB capture buffer, so a loaded machine's tcpdump drops nothing.
  # --immediate-mode: libpcap's TPACKET_V3 ring otherwise hands a block over
  # only when it fills or its 1 s timeout retires it, and the SIGINT below
  # would end tcpdump with the last block unread ("3000 received by filter",
  # 2620 captured: seen once on a fresh clone).
  $INB tcpdump -i zcwb -n -p -B 65536 --immediate-mode -w "$TMP/b.pcap" udp dst port 9000 2>"$TMP/tcpdump.err" &
  TD=$!
  for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.err" && break; sleep 0.1; done
  "$ZC" send --iface zcwa --dst 198.18.1.2 --count 3000 --rate 10000 --duration 5 --warmup 0 --json >"$TMP/send.json" \
    || fail "zcbench send exited $? ($(tail -1 "$TMP/send.json" 2>/dev/null))"
  sleep 0.5
  kill -INT $TD; wait $TD
  captured=$(inb tcpdump -n -r "$TMP/b.pcap" 2>/dev/null | wc -l)
  sent=$(jget "$TMP/send.json" 'r["raw"]["sent_total"]')
  txp=$(jget "$TMP/send.json" 'r["derived"]["iface_tx_packets"]')
  icmp=$(jget "$TMP/send.json" 'r["derived"]["icmp_errors"]')
  drv=$(jget "$TMP/send.json" 'r["params"]["wire"]["driver"]["driver"]')
  echo "sent=$sent tcpdump=$captured iface_tx_packets=$txp icmp_errors=$icmp driver=$drv"
  [[ "$sent" -eq 3000 ]] || fail "send says it sent $sent, not the 3000 asked"
  [[ "$captured" -eq "$sent" ]] || fail "tcpdump on the receiving port saw $captured packets, send says $sent ($(tr '\n' ' ' <"$TMP/tcpdump.err"))"
  [[ "$txp" -ge "$sent" ]] || fail "interface tx_packets $txp is below what send counted ($sent)"
  [[ "$icmp" -gt 0 ]] || fail "no ICMP port unreachable counted although nothing listens on port 9000"
  [[ "$drv" == veth ]] || fail "params.wire.driver.driver is '$drv', expected veth (ETHTOOL_GDRVINFO)"
  # The send record derives like a run record: same required fields (schema).
  valid "$TMP/send.json"
  ;;
trafgen_sink)
  command -v trafgen >/dev/null || skip "trafgen not installed (apt-get install netsniff-ng)"
  N=5000
  # A constant payload: trafgen computes the UDP checksum once, so a dinc()
  # counter would fail the socket's checksum check (Udp.InCsumErrors).
  cat >"$TMP/t.cfg" <<EOF
{ eth(da=$MAC_B, sa=$MAC_A, type=0x0800), ipv4(sa=198.18.1.1, da=198.18.1.2, ttl=64), udp(sp=10000, dp=9000), fill(0x00, 272) }
EOF
  $INB "$ZC" sink --iface zcwb --rx recvmmsg --source external --count $N --silence 3 --duration 20 --json >"$TMP/sink.json" &
  SK=$!
  sleep 1.5
  trafgen --dev zcwa --conf "$TMP/t.cfg" --num $N --rate 20000pps --cpus 1 --no-sock-mem --notouch-irq >"$TMP/trafgen.out" 2>&1 \
    || fail "trafgen failed: $(tail -3 "$TMP/trafgen.out")"
  wait $SK; rc=$?
  [[ $rc -eq 0 ]] || fail "zcbench sink exited $rc: $(tail -c 600 "$TMP/sink.json")"
  got=$(jget "$TMP/sink.json" 'r["raw"]["received_total"]')
  why=$(jget "$TMP/sink.json" 'r["derived"]["end_reason"]')
  act=$(jget "$TMP/sink.json" 'r["derived"]["received_pps_active"]')
  win=$(jget "$TMP/sink.json" 'r["derived"]["received_pps_window"]')
  echo "trafgen sent $N; sink received=$got end=$why active_pps=$act window_pps=$win"
  echo "drops: $(jget "$TMP/sink.json" 'r["derived"]["drops"]') link: $(jget "$TMP/sink.json" 'r["raw"]["link_delta"]') snmp: $(jget "$TMP/sink.json" 'r["raw"]["snmp_sink_delta"]') softnet: $(jget "$TMP/sink.json" '[c for c in r["raw"]["softnet_delta"] if c["dropped"]]')"
  [[ "$got" -eq $N ]] || { cat "$TMP/trafgen.out" >&2; fail "sink counted $got packets, trafgen sent exactly $N"; }
  [[ "$why" == count ]] || fail "sink ended by '$why', expected by --count"
  valid "$TMP/sink.json"
  # The sink opened 1.5 s before trafgen started: the rate over the traffic's
  # active period must exceed the rate over the sink's whole window.
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$act') > float('$win') else 1)" \
    || fail "active-period rate $act pps is not above the window rate $win pps"
  ;;
seq_foreign)
  # The foreign layout: 4 bytes of junk, then an 8-byte big-endian counter at
  # payload offset 4, starting at 1000; planted: 2 gaps, 1 duplicate, 1 reorder.
  $INB "$ZC" sink --iface zcwb --rx recvmmsg --source external --seq offset=4,width=8,endian=big \
    --size 64 --silence 3 --duration 20 --json >"$TMP/sink.json" &
  SK=$!
  sleep 1
  python3 - <<'EOF' || fail "the foreign sender failed"
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.1.1", 10000))
order = [c for c in range(1000, 2000) if c not in (1100, 1101)]
i = order.index(1200); order.insert(i + 1, 1200)           # duplicate
i = order.index(1300); order[i], order[i + 1] = order[i + 1], order[i]  # 1301 before 1300
for n, c in enumerate(order):
    s.sendto(b"\xde\xad\xbe\xef" + struct.pack(">Q", c) + bytes(52), ("198.18.1.2", 9000))
    if n % 50 == 0:
        time.sleep(0.002)
EOF
  wait $SK; rc=$?
  [[ $rc -eq 0 ]] || fail "zcbench sink exited $rc: $(tail -c 600 "$TMP/sink.json")"
  q() { jget "$TMP/sink.json" "r['raw']['sequence']['$1']"; }
  echo "received=$(jget "$TMP/sink.json" 'r["raw"]["received_total"]') unique=$(q unique) gaps=$(q gaps) duplicates=$(q duplicates) reordered=$(q reordered)"
  [[ $(q unique) -eq 998 ]] || fail "unique $(q unique), expected 998"
  [[ $(q gaps) -eq 2 ]] || fail "gaps $(q gaps), expected 2 (counters 1100, 1101 never sent)"
  [[ $(q duplicates) -eq 1 ]] || fail "duplicates $(q duplicates), expected 1"
  [[ $(q reordered) -eq 1 ]] || fail "reordered $(q reordered), expected 1"
  [[ $(jget "$TMP/sink.json" 'r["derived"]["end_reason"]') == silence ]] || fail "the sink did not end by silence"
  ;;
settings_restored)
  # Every setting a wire trial may change, read by the system's own tools:
  # byte-identical before and after a trial, a failing trial, a SIGINT'd one
  # and a SIGKILL'd one (README "Named interfaces" lists nothing a SIGKILL
  # leaves changed: the restorer process puts it all back).
  command -v ethtool >/dev/null || skip "ethtool not installed (apt-get install ethtool)"
  inb ethtool -K zcwb gro off 2>/dev/null
  before=$(state)
  CHANGE=(--gro --promisc --threaded-napi --rps-cpus 1)
  # 1. A trial that ends normally; the record lists what it changed.
  inb "$ZC" sink --iface zcwb --rx recvmmsg "${CHANGE[@]}" --duration 1 --json >"$TMP/sink.json"
  same "after a trial"
  got=$(jget "$TMP/sink.json" '" ".join(sorted(c["setting"] for c in r["params"]["wire"]["changed"]))')
  [[ "$got" == "gro promisc rps_cpus/rx-0 rps_cpus/rx-1 threaded_napi" || "$got" == "gro promisc rps_cpus/rx-0 threaded_napi" ]] \
    || fail "params.wire.changed lists '$got'"
  [[ $(jget "$TMP/sink.json" 'r["params"]["wire"]["not_restored_on_sigkill"]') == "[]" ]] || fail "not_restored_on_sigkill is not []"
  # 2. A failing trial (a silent source: status fail, exit 1).
  inb "$ZC" sink --iface zcwb --rx recvmmsg "${CHANGE[@]}" --source external --silence 1 --duration 10 >/dev/null 2>&1
  rc=$?; [[ $rc -eq 1 ]] || fail "the silent-source trial exited $rc, expected 1"
  same "after a failing trial"
  # 3. A setting the driver lacks (veth has no ring sizes): refused before anything changed.
  if ! inb ethtool -g zcwb >/dev/null 2>&1; then
    err=$(inb "$ZC" sink --iface zcwb --rx recvmmsg --promisc --rx-ring 256 --duration 1 2>&1 >/dev/null); rc=$?
    [[ $rc -eq 3 && "$err" == *"ETHTOOL_GRINGPARAM"* ]] || fail "--rx-ring on veth: rc $rc, '$err'"
    same "after a refused --rx-ring"
  fi
  # 4. SIGINT and 5. SIGKILL in the middle of a trial.
  for sig in INT KILL; do
    $INB "$ZC" sink --iface zcwb --rx recvmmsg "${CHANGE[@]}" --duration 30 >/dev/null 2>&1 &
    SK=$!
    for _ in $(seq 100); do [[ "$(inb cat /sys/class/net/zcwb/threaded)" == 1 ]] && inb ip -o link show zcwb | grep -q PROMISC && break; sleep 0.1; done
    [[ "$(state)" != "$before" ]] || fail "nothing changed during the trial; the SIG$sig check would prove nothing"
    sleep 0.3
    kill -$sig $SK; wait $SK; rc=$?
    [[ $sig == KILL || $rc -eq 130 ]] || fail "SIGINT'd sink exited $rc, expected 130"
    for _ in $(seq 50); do [[ "$(state)" == "$before" ]] && break; sleep 0.1; done
    same "after SIG$sig"
  done
  # 6. send's XPS masks on its own interface, the same way.
  xps() { for f in /sys/class/net/zcwa/queues/tx-*/xps_cpus; do echo "$f $(cat "$f" 2>&1)"; done; }
  xps_before=$(xps)
  "$ZC" send --iface zcwa --dst 198.18.1.2 --count 200 --rate 10000 --duration 2 --warmup 0 --xps-cpus 1 --json >"$TMP/send.json" \
    || fail "send --xps-cpus exited $?"
  [[ "$(xps)" == "$xps_before" ]] || fail "send left XPS masks '$(xps)', before '$xps_before'"
  jget "$TMP/send.json" 'r["params"]["wire"]["changed"]' | grep -q "xps_cpus/tx-0" || fail "the send record does not list its XPS change"
  echo "settings identical before and after: a trial, a failing trial, SIGINT, SIGKILL; send's XPS too"
  ;;
safety)
  ip route add default via 198.18.1.2 dev zcwa
  out=$("$ZC" send --iface zcwa --dst 198.18.1.2 --count 10 2>&1); rc=$?
  [[ $rc -eq 2 && "$out" == *"default route"* ]] || fail "default-route interface not refused (rc $rc): $out"
  ip route del default
  out=$(SSH_CONNECTION="198.18.1.9 50000 198.18.1.1 22" "$ZC" sink --iface zcwa --duration 1 2>&1); rc=$?
  [[ $rc -eq 2 && "$out" == *"SSH session"* ]] || fail "SSH-session interface not refused (rc $rc): $out"
  out=$("$ZC" send --iface zcwa --dst 10.1.2.3 --count 10 2>&1); rc=$?
  [[ $rc -eq 2 && "$out" == *"198.18.0.0/15"* ]] || fail "destination outside 198.18.0.0/15 not refused (rc $rc): $out"
  out=$("$ZC" send --iface eth_not_here --dst 198.18.1.2 2>&1); rc=$?
  [[ $rc -eq 2 && "$out" == *"does not exist"* ]] || fail "missing interface not refused (rc $rc): $out"
  echo "refused: default route, SSH session, foreign destination, missing interface"
  ;;
bad_input)
  ip link add zcwc type veth peer name zcwd
  one_line() {  # expect exit $1 and exactly one line on stderr containing $2
    local want=$1 text=$2; shift 2
    local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
    [[ $rc -eq $want ]] || fail "'$*' exited $rc, expected $want: $err"
    [[ "$err" == *"$text"* ]] || fail "'$*' said '$err', expected '$text'"
    [[ $(printf '%s\n' "$err" | wc -l) -eq 1 ]] || fail "'$*' printed more than one line: $err"
  }
  one_line 2 "is down" "$ZC" sink --iface zcwc --duration 1
  ip link set zcwc up
  one_line 2 "no carrier" "$ZC" sink --iface zcwc --duration 1
  one_line 2 "outside the 272-byte UDP payload" "$ZC" sink --iface zcwa --source external --seq offset=300,width=8
  one_line 2 "overlaps the flood header" "$ZC" sink --iface zcwa --seq offset=4,width=8
  one_line 2 "Ethernet/IPv4/UDP headers" "$ZC" sink --iface zcwa --source external --seq offset=20,width=4,base=frame
  one_line 2 "width=3" "$ZC" sink --iface zcwa --source external --seq offset=4,width=3
  one_line 2 "zcwa has 1 TX queues" "$ZC" send --iface zcwa --dst 198.18.1.2 --tx af_xdp --tx-queue 5
  one_line 2 "leaves the queue to the kernel" "$ZC" send --iface zcwa --dst 198.18.1.2 --tx sendmmsg --tx-queue 0
  # A source that sends nothing: the sink ends after its silence period and says so.
  err=$(inb "$ZC" sink --iface zcwb --source external --silence 1 --duration 10 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 1 && "$err" == *"within the silence period of 1 s"* ]] || fail "silent source: rc $rc, '$err'"
  echo "bad input refused, one line each; a silent source ends the sink after its silence period"
  ;;
run_py_iface)
  # ./run.py on a named interface with an external source: every RX transport
  # of the smoke suite in turn on zcwb while trafgen floods it from side A.
  command -v trafgen >/dev/null || skip "trafgen not installed (apt-get install netsniff-ng)"
  echo "{ eth(da=$MAC_B, sa=$MAC_A, type=0x0800), ipv4(sa=198.18.1.1, da=198.18.1.2, ttl=64), udp(sp=10000, dp=9000), fill(0x00, 272) }" >"$TMP/t.cfg"
  trafgen --dev zcwa --conf "$TMP/t.cfg" --num 600000 --rate 20000pps --cpus 1 --no-sock-mem --notouch-irq >/dev/null 2>&1 &
  TG=$!
  $INB python3 "$REPO/run.py" --no-install --no-build --build-dir "$(dirname "$ZC")" --suite smoke --repetitions 1 \
    --iface zcwb --source external --wire-duration 2 --wire-silence 1 --results-dir "$TMP/results" >"$TMP/runpy.out" 2>"$TMP/runpy.err"
  rc=$?
  kill $TG 2>/dev/null; wait $TG 2>/dev/null
  [[ $rc -eq 0 ]] || fail "run.py exited $rc: $(tail -5 "$TMP/runpy.err")"
  report=$(tail -1 "$TMP/runpy.out")
  [[ -s "$report" ]] || fail "run.py printed no report path ($report)"
  grep -q 'Wire (named interfaces)' "$report" || fail "the report has no wire section"
  n=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for r in d["records"] if r["params"].get("lab_mode")=="wire" and r["status"]=="pass"))' "$(dirname "$report")/run.json")
  [[ $n -ge 2 ]] || fail "run.json holds $n passing wire trials, expected one per smoke sink (recvmmsg, recv)"
  echo "run.py --iface: $n wire trials, report $report"
  ;;
xdp_link)
  # The XDP sinks on a named interface attach through a BPF link: the flood
  # arrives exactly, a second sink is refused (the program is not its own),
  # and after a SIGKILL nothing of ours is left: no XDP on the device, and
  # neither the link nor the program in the kernel (bpftool: BPF objects are
  # not per namespace, so by the ids seen during the trial).
  command -v trafgen >/dev/null || skip "trafgen not installed (apt-get install netsniff-ng)"
  command -v bpftool >/dev/null || skip "bpftool not installed (apt-get install bpftool)"
  N=3000
  echo "{ eth(da=$MAC_B, sa=$MAC_A, type=0x0800), ipv4(sa=198.18.1.1, da=198.18.1.2, ttl=64), udp(sp=10000, dp=9000), fill(0x00, 272) }" >"$TMP/t.cfg"
  ready() { for _ in $(seq 200); do grep -q "ready on" "$1" && return 0; sleep 0.05; done; return 1; }
  xdp_id() { inb ip -d link show zcwb | grep -o 'prog/xdp id [0-9]*' | grep -o '[0-9]*$'; }
  for rx in af_xdp xdp_drop; do
    $INB "$ZC" sink --iface zcwb --rx $rx --source external --count $N --silence 3 --duration 20 --json >"$TMP/$rx.json" 2>"$TMP/$rx.err" &
    SK=$!
    ready "$TMP/$rx.err" || { wait $SK; rc=$?; [[ $rc -eq 3 ]] && skip "sink --rx $rx: $(tail -1 "$TMP/$rx.err")"; fail "sink --rx $rx never got ready (rc $rc): $(tail -2 "$TMP/$rx.err")"; }
    [[ -n "$(xdp_id)" ]] || fail "no XDP program on zcwb during the $rx trial"
    trafgen --dev zcwa --conf "$TMP/t.cfg" --num $N --rate 20000pps --cpus 1 --no-sock-mem --notouch-irq >"$TMP/trafgen.out" 2>&1 \
      || fail "trafgen failed: $(tail -3 "$TMP/trafgen.out")"
    wait $SK; rc=$?
    [[ $rc -eq 0 ]] || fail "sink --rx $rx exited $rc: $(tail -2 "$TMP/$rx.err")"
    got=$(jget "$TMP/$rx.json" 'r["raw"]["received_total"]')
    how=$(jget "$TMP/$rx.json" 'r["params"]["wire"]["xdp"]["attach"]')
    echo "$rx: trafgen sent $N, sink received $got, XDP attached by $how"
    [[ "$got" -eq $N ]] || fail "sink --rx $rx counted $got packets, trafgen sent exactly $N"
    [[ "$how" == bpf_link ]] || fail "the record says the XDP program was attached by '$how', not bpf_link"
    [[ -z "$(xdp_id)" ]] || fail "an XDP program is left on zcwb after the $rx trial ended"
  done
  $INB "$ZC" sink --iface zcwb --rx xdp_drop --source external --duration 30 >/dev/null 2>"$TMP/k.err" &
  SK=$!
  ready "$TMP/k.err" || fail "the xdp_drop sink never got ready: $(tail -2 "$TMP/k.err")"
  pid=$(xdp_id)
  lid=$(bpftool -j link show | /usr/bin/python3 -c 'import json,sys; print(" ".join(str(l["id"]) for l in json.load(sys.stdin) if l.get("prog_id")=='"${pid:-0}"'))')
  [[ -n "$pid" && -n "$lid" ]] || fail "during the trial: XDP prog id '$pid', BPF link id(s) '$lid' (expected both)"
  # Someone else's program (here: the first sink's) is never replaced.
  err=$(inb "$ZC" sink --iface zcwb --rx af_xdp --source external --duration 1 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 2 && "$err" == *"already has an XDP program"* && $(printf '%s\n' "$err" | wc -l) -eq 1 ]] \
    || fail "a second XDP sink was not refused in one line (rc $rc): $err"
  [[ "$(xdp_id)" == "$pid" ]] || fail "the refused sink changed the XDP program ($(xdp_id), was $pid)"
  kill -KILL $SK; wait $SK 2>/dev/null
  for _ in $(seq 100); do
    [[ -z "$(xdp_id)" ]] && ! bpftool link show id $lid >/dev/null 2>&1 && ! bpftool prog show id $pid >/dev/null 2>&1 && break
    sleep 0.05
  done
  [[ -z "$(xdp_id)" ]] || fail "after SIGKILL zcwb still has XDP program $(xdp_id): $(inb ip -d link show zcwb | grep xdp)"
  bpftool link show id $lid >/dev/null 2>&1 && fail "after SIGKILL BPF link $lid is still in the kernel: $(bpftool link show id $lid)"
  bpftool prog show id $pid >/dev/null 2>&1 && fail "after SIGKILL XDP program $pid is still in the kernel"
  echo "after SIGKILL: no XDP on zcwb, link $lid and program $pid gone"
  ;;
size_mix)
  # A frame-size mix on a named interface (harness/size_mix.h): our send's
  # per-size counts are exact, our sink checks each packet's length by its
  # sequence number, and tcpdump sees exactly the lengths send says it sent.
  command -v tcpdump >/dev/null || skip "tcpdump not installed (apt-get install tcpdump)"
  MIX=64:7,576:4,1518:1 N=1200   # 100 periods of 12: 700 x 64, 400 x 576, 100 x 1518
  ready() { for _ in $(seq 200); do grep -q "ready on" "$1" && return 0; sleep 0.05; done; return 1; }
  sizes() { jget "$1" '" ".join("{}:{sent}/{received}/{corrupt}".format(k, **v) for k, v in sorted(r["raw"]["sizes"].items(), key=lambda kv: int(kv[0])))'; }
  # 1. send -> our sink on the peer.
  $INB "$ZC" sink --iface zcwb --rx recvmmsg --size $MIX --count $N --silence 3 --duration 20 --json >"$TMP/sink.json" 2>"$TMP/sink.err" &
  SK=$!
  ready "$TMP/sink.err" || fail "the sink never got ready: $(tail -2 "$TMP/sink.err")"
  "$ZC" send --iface zcwa --dst 198.18.1.2 --size $MIX --count $N --rate 10000 --duration 5 --warmup 0 --json >"$TMP/send.json" \
    || fail "zcbench send --size $MIX exited $?"
  wait $SK; rc=$?
  [[ $rc -eq 0 ]] || fail "zcbench sink --size $MIX exited $rc: $(tail -2 "$TMP/sink.err")"
  echo "send (sent/received/corrupt): $(sizes "$TMP/send.json")"
  echo "sink (sent/received/corrupt): $(sizes "$TMP/sink.json")"
  [[ "$(sizes "$TMP/send.json")" == "64:700/None/None 576:400/None/None 1518:100/None/None" ]] \
    || fail "send's raw.sizes is not 700/400/100 sent: $(sizes "$TMP/send.json")"
  [[ "$(sizes "$TMP/sink.json")" == "64:700/700/0 576:400/400/0 1518:100/100/0" ]] \
    || fail "sink's raw.sizes is not exactly what send sent: $(sizes "$TMP/sink.json")"
  [[ $(jget "$TMP/sink.json" 'r["params"]["size_mix"]') == "$MIX" ]] || fail "the sink record's params.size_mix is not $MIX"
  valid "$TMP/send.json"
  valid "$TMP/sink.json"
  # 2. send -> tcpdump on the peer: every packet at the length send counted.
  $INB tcpdump -i zcwb -n -p -B 65536 --immediate-mode -w "$TMP/b.pcap" udp dst port 9000 2>"$TMP/tcpdump.err" &
  TD=$!
  for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.err" && break; sleep 0.1; done
  "$ZC" send --iface zcwa --dst 198.18.1.2 --tx tx_ring --size $MIX --count $N --rate 10000 --duration 5 --warmup 0 --json >"$TMP/send2.json" \
    || fail "zcbench send --tx tx_ring --size $MIX exited $?"
  sleep 0.5
  kill -INT $TD; wait $TD
  # tcpdump prints the UDP payload length; the frame adds 46 bytes (Ethernet 14 + FCS 4 + IPv4 20 + UDP 8).
  seen=$(inb tcpdump -n -r "$TMP/b.pcap" 2>/dev/null | grep -o 'length [0-9]*$' | awk '{n[$2+46]++} END {for (k in n) print k":"n[k]}' | sort -n | tr '\n' ' ')
  said=$(jget "$TMP/send2.json" '" ".join("{}:{sent}".format(k, **v) for k, v in sorted(r["raw"]["sizes"].items(), key=lambda kv: int(kv[0])))')
  echo "tcpdump per frame size: $seen; send says: $said"
  [[ "$seen" == "$said " ]] || fail "tcpdump saw '$seen', send says it sent '$said'"
  [[ "$said" == "64:700 576:400 1518:100" ]] || fail "send --tx tx_ring sent '$said', not 700/400/100"
  # 3. A transport that sends one size per trial is refused in one line.
  err=$("$ZC" send --iface zcwa --dst 198.18.1.2 --tx udp_gso --size $MIX --count 10 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 2 && "$err" == *"udp_gso sends one payload size"* && $(printf '%s\n' "$err" | wc -l) -eq 1 ]] \
    || fail "send --tx udp_gso --size $MIX not refused in one line (rc $rc): $err"
  ;;
af_xdp_send)
  # AF_XDP TX on a named interface: an XSK bound to one TX queue, no XDP
  # program anywhere; our sink on the peer counts exactly what it sent, and
  # during the trial, after it and after a SIGKILL no XDP program is attached
  # to either end (ip -d link), and after the SIGKILL nothing sends any more
  # (zcwa's tx_packets stand still). ss --xdp would list the XSK itself, but
  # needs CONFIG_XDP_SOCKETS_DIAG, which kernels may lack.
  N=3000
  ready() { for _ in $(seq 200); do grep -q "ready on" "$1" && return 0; sleep 0.05; done; return 1; }
  no_xdp() { ! ip -d link show zcwa | grep -q 'xdp' && ! inb ip -d link show zcwb | grep -q 'xdp'; }
  txp() { cat /sys/class/net/zcwa/statistics/tx_packets; }
  $INB "$ZC" sink --iface zcwb --rx recvmmsg --count $N --silence 3 --duration 20 --json >"$TMP/sink.json" 2>"$TMP/sink.err" &
  SK=$!
  ready "$TMP/sink.err" || fail "the sink never got ready: $(tail -2 "$TMP/sink.err")"
  "$ZC" send --iface zcwa --dst 198.18.1.2 --tx af_xdp --count $N --rate 10000 --duration 5 --warmup 0 --json >"$TMP/send.json" 2>"$TMP/send.err"
  rc=$?
  [[ $rc -eq 3 ]] && { kill $SK; wait $SK 2>/dev/null; skip "send --tx af_xdp: $(tail -1 "$TMP/send.err")"; }
  [[ $rc -eq 0 ]] || fail "zcbench send --tx af_xdp exited $rc: $(tail -2 "$TMP/send.err")"
  wait $SK; rc=$?
  [[ $rc -eq 0 ]] || fail "zcbench sink exited $rc: $(tail -2 "$TMP/sink.err")"
  sent=$(jget "$TMP/send.json" 'r["raw"]["sent_total"]')
  got=$(jget "$TMP/sink.json" 'r["raw"]["received_total"]')
  uniq=$(jget "$TMP/sink.json" 'r["raw"]["sequence"]["unique"]')
  xsk=$(jget "$TMP/send.json" 'r["params"]["wire"]["xsk"]')
  mode=$(jget "$TMP/send.json" 'r["params"]["wire"]["xsk"]["bind_mode"]')
  refused=$(jget "$TMP/send.json" 'r["params"]["wire"]["xsk"]["zerocopy_refused"]')
  echo "send --tx af_xdp sent=$sent; sink received=$got unique=$uniq; params.wire.xsk=$xsk"
  [[ "$sent" -eq $N ]] || fail "send says it sent $sent, not the $N asked"
  [[ "$got" -eq $N && "$uniq" -eq $N ]] || fail "our sink counted $got ($uniq unique), send sent exactly $N"
  [[ $(jget "$TMP/send.json" 'r["params"]["wire"]["xsk"]["queue"]') == 0 ]] || fail "params.wire.xsk.queue is not 0: $xsk"
  [[ "$mode" == zerocopy || ( "$mode" == copy && "$refused" != None ) ]] \
    || fail "bind mode '$mode' with zero-copy refusal '$refused' (mode=auto: copy only after the kernel refused zero-copy)"
  valid "$TMP/send.json"
  no_xdp || fail "an XDP program is attached after the af_xdp send: $(ip -d link show zcwa | grep xdp)"
  # mode=zerocopy where the driver lacks it: a skip with the kernel's errno.
  if [[ "$mode" == copy ]]; then
    "$ZC" send --iface zcwa --dst 198.18.1.2 --tx af_xdp --tx-opt mode=zerocopy --count 10 --json >"$TMP/zc.json" 2>"$TMP/zc.err"
    rc=$?
    reason=$(jget "$TMP/zc.json" 'r["reason"]')
    echo "mode=zerocopy on veth: exit $rc, $reason"
    [[ $rc -eq 3 && "$reason" == "unsupported: "*"XDP_ZEROCOPY"* ]] || fail "mode=zerocopy on veth: exit $rc, reason '$reason'"
  fi
  # SIGKILL in the middle of a send: the kernel frees the XSK with the process.
  "$ZC" send --iface zcwa --dst 198.18.1.2 --tx af_xdp --tx-queue 0 --rate 1000 --duration 30 --warmup 0 >/dev/null 2>&1 &
  SP=$!
  t0=$(txp)
  for _ in $(seq 100); do [[ $(( $(txp) - t0 )) -ge 200 ]] && break; sleep 0.05; done
  [[ $(( $(txp) - t0 )) -ge 200 ]] || fail "the af_xdp send put nothing on zcwa; the SIGKILL check would prove nothing"
  no_xdp || fail "an XDP program is attached during an af_xdp send: $(ip -d link show zcwa | grep xdp)"
  kill -KILL $SP; wait $SP 2>/dev/null
  sleep 0.3; t1=$(txp); sleep 0.5
  [[ $(txp) -eq $t1 ]] || fail "zcwa still transmits after the af_xdp send was SIGKILLed ($t1 -> $(txp))"
  no_xdp || fail "after SIGKILL an XDP program is attached: $(ip -d link show zcwa | grep xdp)"
  echo "during, after the trial and after SIGKILL: no XDP program on either end; nothing sends after SIGKILL"
  ;;
run_py_xdp)
  # ./run.py --iface on a single-queue interface (veth: one RX queue) runs the
  # XDP sinks too; the capture peer is left out, and run.json says why.
  command -v trafgen >/dev/null || skip "trafgen not installed (apt-get install netsniff-ng)"
  nq=$(inb sh -c 'ls -d /sys/class/net/zcwb/queues/rx-*' | wc -l)
  [[ $nq -eq 1 ]] || fail "the test's veth zcwb lists $nq RX queues, expected veth's default of 1"
  echo '{"name": "wire_xdp", "trials": [{"rx": ["af_xdp", "xdp_drop", "tcpdump"]}]}' >"$TMP/wire_xdp.json"
  echo "{ eth(da=$MAC_B, sa=$MAC_A, type=0x0800), ipv4(sa=198.18.1.1, da=198.18.1.2, ttl=64), udp(sp=10000, dp=9000), fill(0x00, 272) }" >"$TMP/t.cfg"
  trafgen --dev zcwa --conf "$TMP/t.cfg" --num 600000 --rate 20000pps --cpus 1 --no-sock-mem --notouch-irq >/dev/null 2>&1 &
  TG=$!
  $INB python3 "$REPO/run.py" --no-install --no-build --build-dir "$(dirname "$ZC")" --suite "$TMP/wire_xdp.json" --repetitions 1 \
    --iface zcwb --source external --wire-duration 2 --wire-silence 1 --results-dir "$TMP/results" >"$TMP/runpy.out" 2>"$TMP/runpy.err"
  rc=$?
  kill $TG 2>/dev/null; wait $TG 2>/dev/null
  report=$(tail -1 "$TMP/runpy.out")
  run_json="$(dirname "$report")/run.json"
  [[ $rc -eq 0 ]] || fail "run.py exited $rc: $(/usr/bin/python3 -c 'import json,sys; print("; ".join(r["name"] + ": " + r["reason"] for r in json.load(open(sys.argv[1]))["records"] if r["status"] != "pass"))' "$run_json" 2>&1)"
  got=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(sorted(r["params"]["rx"] + ":" + r["status"] for r in d["records"] if r["params"].get("lab_mode")=="wire")))' "$run_json")
  left=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("; ".join(x["rx"] + ": " + x["reason"] for x in d["context"]["options"]["wire_left_out"]))' "$run_json")
  echo "run.py --iface on a single-queue veth: $got; left out: $left"
  [[ "$got" == "af_xdp:pass xdp_drop:pass" ]] || fail "expected af_xdp and xdp_drop wire trials, both pass; got '$got' ($(tail -3 "$TMP/runpy.err"))"
  [[ "$left" == "tcpdump: tcpdump: "* ]] || fail "run.json does not say tcpdump was left out, and why: '$left'"
  grep -q "left out" "$TMP/runpy.err" || fail "run.py did not say on stderr what it left out"
  grep -q "tcpdump" "$report" || fail "the report does not name the transport left out"
  (cd "$REPO" && /usr/bin/python3 -m reports.validate "$run_json") >"$TMP/validate.out" 2>&1 || fail "run.json does not match the schema: $(tail -5 "$TMP/validate.out")"
  ;;
hw_timestamps_refused)
  # veth cannot stamp in hardware: `sink --hw-timestamps` is refused with the
  # probe's own reason (ETHTOOL_GET_TS_INFO), exit 3 (environment: the NIC
  # lacks the feature), before anything changes on the interface, even with
  # other changes asked for beside it. Hardware stamping itself needs a NIC
  # with a PHC (README "What could not be tested without hardware").
  command -v ethtool >/dev/null || skip "ethtool not installed (apt-get install ethtool)"
  inb ethtool -K zcwb gro off 2>/dev/null
  before=$(state)
  for rx in recvmmsg recv tpacket_v3; do
    err=$(inb "$ZC" sink --iface zcwb --rx $rx --hw-timestamps --promisc --gro --threaded-napi --duration 1 2>&1 >/dev/null); rc=$?
    [[ $rc -eq 3 ]] || fail "sink --rx $rx --hw-timestamps on veth exited $rc, expected 3: $err"
    [[ "$err" == *"unsupported: --hw-timestamps on zcwb: veth reports no SOF_TIMESTAMPING_RX_HARDWARE (ETHTOOL_GET_TS_INFO)"* ]] \
      || fail "sink --rx $rx --hw-timestamps on veth said '$err'"
    [[ $(printf '%s\n' "$err" | wc -l) -eq 1 ]] || fail "sink --rx $rx --hw-timestamps printed more than one line: $err"
    same "after a refused --hw-timestamps (--rx $rx)"
  done
  # The refusal is a skip record, valid against the schema.
  inb "$ZC" sink --iface zcwb --rx recvmmsg --hw-timestamps --duration 1 --json >"$TMP/skip.json" 2>/dev/null; rc=$?
  [[ $rc -eq 3 ]] || fail "sink --hw-timestamps --json exited $rc, expected 3"
  valid "$TMP/skip.json"
  [[ $(jget "$TMP/skip.json" 'r["status"]') == skip ]] || fail "the record's status is not skip"
  [[ $(jget "$TMP/skip.json" 'r["params"]["hw_timestamps"]') == True ]] || fail "params.hw_timestamps is not true"
  # A stream sink carries no per-datagram stamps: a usage error before any change.
  err=$(inb "$ZC" sink --iface zcwb --rx recv:proto=tcp --hw-timestamps --promisc --duration 1 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 2 && "$err" == *"proto=tcp reads a stream"* ]] || fail "sink --rx recv:proto=tcp --hw-timestamps: rc $rc, '$err'"
  same "after a refused --hw-timestamps (--rx recv:proto=tcp)"
  # A sink that takes no kernel stamps: a skip naming those that do, nothing changed.
  err=$(inb "$ZC" sink --iface zcwb --rx af_xdp --hw-timestamps --promisc --duration 1 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 3 && "$err" == *"af_xdp takes no kernel RX stamps"* ]] || fail "sink --rx af_xdp --hw-timestamps: rc $rc, '$err'"
  same "after a refused --hw-timestamps (--rx af_xdp)"
  echo "refused on veth with the probe's reason, exit 3, settings identical; af_xdp: no kernel stamps"
  ;;
*) echo "unknown check '$CHECK'" >&2; exit 2 ;;
esac
echo "PASS: wire.$CHECK"
