"""Running child executables and stopping them on Ctrl-C."""

import contextlib
import signal
import subprocess

from .common import (CHILD_GRACE_S, CHILD_TERM_GRACE_S, EXIT_CHECK_FAILED, EXIT_ENVIRONMENT,
                     EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, REPO_ROOT,
                     ZcbenchError, warn)


class Interrupted(Exception):
    """Ctrl-C reached run.py; the child (if any) has been stopped."""


def stop_child(proc, grace_s=CHILD_GRACE_S, term_grace_s=CHILD_TERM_GRACE_S):
    """Wait for a child that got Ctrl-C to finish cleanly, then escalate by its PID only.

    Another Ctrl-C while waiting skips to the next rung instead of abandoning the child.
    """
    rungs = [(None, grace_s), (signal.SIGTERM, term_grace_s), (signal.SIGKILL, None)]
    for sig, timeout in rungs:
        if proc.poll() is not None:
            break
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
                if sig != signal.SIGKILL:
                    warn(f"pid {proc.pid} still running; sent {signal.Signals(sig).name}")
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            continue
    return proc.returncode


def run_child(command, env=None, stdout=None):
    """Run an executable in run.py's process group, so a Ctrl-C reaches both at once."""
    try:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout)
    except OSError as err:
        raise ZcbenchError(f"cannot start {command[0]}: {err.strerror}; run without --no-build",
                           EXIT_ENVIRONMENT) from err
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_child(proc)
        raise Interrupted() from None


def child_outcome(code, what):
    """Map an executable's exit code to run.py's: checks failing is 1, anything else stops."""
    if code in (EXIT_OK, EXIT_CHECK_FAILED):
        return code
    if code == EXIT_INTERRUPTED:
        raise Interrupted()
    if code in (EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERNAL):
        warn(f"{what} exited {code}; see its message above; stopping the run")
        return code
    warn(f"{what} exited {code} (crashed?); stopping the run")
    return EXIT_INTERNAL
