"""Fixtures of the integration tests: a fake ML service on loopback, and a leak check.

Every test here runs real HTTP on 127.0.0.1. The autouse ``no_leaks`` fixture fails a test
that leaves a thread (a server or connection thread, a client thread) or a file descriptor
(a socket) behind.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import httpx
import pytest

from pganalytics_core.testing import FakeMLService

# Building an httpx.Client loads the CA bundle (~0.1-0.3 s on a busy box); every test
# speaks plain HTTP on loopback, so all clients share one context built once.
_SSL_CONTEXT = ssl.create_default_context()

#: ``make_client(base_url, **httpx_client_kwargs)``: a client closed after the test.
ClientFactory = Callable[..., httpx.Client]


@pytest.fixture(autouse=True)
def no_leaks(leak_check: None) -> None:
    """Every test here runs under the shared leak check (tests/conftest.py)."""


@pytest.fixture
def service() -> Iterator[FakeMLService]:
    """A running fake ML service with seed 0, stopped after the test."""
    with FakeMLService(seed=0) as svc:
        yield svc


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """A factory of httpx clients (5 s timeout unless given), all closed after the test."""
    clients: list[httpx.Client] = []

    def factory(base_url: str = "", **kwargs: object) -> httpx.Client:
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("verify", _SSL_CONTEXT)
        client = httpx.Client(base_url=base_url, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(service: FakeMLService, make_client: ClientFactory) -> httpx.Client:
    """An httpx client on ``service``, with a 5 s timeout."""
    return make_client(service.url)
