#!/usr/bin/env bash
# `zcbench send` frames carry real MACs (issue "Engine v2"): the source is the
# interface's own MAC, the destination --dst-mac or, without it, the kernel's
# neighbour entry for --dst; with neither, one usage error naming the fix.
# Runs itself inside an anonymous network namespace (unshare -n), with the
# peer veth end in a second one held by a `sleep` that dies with this script
# (PR_SET_PDEATHSIG via setpriv). Frames are built by tx_ring (a packet
# socket, so the MACs are ours, not the kernel's) and captured with tcpdump -e.
# Usage: cli_send_mac.sh ZCBENCH. Exit 0 pass, 1 fail, 77 skip.
set -u
ZC="$1"
if [[ -z "${ZC_SEND_MAC_INNER:-}" ]]; then
  for tool in unshare setpriv nsenter ip tcpdump; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
  done
  unshare -n true 2>/dev/null || { echo "SKIP: unshare -n failed (needs CAP_SYS_ADMIN)"; exit 77; }
  ZC_SEND_MAC_INNER=1 exec unshare -n -- "$0" "$@"
fi

scratch=$(mktemp -d /tmp/zc-send-mac.XXXXXX)
peer_pid=
cleanup() {
  [[ -n "$peer_pid" ]] && kill -KILL "$peer_pid" 2>/dev/null && wait "$peer_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail=0

setpriv --pdeathsig KILL unshare -n sleep 120 &
peer_pid=$!
for _ in $(seq 50); do  # until the sleep runs in its own namespace
  [[ "$(readlink /proc/$peer_pid/ns/net)" != "$(readlink /proc/self/ns/net)" && \
     "$(readlink /proc/$peer_pid/exe)" == *sleep ]] && break
  sleep 0.1
done
in_peer() { nsenter -t "$peer_pid" -n "$@"; }

ip link set lo up
ip link add zcm0 type veth peer name zcm1 || { echo "SKIP: cannot create a veth pair"; exit 77; }
ip link set zcm1 netns "$peer_pid"
ip addr add 198.18.200.1/24 dev zcm0
ip link set zcm0 up
in_peer ip addr add 198.18.200.2/24 dev zcm1
in_peer ip link set zcm1 up
# Not /sys/class/net: sysfs shows the namespace it was mounted in, not ours.
mac_of() { "$@" | awk '{for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1)}'; }
src_mac=$(mac_of ip -o link show zcm0)
peer_mac=$(mac_of in_peer ip -o link show zcm1)

# capture DESCRIPTION EXPECTED_DST -- send args...: 5 frames, each "src > dst".
capture() {
  local what="$1" want_dst="$2"; shift 3
  local out="$scratch/cap.txt" err="$scratch/cap.err"
  in_peer timeout 20 tcpdump -i zcm1 -e -n -l -c 5 udp and dst port 9000 >"$out" 2>"$err" &
  local cap=$!
  for _ in $(seq 100); do grep -q "listening on" "$err" && break; sleep 0.1; done
  "$ZC" send --iface zcm0 --dst 198.18.200.2 --tx tx_ring --rate 1000 --count 20 --duration 1 --warmup 0 --json "$@" \
    >"$scratch/send.out" 2>"$scratch/send.err"
  local rc=$?
  wait "$cap"
  if [[ $rc -eq 3 ]]; then echo "SKIP: zcbench send: $(cat "$scratch/send.err")"; exit 77; fi
  local frames got
  frames=$(grep -c " > " "$out")
  got=$(awk '{print $2, $4}' "$out" | sort -u | tr -d ',')
  if [[ $rc -ne 0 || "$frames" -lt 5 || "$got" != "$src_mac $want_dst" ]]; then
    echo "FAIL: $what: send exit $rc, $frames frames, MACs '$got' (want '$src_mac $want_dst')"
    cat "$scratch/send.err" "$out"; fail=1
  else
    echo "ok: $what: $frames frames $src_mac > $want_dst"
  fi
  grep -Eq "\"dst_mac\": *\"$want_dst\"" "$scratch/send.out" || { echo "FAIL: $what: send's output lacks dst_mac $want_dst"; fail=1; }
}

# No neighbour entry yet and no --dst-mac: the usage error naming the fix.
ip neigh flush dev zcm0
err=$("$ZC" send --iface zcm0 --dst 198.18.200.2 --tx tx_ring --count 1 2>&1 >/dev/null); rc=$?
if [[ $rc -ne 2 || "$err" != *"no neighbour entry for 198.18.200.2 on zcm0: give --dst-mac"* ]]; then
  echo "FAIL: without a neighbour: exit $rc: $err"; fail=1
else
  echo "ok: without a neighbour: $err"
fi
capture "--dst-mac" "02:00:5a:43:00:42" -- --dst-mac 02:00:5A:43:00:42
capture "--dst-mac=" "02:00:5a:43:00:43" -- --dst-mac=02:00:5a:43:00:43
ip neigh replace 198.18.200.2 lladdr "$peer_mac" dev zcm0 nud permanent
capture "neighbour entry" "$peer_mac" --
exit $fail
