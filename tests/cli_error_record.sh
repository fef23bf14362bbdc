#!/usr/bin/env bash
# Errors in a trial never abort the process (issue 11): a misspelt perf event
# is a usage error (exit 2) named before any lab is built, never
# "terminate called without an active exception". (An exception after the
# workers started becomes an `error` record: suites/unit/trial_error_test.cc.)
set -u
ZC="$1"
fail=0
out=$("$ZC" run --perf-events cyclez --duration 0.1 --warmup 0 --json 2>&1 >/dev/null); rc=$?
if [[ $rc -ne 2 ]] || ! grep -q "perf event 'cyclez' is not known" <<<"$out" || grep -q terminate <<<"$out"; then
  echo "FAIL: run --perf-events cyclez -> exit $rc (want 2), stderr: $out"; fail=1
else
  echo "ok: run --perf-events cyclez -> $rc: $out"
fi
# One known and one misspelt: the misspelt one is named.
out=$("$ZC" run --perf-events task-clock,instructionz --duration 0.1 --warmup 0 2>&1 >/dev/null); rc=$?
if [[ $rc -ne 2 ]] || ! grep -q "'instructionz'" <<<"$out"; then
  echo "FAIL: run --perf-events task-clock,instructionz -> exit $rc (want 2), stderr: $out"; fail=1
else
  echo "ok: run --perf-events task-clock,instructionz -> $rc"
fi
# Impossible worker layouts: usage errors naming the fix, before any lab.
expect() {  # expect PATTERN -- args...
  local pattern="$1"; shift 2
  local out rc
  out=$("$ZC" "$@" 2>&1 >/dev/null); rc=$?
  if [[ $rc -ne 2 ]] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: zcbench $* -> exit $rc (want 2), stderr: $out"; fail=1
  else
    echo "ok: zcbench $* -> $rc: $out"
  fi
}
ncpu=$(getconf _NPROCESSORS_ONLN)
expect "needs $((ncpu + 1)) CPUs and this machine has $ncpu" -- run --sink-threads $((ncpu + 1))
expect "give one CPU per worker" -- run --sink-threads 2 --sink-cpus 0
expect "give --queues 2" -- run --rx af_xdp --sink-threads 2
expect "give --flows 2" -- run --gen-threads 2
exit $fail
