#!/usr/bin/env bash
# Runs one real trial through `zcbench run --json` and validates the document
# against schema/run.schema.json with the report package's validator.
# Usage: cli_run_schema.sh ZCBENCH PYTHON SOURCE_DIR OUT. Exit 77 (CTest
# skip) with zcbench's reason when this machine cannot run a trial.
set -u
ZC="$1" PYTHON="$2" SOURCE_DIR="$3" OUT="$4"
"$ZC" run --tx sendmmsg --rx recvmmsg --size 272 --rate 20000 --duration 0.5 --warmup 0.2 --json >"$OUT"
rc=$?
if [[ $rc -eq 3 ]]; then
  echo "SKIP: cannot run a trial here (zcbench's reason above)" >&2
  exit 77
fi
if [[ $rc -ne 0 ]]; then
  echo "FAIL: zcbench run exited $rc" >&2
  exit 1
fi
cd "$SOURCE_DIR" || exit 1
if ! "$PYTHON" -m reports.validate "$OUT"; then
  echo "FAIL: run.json does not match the schema" >&2
  exit 1
fi
echo "run.json from zcbench run matches schema/run.schema.json"
