"""Running child executables and stopping them on Ctrl-C."""

import contextlib
import ctypes
import os
import signal
import subprocess

from .common import (CHILD_GRACE_S, CHILD_TERM_GRACE_S, EXIT_CHECK_FAILED, EXIT_ENVIRONMENT,
                     EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, REPO_ROOT,
                     ZcbenchError, warn)


# prctl(2): PR_SET_PDEATHSIG, from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
# What a child gets when run.py dies (SIGKILL, OOM, a crash): SIGTERM, which zcbench
# handles like Ctrl-C (it stops the trial and tears its lab down); its own helpers
# carry PR_SET_PDEATHSIG=SIGKILL from harness/child_process.cc.
CHILD_PARENT_DEATH_SIGNAL = signal.SIGTERM


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def parent_death_signal(sig=CHILD_PARENT_DEATH_SIGNAL):
    """A preexec_fn: the child gets `sig` when run.py dies, so no child outlives it.

    The kernel sends it when the forking thread exits; run.py starts children from its
    main thread only. If run.py died between fork and prctl the signal never comes, so
    the child checks that its parent is still the process that forked it.
    """
    parent = os.getpid()
    libc = _libc()  # loaded before the fork: nothing to import in the child

    def arm():
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(127)  # cannot promise the cleanup: do not start the child at all
        if os.getppid() != parent:
            os._exit(128 + int(sig))
    return arm


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
    """Run an executable in run.py's process group, so a Ctrl-C reaches both at once,
    with a parent-death signal, so killing run.py (SIGKILL included) stops it too."""
    try:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout,
                                preexec_fn=parent_death_signal())
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
