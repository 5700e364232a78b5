"""One measurement of the fake ML service's throughput, for ``fake-throughput``.

Run by path in a fresh interpreter, with the extracted tree being measured first on
``sys.path``::

    python benchtools/fake_load.py ROOT {httpx,pipelined} SECONDS THREADS

It starts ``FakeMLService()`` from ``ROOT/pganalytics_core``, drives it for ``SECONDS``
and prints one JSON line: ``{"rate": requests per second, "cpu_us": CPU µs of this
process per request, "module": the file of the package measured}`` (the caller checks
that it is the code under ``ROOT``).

* ``httpx``: ``THREADS`` threads sharing one ``httpx.Client`` (keep-alive), each posting
  predictions (100 distinct query hashes) in a closed loop; the service runs in this
  process, as in the test suite and the asv benchmarks.
* ``pipelined``: one raw socket sending batches of 32 pipelined keep-alive ``GET
  /health`` and prediction requests: the client costs almost nothing, so this reads the
  server's own cost per request.

No import of this package (it may not be importable next to ``ROOT``); a fresh process
per measurement, so each side imports only its own ``pganalytics_core``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

PREDICT = "/api/predict/query-execution"
#: Requests in one pipelined batch (16 pairs of a health check and a prediction).
PIPELINE_DEPTH = 32


def cpu_since(before: os.times_result) -> float:
    """CPU seconds (user + system) this process spent since ``before``."""
    now = os.times()
    return (now.user - before.user) + (now.system - before.system)


def run_httpx(url: str, seconds: float, threads: int) -> tuple[int, float, float]:
    """(requests, wall seconds, CPU seconds) of ``threads`` httpx threads for ``seconds``."""
    import httpx

    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    counts = [0] * threads
    with httpx.Client(base_url=url, limits=limits) as client:
        for i in range(threads):  # open the connections, warm the caches
            client.post(PREDICT, json={"query_hash": i + 1}).raise_for_status()
        start = threading.Barrier(threads + 1)
        deadline = [0.0]

        def work(k: int) -> None:
            start.wait()
            n = 0
            while time.perf_counter() < deadline[0]:
                r = client.post(PREDICT, json={"query_hash": 1 + (n * threads + k) % 100})
                if r.status_code != 200 or not r.content:
                    raise RuntimeError(f"bad answer {r.status_code}")
                n += 1
            counts[k] = n

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        before = os.times()
        t0 = time.perf_counter()
        deadline[0] = t0 + seconds
        start.wait()
        for worker in workers:
            worker.join()
        return sum(counts), time.perf_counter() - t0, cpu_since(before)


def run_pipelined(port: int, seconds: float) -> tuple[int, float, float]:
    """(requests, wall seconds, CPU seconds) of pipelined batches on one socket."""
    body = b'{"query_hash": 4001}'
    pair = (
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    batch = pair * (PIPELINE_DEPTH // 2)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:

        def one_batch() -> None:
            sock.sendall(batch)
            seen = 0
            data = b""
            while seen < PIPELINE_DEPTH:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("the service closed the connection")
                data += chunk
                seen = data.count(b"HTTP/1.1 200 OK")
                if seen == PIPELINE_DEPTH and not data.endswith(b"}\n"):
                    seen -= 1  # the last body is not complete yet

        one_batch()
        before = os.times()
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            one_batch()
            n += PIPELINE_DEPTH
        return n, time.perf_counter() - t0, cpu_since(before)


def main(argv: list[str]) -> int:
    """Measure once and print the JSON line; 2 on a usage error."""
    if len(argv) != 4 or argv[1] not in ("httpx", "pipelined"):
        print("usage: fake_load.py ROOT {httpx,pipelined} SECONDS THREADS", file=sys.stderr)
        return 2
    root, load, seconds, threads = Path(argv[0]), argv[1], float(argv[2]), int(argv[3])
    # An editable install's import hook would win over sys.path: drop it, put ROOT first.
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if not type(finder).__module__.startswith("__editable__")
    ]
    sys.path.insert(0, str(root))
    import pganalytics_core.testing as testing

    with testing.FakeMLService() as service:
        n, wall_s, cpu_s = (
            run_httpx(service.url, seconds, threads)
            if load == "httpx"
            else run_pipelined(service.port, seconds)
        )
    print(json.dumps({"rate": n / wall_s, "cpu_us": cpu_s / n * 1e6, "module": testing.__file__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
