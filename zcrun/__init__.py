"""run.py's implementation: a small standard-library package behind the thin
./run.py (setup, children, results, the NDR search, the CLI, named wires and
remote hosts). Only Python's standard library is imported here; the report
(reports/) is rendered by a separate interpreter that has pandas."""
