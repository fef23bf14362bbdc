#!/usr/bin/env python3
"""zcbench's front door: install, build, run suites, write run.json, render the report.

Standard library only: this runs under whatever python3 is on PATH, which may not
see the Debian python3-* packages the report needs (those run in a separate
interpreter, found by probing). The implementation is the zcrun/ package beside this
file: setup (packages, build), children, results, ndr, commands and cli.

Contracts with the C++ side and the report package are described in
docs/results-format.md and next to the functions that use them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zcrun.cli import main  # noqa: E402  (the path above must come first)

if __name__ == "__main__":
    sys.exit(main())
