"""Check run.json documents against schema/run.schema.json.

    /usr/bin/python3 -m reports.validate RUN_JSON...

Exit 0 when every document is valid, 1 when any is not (each error printed as
FILE: $.json.path: message), 2 on usage errors.
"""
import json
import os
import sys

import jsonschema

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "schema", "run.schema.json")


def load_schema(path=SCHEMA_PATH):
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def json_path(error):
    out = "$"
    for p in error.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def errors(doc, schema=None):
    """Every schema violation of a document as "$.path: message", in path order."""
    validator = jsonschema.Draft202012Validator(schema or load_schema())
    errs = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{json_path(e)}: {e.message}" for e in errs]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    schema = load_schema()
    bad = 0
    for path in argv:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{path}: cannot read as JSON: {e}")
            bad += 1
            continue
        errs = errors(doc, schema)
        for e in errs:
            print(f"{path}: {e}")
        if errs:
            bad += 1
        else:
            print(f"{path}: valid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
