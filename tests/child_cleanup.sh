#!/usr/bin/env bash
# External programs die with zcbench (docs/children.md): starts a long
# `zcbench run` with one external program (trafgen, tcpdump, netsniff-ng),
# waits until that program runs as a descendant of zcbench, SIGKILLs zcbench
# and checks, within 5 s, that no descendant is left, no network namespace
# of the trial is still held by any process or /run/netns, and no temporary
# file the tree held open or named on its command lines (or with a peer's
# name: trafgen*, tcpdump*, netsniff*) is left in /tmp, /var/tmp, /dev/shm.
# Usage: child_cleanup.sh ZCBENCH trafgen|tcpdump|netsniff_ng
# Exit 0 pass, 1 fail, 77 skip (tool absent, or zcbench cannot run a trial
# here: its own reason is printed).
set -u
ZC="$1" CASE="$2"
case "$CASE" in
  trafgen) tool=trafgen
    args=(run --generator trafgen --rx recvmmsg --rate 1000 --lab-mode sender-softirq --duration 60 --warmup 0.1) ;;
  tcpdump) tool=tcpdump
    args=(run --tx sendmmsg --rx tcpdump --rate 1000 --duration 60 --warmup 0.1) ;;
  netsniff_ng) tool=netsniff-ng
    args=(run --tx sendmmsg --rx netsniff_ng --rate 1000 --duration 60 --warmup 0.1) ;;
  *) echo "unknown case '$CASE'; accepted: trafgen, tcpdump, netsniff_ng" >&2; exit 2 ;;
esac
tool_path=$(command -v "$tool") || { echo "SKIP: $tool not installed (Debian package netsniff-ng or tcpdump)"; exit 77; }
tool_path=$(readlink -f "$tool_path")

# Our own scratch: one directory, removed on every exit of this script.
scratch=$(mktemp -d /tmp/zc-child-cleanup.XXXXXX)
zc_pid=
cleanup() {
  [[ -n "$zc_pid" ]] && kill -KILL "$zc_pid" 2>/dev/null && wait "$zc_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Fields of /proc/PID/stat after the ")" that ends the command name (which
