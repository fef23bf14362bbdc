#!/usr/bin/env bash
# Bad input gets one clear line and the documented exit code (README "Exit
# codes"), before any lab or traffic exists.
set -u
ZC="$1"
fail=0
expect() {  # expect CODE PATTERN -- args...
  local code="$1" pattern="$2"; shift 3
  local out rc
  out=$("$ZC" "$@" 2>&1 >/dev/null); rc=$?
  if [[ $rc -ne $code ]] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: zcbench $* -> exit $rc (want $code), stderr: $out"; fail=1
  else
    echo "ok: zcbench $* -> $rc: $out"
  fi
}
expect 2 "transport 'nope' is unknown; accepted: recv, recvmmsg" -- run --rx nope
expect 2 "transmit transport 'recv' is unknown" -- run --tx recv
expect 2 "has no option 'bogus'; accepted:" -- run --rx-opt bogus=1
expect 2 "batch=0 is out of range; accepted: 1..1024" -- run --rx-opt batch=0
expect 2 "needs --mtu 2028" -- run --size 2000
expect 2 "accepted: 18..1472" -- run --size 17
expect 2 "--rate -5 is not accepted" -- run --rate -5
expect 2 "impossible here" -- run --rate 1e12
expect 2 "duration 0" -- run --duration 0
expect 2 "CPU 99 does not exist" -- run --sink-cpu 99
expect 2 "lab mode 'warp'" -- run --lab-mode warp
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "interface 'zc-no-such-if0' does not exist" -- sink --iface zc-no-such-if0
expect 2 "--iface is required" -- send --dst 198.18.0.2
expect 2 "outside the benchmarking range" -- send --iface lo --dst 8.8.8.8
expect 2 "run: unknown option '--sise'; did you mean '--size'?" -- run --sise 64
expect 2 "--burst 0 is not accepted; accepted: 1..65536" -- run --burst=0
expect 2 "send: option '--rx' is not for send" -- send --rx recv
# send runs one generator thread on a named interface: worker flags are refused, not ignored.
expect 2 "send: option '--gen-threads' is not for send (it is for run)" -- send --iface lo --dst 198.18.0.2 --gen-threads 2
expect 2 "send: option '--gen-cpus' is not for send (it is for run)" -- send --iface lo --dst 198.18.0.2 --gen-cpus 0
expect 2 "--dst-mac 'zz' is not a MAC address" -- send --iface lo --dst 198.18.0.2 --dst-mac zz
expect 2 "no neighbour entry for 198.18.255.254 on lo: give --dst-mac" -- send --iface lo --dst 198.18.255.254 --tx tx_ring
# Frame-size mixes: a TX transport that sends one size, a frame above the MTU,
# one below the flood header's 18-byte payload, a period too long to tabulate.
expect 2 "tx udp_gso sends one payload size per trial; a mix needs --tx one of: sendto, sendmmsg" -- run --tx udp_gso --size 64:7,576:4,1518:1
expect 2 "frame size 2000 of the mix 64:1,2000:1 does not fit MTU 1500" -- run --size 64:1,2000:1
expect 2 "mix item '60:1' is out of range; give FRAME:WEIGHT" -- run --size 60:1,1518:1
expect 2 "divide the weights by a common factor" -- run --size 64:1000000,1518:1000000
expect 2 "a frame-size mix is sent by the flood generator only" -- run --generator pktgen --size 64:7,1518:1
expect 2 "tx udp_gso sends one payload size per trial; a mix needs --tx one of:" -- send --iface lo --dst 198.18.0.2 --tx udp_gso --size 64:7,1518:1
exit $fail
