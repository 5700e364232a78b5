"""Fixtures shared by every test directory: the leak check.

``leak_check`` fails a test that leaves a thread (a server, connection or worker thread)
or a file descriptor (a socket) behind. The integration and load directories make it
autouse in their own conftest; unit tests may request it by name.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

#: How long a test's threads and sockets get to wind down after it, in seconds.
LEAK_GRACE_S = 2.0
_FD_DIR = "/proc/self/fd"


def _open_fds() -> int | None:
    try:
        return len(os.listdir(_FD_DIR))
    except OSError:  # not Linux: thread check only
        return None


@pytest.fixture
def leak_check() -> Iterator[None]:
    """Fail the test if it leaves threads or file descriptors behind."""
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()

    def leaks() -> tuple[list[str], int]:
        threads = [t.name for t in threading.enumerate() if t not in threads_before]
        fds = _open_fds()
        extra_fds = 0 if fds is None or fds_before is None else fds - fds_before
        return threads, extra_fds

    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    threads, extra_fds = leaks()
    while (threads or extra_fds > 0) and time.monotonic() < deadline:
        time.sleep(0.01)
        threads, extra_fds = leaks()
    assert not threads, f"threads left behind: {threads}"
    assert extra_fds <= 0, f"{extra_fds} file descriptor(s) left behind"
