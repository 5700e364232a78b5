"""The tools' tests (``benchtools``): every one runs under the shared leak check.

They start real processes (git, asv, valgrind, a headless browser) and real servers on
127.0.0.1 (the site's preview, a fake GitHub API, the fake ML service): ``leak_check``
(tests/conftest.py) fails a test that leaves a thread or a file descriptor behind.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_leaks(leak_check: None) -> None:
    """Every test here runs under the shared leak check."""
