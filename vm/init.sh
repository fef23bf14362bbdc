#!/bin/busybox sh
# /init of the zcvm guest (vm/zcvm.py builds the initramfs around it).
#
# Runs the work listed in /zcvm/work.conf, then sends every result file to the
# host over the second serial port (ttyS1) as base64 between marker lines
# ("ZCVM-BEGIN name size sha256" ... "ZCVM-END name"), so kernel messages on
# the console (ttyS0) never interleave with them, and powers off. Every work
# item runs under a timeout; the host bounds the whole boot as well.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Scratch files (splice, sendfile) want O_TMPFILE in /dev/shm and /var/tmp, as on a host.
mkdir -p /dev/shm /var/tmp
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /var/tmp
ip link set lo up

. /zcvm/work.conf
OUT=/tmp/out
mkdir -p "$OUT/artifacts"
uname -r > "$OUT/uname"
# The conformance binary and the harness read it: timing checks widen their
# tolerances or skip under an emulated CPU.
export ZCBENCH_EMULATED=1
export HOME=/root

say() { echo "zcvm-guest: $*"; }
status=""
record_status() { status="$status${status:+, }\"$1\": $2"; }

for m in $(cat /zcvm/modules.list); do
  insmod "$m" || say "insmod $m failed"
done
say "kernel $(uname -r), $(nproc) CPUs, work: $ZC_WORK"

set -o pipefail
for item in $ZC_WORK; do
  t0=$(date +%s)
  case "$item" in
    conformance)
      say "conformance suite (filter $ZC_GTEST_FILTER)"
      ZCBENCH_RECORDS="$OUT/conformance.jsonl" timeout "$ZC_ITEM_TIMEOUT" \
        /zcvm/bin/zcbench-conformance --gtest_filter="$ZC_GTEST_FILTER" 2>&1 | tee "$OUT/conformance.log"
      rc=$?
      record_status conformance $rc
      ;;
    list)
      /zcvm/bin/zcbench list --json > "$OUT/list.json"
      record_status list $?
      /zcvm/bin/zcbench list
      ;;
    pktgen)
      # The trials' artifacts (pktgen.sh) come back too, where the CLI takes --artifacts.
      art=no
      /zcvm/bin/zcbench --help 2>&1 | grep -q -- '--artifacts' && art=yes
      i=0
      while [ "$i" -lt "$ZC_PKTGEN_COUNT" ]; do
        eval "args=\$ZC_PKTGEN_$i"
        say "zcbench $args"
        # Word splitting of $args is intended: it holds a command line.
        extra=""
        [ "$art" = yes ] && mkdir -p "$OUT/artifacts/pktgen-$i" && extra="--artifacts $OUT/artifacts/pktgen-$i"
        timeout "$ZC_ITEM_TIMEOUT" /zcvm/bin/zcbench $args $extra > "$OUT/pktgen-$i.json" 2> "$OUT/pktgen-$i.err"
        rc=$?
        cat "$OUT/pktgen-$i.err"
        record_status "pktgen-$i" $rc
        i=$((i + 1))
      done
      ;;
  esac
  say "$item done in $(( $(date +%s) - t0 )) s"
done
echo "{$status}" > "$OUT/status.json"

send_file() {  # $1: path under $OUT
  f="$OUT/$1"
  echo "ZCVM-BEGIN $1 $(wc -c < "$f") $(sha256sum "$f" | cut -d' ' -f1)"
  base64 "$f"
  echo "ZCVM-END $1"
}
stty -F /dev/ttyS1 raw -echo 2>/dev/null
( cd "$OUT" && find . -type f | sed 's|^\./||' | grep -v '^status.json$' ) | while read -r f; do
  send_file "$f"
done > /dev/ttyS1
send_file status.json > /dev/ttyS1
sync
say "done; powering off"
poweroff -f
