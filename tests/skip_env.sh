#!/usr/bin/env bash
# The one skip convention for CTest tests that run zcbench programs
# (docs/testing.md): runs the command; zcbench's exit 3 ("the environment
# lacks something": privilege, kernel feature, package) becomes exit 77,
# which the test's SKIP_RETURN_CODE turns into a CTest skip. The reason is
# the program's own line on stderr, just above. Any other exit passes through.
"$@"
rc=$?
if [[ $rc -eq 3 ]]; then
  echo "SKIP: $(basename "$1") exited 3 (environment missing; its reason is above)" >&2
  exit 77
fi
exit $rc
