"""Compare the fake ML service's throughput on loopback between two revisions, same run.

    flock /tmp/pga-timing.lock .venv/bin/python tools/fake_throughput.py \
        [--baseline main] [--candidate REV] [--rounds 5] [--seconds 2] [--threads 4]

The baseline's ``pganalytics_core`` is extracted with ``git archive`` into a temporary
directory; so is the candidate's when ``--candidate`` names a revision, else the
candidate is this checkout's working tree (do not edit it during a run). Every measurement runs in a
fresh interpreter that imports one of the two, and the two alternate
(baseline, candidate, baseline, ...) so that both see the same machine load. Each
measurement starts ``FakeMLService()`` and drives it with the same load:

* ``httpx``: ``--threads`` threads sharing one ``httpx.Client`` (keep-alive), each
  posting predictions (100 distinct query hashes) in a closed loop for ``--seconds``;
  the service runs in the same process, as in the test suite and the asv benchmarks.
* ``pipelined``: one raw socket sending batches of 32 pipelined keep-alive ``GET
  /health`` and prediction requests: the client costs almost nothing, so this reads the
  server's own cost per request.

Prints requests per second per run, the medians, the process's CPU time per request
(less sensitive to other load on the machine than wall-clock rates), and candidate /
baseline ratios (the median of the per-round ratios). Exit status 0; the numbers are
for a reader to judge.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: argv = [root, load, seconds, threads]; prints one JSON line.
# An editable install's import hook would win over PYTHONPATH: drop it, put root first.
_DRIVER = r"""
import json, os, socket, sys, threading, time
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
sys.path.insert(0, sys.argv[1])
import httpx
import pganalytics_core.testing as testing
from pganalytics_core.testing import FakeMLService

load, seconds, threads = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
PREDICT = "/api/predict/query-execution"

def cpu_since(c0):
    c1 = os.times()
    return (c1.user - c0.user) + (c1.system - c0.system)

def run_httpx(url):
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    counts = [0] * threads
    with httpx.Client(base_url=url, limits=limits) as client:
        for i in range(threads):  # open the connections, warm the caches
            client.post(PREDICT, json={"query_hash": i + 1}).raise_for_status()
        start = threading.Barrier(threads + 1)
        deadline = [0.0]

        def work(k):
            start.wait()
            n = 0
            while time.perf_counter() < deadline[0]:
                r = client.post(PREDICT, json={"query_hash": 1 + (n * threads + k) % 100})
                if r.status_code != 200 or not r.content:
                    raise RuntimeError(f"bad answer {r.status_code}")
                n += 1
            counts[k] = n

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        c0 = os.times()
        t0 = time.perf_counter()
        deadline[0] = t0 + seconds
        start.wait()
        for w in workers:
            w.join()
        return sum(counts), time.perf_counter() - t0, cpu_since(c0)

def run_pipelined(port):
    body = b'{"query_hash": 4001}'
    batch = (
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    ) * 16
    with socket.create_connection(("127.0.0.1", port)) as sock:
        def one_batch():
            sock.sendall(batch)
            seen = 0
            data = b""
            while seen < 32:
                data += sock.recv(1 << 16)
                seen = data.count(b"HTTP/1.1 200 OK")
                if seen == 32 and not data.endswith(b"}\n"):
                    seen = 31  # the last body is not complete yet
        one_batch()
        c0 = os.times()
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            one_batch()
            n += 32
        return n, time.perf_counter() - t0, cpu_since(c0)

with FakeMLService() as service:
    n, wall_s, cpu_s = (
        run_httpx(service.url) if load == "httpx" else run_pipelined(service.port)
    )
print(json.dumps({"rate": n / wall_s, "cpu_us": cpu_s / n * 1e6, "module": testing.__file__}))
"""


def _extract(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "pganalytics_core"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir()
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _measure(root: Path, load: str, seconds: float, threads: int) -> tuple[float, float]:
    """One run: (requests per second, CPU µs of the process per request)."""
    out = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(root), load, str(seconds), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    module = Path(result["module"]).resolve()
    if not module.is_relative_to(root.resolve()):
        raise RuntimeError(f"measured {module}, not the code under {root}")
    return float(result["rate"]), float(result["cpu_us"])


def main() -> int:
    """Run the comparison; print the table. Returns the exit status (0)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument(
        "--candidate", default=None, help="git revision to measure (the working tree)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per run (2)")
    parser.add_argument("--threads", type=int, default=4, help="httpx client threads (4)")
    parser.add_argument(
        "--load", choices=("httpx", "pipelined", "both"), default="both", help="(both)"
    )
    args = parser.parse_args()
    loads = ["httpx", "pipelined"] if args.load == "both" else [args.load]
    with tempfile.TemporaryDirectory(prefix="fake-throughput-") as tmp:
        base, cand = Path(tmp, "baseline"), Path(tmp, "candidate")
        sides = {
            "baseline": _extract(args.baseline, base),
            "candidate": ROOT if args.candidate is None else _extract(args.candidate, cand),
        }
        for load in loads:
            rates: dict[str, list[float]] = {"baseline": [], "candidate": []}
            cpus: dict[str, list[float]] = {"baseline": [], "candidate": []}
            for round_ in range(args.rounds):
                # Alternate which side goes first, so neither always runs on a warmer box.
                order = ["baseline", "candidate"] if round_ % 2 == 0 else ["candidate", "baseline"]
                for side in order:
                    rate, cpu_us = _measure(sides[side], load, args.seconds, args.threads)
                    rates[side].append(rate)
                    cpus[side].append(cpu_us)
            print(f"load {load!r} ({args.rounds} rounds x {args.seconds:g} s):")
            for side, values in rates.items():
                runs = " ".join(f"{v:,.0f}" for v in values)
                print(
                    f"  {side:9} median {statistics.median(values):8,.0f} req/s, "
                    f"{statistics.median(cpus[side]):6.1f} CPU us/request   [{runs}]"
                )
            for name, series in (("req/s", rates), ("CPU us/request", cpus)):
                ratios = [
                    c / b for b, c in zip(series["baseline"], series["candidate"], strict=True)
                ]
                print(
                    f"  candidate / baseline, {name}: median {statistics.median(ratios):.3f} "
                    f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