# may hold spaces): $2 is the ppid, $20 the start time. Pure bash: no fork
# per process while the machine is busy.
stat_field() {
  local line rest n="$2"
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  set -- $rest
  echo "${!n}"
}
starttime() { stat_field "$1" 20; }
# Every descendant of $1, by the ppid chain in /proc/*/stat.
descendants() {
  local root="$1" f line rest pid changed=1
  declare -A parent=() in_tree=(["$root"]=1)
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    pid=${f#/proc/}; pid=${pid%/stat}
    rest=${line##*) }
    set -- $rest
    parent[$pid]=$2
  done
  while ((changed)); do
    changed=0
    for pid in "${!parent[@]}"; do
      [[ -n "${in_tree[$pid]:-}" ]] && continue
      if [[ -n "${in_tree[${parent[$pid]}]:-}" ]]; then in_tree[$pid]=1; changed=1; fi
    done
  done
  for pid in "${!in_tree[@]}"; do [[ "$pid" != "$root" ]] && echo "$pid"; done
}
peer_named_tmp() { ls -A /tmp /var/tmp /dev/shm 2>/dev/null | grep -E '^(trafgen|tcpdump|netsniff)' | sort; }

before_named=$(peer_named_tmp)
"$ZC" "${args[@]}" >"$scratch/zcbench.log" 2>&1 &
zc_pid=$!

# Wait (15 s at most) for the program among zcbench's descendants.
declare -A tree_start=()   # pid -> starttime, so a reused PID is not mistaken
found=
for _ in $(seq 150); do
  if ! kill -0 "$zc_pid" 2>/dev/null; then
    wait "$zc_pid"; rc=$?; zc_pid=
    cat "$scratch/zcbench.log"
    if [[ $rc -eq 3 ]]; then echo "SKIP: zcbench exited 3 before $tool ran (its reason above)"; exit 77; fi
    echo "FAIL: zcbench exited $rc before $tool ran"; exit 1
  fi
  for d in $(descendants "$zc_pid"); do
    [[ "$(readlink -f "/proc/$d/exe" 2>/dev/null)" == "$tool_path" ]] && found=$d
  done
  [[ -n "$found" ]] && break
  sleep 0.1
done
if [[ -z "$found" ]]; then
  cat "$scratch/zcbench.log"; echo "FAIL: $tool did not appear under zcbench (pid $zc_pid) within 15 s"; exit 1
fi
sleep 0.5  # let the program start its own workers (trafgen forks one)

# What the tree holds: processes, network namespaces, temporary paths.
declare -A lab_ns=()
tmp_paths=()
# The checkout and its build may themselves lie under /tmp (a CI clone): the
# binary's path and CTest's own log, held open by zcbench, are not temp files.
checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
build_dir=$(cd "$(dirname "$ZC")" && pwd -P)
ours() { [[ "$1" == "$scratch"/* || "$1" == "$checkout"/* || "$1" == "$build_dir"/* ]]; }
for d in "$zc_pid" $(descendants "$zc_pid"); do
  s=$(starttime "$d"); [[ -n "$s" ]] || continue
  [[ "$d" != "$zc_pid" ]] && tree_start[$d]=$s
  for t in /proc/"$d"/task/*; do
    n=$(readlink "$t/ns/net" 2>/dev/null) && lab_ns[$n]=1
  done
  for f in /proc/"$d"/fd/*; do
    l=$(readlink "$f" 2>/dev/null) || continue
    ours "$l" && continue  # our own log of zcbench's output, the checkout
    [[ "$l" =~ ^(/tmp|/var/tmp|/dev/shm)/ ]] && tmp_paths+=("${l% (deleted)}")
  done
  while IFS= read -r -d '' a; do
    ours "$a" && continue
    [[ "$a" =~ ^(/tmp|/var/tmp|/dev/shm)/ ]] && tmp_paths+=("$a")
  done <"/proc/$d/cmdline"
done
host_ns=$(readlink /proc/self/ns/net)
unset "lab_ns[$host_ns]"
echo "zcbench $zc_pid; $tool $found; descendants: ${!tree_start[*]}; lab namespaces: ${!lab_ns[*]}"

kill -KILL "$zc_pid"
wait "$zc_pid" 2>/dev/null
zc_pid=

fail=0
for _ in $(seq 50); do
  left=()
  for d in "${!tree_start[@]}"; do
    [[ "$(starttime "$d")" == "${tree_start[$d]}" ]] && left+=("$d")
  done
  ((${#left[@]} == 0)) && break
  sleep 0.1
done
if ((${#left[@]})); then
  echo "FAIL: 5 s after SIGKILL of zcbench, still running: ${left[*]}"
  for d in "${left[@]}"; do tr '\0' ' ' <"/proc/$d/cmdline"; echo; kill -KILL "$d" 2>/dev/null; done
  fail=1
fi
for p in /proc/[0-9]*; do
  n=$(readlink "$p/ns/net" 2>/dev/null) || continue
  if [[ -n "${lab_ns[$n]:-}" ]]; then echo "FAIL: ${p#/proc/} still holds lab namespace $n"; fail=1; fi
done
for f in /run/netns/*; do
  [[ -e "$f" ]] || continue
  i=$(stat -L -c 'net:[%i]' "$f" 2>/dev/null)
  if [[ -n "${lab_ns[$i]:-}" ]]; then echo "FAIL: $f pins lab namespace $i"; fail=1; fi
done
for f in "${tmp_paths[@]}"; do
  if [[ -e "$f" ]]; then echo "FAIL: temporary file left: $f"; fail=1; fi
done
new_named=$(comm -13 <(echo "$before_named") <(peer_named_tmp))
if [[ -n "$new_named" ]]; then echo "FAIL: new temporary files with a peer's name: $new_named"; fail=1; fi
((fail)) && { cat "$scratch/zcbench.log"; exit 1; }
echo "ok: $tool and every descendant gone after SIGKILL of zcbench; lab namespaces released; no temp files left"
