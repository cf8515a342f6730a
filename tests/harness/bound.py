"""Helpers for the Python tests' background services (fakes, s3rver, http servers).

die_with_parent: a subprocess.Popen preexec_fn; the child gets SIGTERM when the test process
dies, even by the SIGKILL of a ctest timeout, when no finally or tearDown runs.
"""
import ctypes
import signal

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    # Tied to the thread that forks: the tests start their services from the main thread.
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
