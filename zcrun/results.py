"""Results: run ids, the results lock, records.jsonl, and the atomic run.json."""

import contextlib
import fcntl
import json
import os
import re
from pathlib import Path

from .common import (EXIT_ENVIRONMENT, EXIT_USAGE, SCHEMA_VERSION, ZcbenchError, display_path,
                     iso_utc, utc_now, warn)


def make_run_id(suites, moment=None):
    """UTC timestamp plus the suite names: 20261125T183000Z-quick."""
    moment = moment or utc_now()
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + "-".join(suites)


RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_run_id(run_id):
    if not RUN_ID_PATTERN.fullmatch(run_id) or run_id == "latest":
        raise ZcbenchError(f"run id '{run_id}' is not accepted; use letters, digits, '.', '_' "
                           "and '-', not starting with '.' or '-', and not 'latest'", EXIT_USAGE)


def atomic_write_json(path, document):
    """Write JSON so readers see the old file or the new one, never half of one.

    A temp file in the same directory, fsync, os.replace: a second Ctrl-C or a crash
    while writing leaves run.json as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def point_latest(results_dir, run_id):
    """Re-point results/latest at this run, atomically (symlink to a temp name, then rename)."""
    latest = Path(results_dir) / "latest"
    tmp = Path(results_dir) / f".latest.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(run_id, tmp)  # relative, so the results folder can be moved or copied
    try:
        os.replace(tmp, latest)
    except OSError as err:
        os.unlink(tmp)
        warn(f"cannot re-point {display_path(latest)}: {err.strerror}; remove it if it is not "
             "a symlink")


class ResultsLock:
    """One run per results folder: flock on RESULTS/.lock, which holds the holder's pid."""

    def __init__(self, results_dir):
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / ".lock"
        self.fd = None

    def acquire(self):
        self.results_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            shown = display_path(self.results_dir).rstrip("/") + "/"
            raise ZcbenchError(f"another run (pid {holder}) is using {shown}; wait for it to "
                               "finish or pass --results-dir", EXIT_ENVIRONMENT) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays for the next run
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def read_records(jsonl_path, start=0, quiet=False):
    """Records appended by the executables, one JSON object per line (from byte start).

    A line the writer had not finished (killed mid-write) is skipped with a warning
    (none when quiet: the caller reads the file again later and warns then).
    """
    try:
        with open(jsonl_path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        is_last = number == len(lines)  # no newline after it: the writer stopped mid-line
        try:
            record = json.loads(line)
        except ValueError:
            what = "truncated last line" if is_last else "unparsable line"
            if not quiet:
                warn(f"{display_path(jsonl_path)}: skipping {what} {number}")
            continue
        if not isinstance(record, dict):
            if not quiet:
                warn(f"{display_path(jsonl_path)}: skipping line {number}: not a JSON object")
            continue
        records.append(record)
    return records


def assemble_run(run_id, status, started_at, finished_at, context, records):
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "status": status,
        "started_at": iso_utc(started_at),
        "finished_at": iso_utc(finished_at) if finished_at else None,
        "context": context,
        "records": records,
    }


def count_statuses(records):
    counts = {}
    for record in records:
        status = record.get("status", "?")
        counts[status] = counts.get(status, 0) + 1
    return counts
