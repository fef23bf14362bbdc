"""CLI: /usr/bin/python3 -m reports RUN_JSON [-o OUT_HTML]"""
import argparse
import json
import sys

from .render import write_report


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m reports",
                                 description="Render a zcbench run.json into one HTML report.")
    ap.add_argument("run_json", help="results/<run-id>/run.json")
    ap.add_argument("-o", "--output", help="output HTML (default: report.html beside run.json)")
    args = ap.parse_args(argv)
    try:
        out = write_report(args.run_json, args.output)
    except FileNotFoundError as e:
        print(f"reports: cannot read {e.filename}: no such file", file=sys.stderr)
        return 2
    except json.JSONDecodeError as e:
        print(f"reports: {args.run_json} is not JSON: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
