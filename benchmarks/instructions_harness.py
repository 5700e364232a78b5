"""Count the instructions CPython executes for one operation, under valgrind's cachegrind.

Wall-clock time on a shared 2-core machine cannot see a 5 % change; the number of machine
instructions the interpreter executes for an operation can, and it is the same in every
run. ``bench_instructions.py`` turns these counts into asv ``track_`` benchmarks.

The operations themselves (what one call does, how it is set up) are the table of
``instructions_operations.py``. Two halves live here:

* the **driver**, :func:`count_instructions`, runs outside valgrind (in asv's
  ``setup_cache`` or a test). It starts one valgrind process per core, each measuring its
  share of the operations, and turns the counts those processes leave behind into
  instructions per operation.
* the **harness**, :func:`main`, runs *under* valgrind
  (``valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=DIR/cg.%p``). It
  imports everything once, then for each operation ``os.fork()``s a worker that builds
  the operation (its ``setup``), and measures it.

How a worker measures (cachegrind counts the instructions of each process from the
valgrind start, and writes them to ``cg.<pid>`` when that process exits; a forked child
inherits its parent's count so far):

1. It runs the operation in three segments of ``w`` (warm-up), ``n`` and ``2n`` calls
   (``for _ in repeat(None, k): body()``), and right before each segment and after the
   last one it forks a *marker* child that exits at once (``os._exit``). A marker's count
   is the worker's count at that instant plus a constant (the child's return from
   ``fork`` and its exit).
2. The counts of the markers ``m0 < m1 < m2 < m3`` give the segments' costs ``m1 - m0``,
   ``m2 - m1``, ``m3 - m2``. Each segment also pays a fixed overhead (the parent's side of
   the marker fork, ``waitpid``, the loop set-up); the first segment absorbs what only
   the first calls pay (CPython 3.11 specializes bytecode, caches fill). The count
   per operation is ``((m3 - m2) - (m2 - m1)) / n``: the fixed overheads, interpreter
   start-up, imports and setup all cancel.

What makes the counts repeatable (measured: two runs of the whole table agree to the
instruction): a fixed ``PYTHONHASHSEED``, a small fixed environment, no address-space
randomization (``setarch -R``) and no changing directory on ``sys.path`` (``-P``), since
CPython's method cache and some hashes follow object addresses; the garbage collector
disabled; every operation measured in a fresh fork, and the parent forking the same way
for every operation of its share of the table whether it was asked for or not (so a
subset gives the counts of a full run); no threads and no I/O in a measured body; breaker
clocks that cannot reach a state change during a run. What the per-operation count
includes: one iteration of the loop and one Python call of the body; the floor
``floor_empty_call`` is exactly that, so subtract it to get the operation alone.

Written here rather than taken from a library: pyperf and asv measure time; the
valgrind-based tools (CodSpeed's pytest plugin, iai-callgrind for Rust) bring their own
runner or a C extension to start and stop counting, while fork markers need neither.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from .instructions_operations import OPERATIONS, Body, Operation

#: The meaning of a count: bump it when a change to the method (the loop, the markers,
#: the environment) shifts every count, so asv starts new graphs instead of drawing a step.
METHOD_VERSION = "1"

HASH_SEED = "0"
VALGRIND_HINT = (
    "instruction counts need valgrind, which is not installed "
    "(Debian/Ubuntu: apt-get install valgrind)"
)


# --------------------------------------------------------------------------- the harness
# Runs under valgrind; see the module docstring.


def _summary(out_dir: Path, pid: int) -> int:
    """The instruction count cachegrind wrote for ``pid`` (its ``summary:`` line)."""
    path = out_dir / f"cg.{pid}"
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read()
    path.unlink()
    for line in reversed(tail.splitlines()):
        if line.startswith(b"summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary line in {path}")


def _marked_segments(body: Body, warmup: int, n: int) -> list[int]:
    """Run the segments (``warmup``, ``n`` and ``2n`` calls) between marker forks; return
    the markers' pids in order.

    Every segment runs the same bytecode (only the loop count differs), so the fixed
    cost of a segment is the same in each and cancels in the difference.
    """
    fork, exit_, waitpid = os.fork, os._exit, os.waitpid
    sizes = [warmup, n, 2 * n, 0]
    pids = [0] * len(sizes)
    for k in range(len(sizes)):
        pid = fork()
        if pid == 0:
            exit_(0)
        waitpid(pid, 0)
        pids[k] = pid
        for _ in repeat(None, sizes[k]):
            body()
    return pids


def _worker(op: Operation, out_dir: Path, selection: Path, results: Path) -> None:
    """In the forked worker: measure ``op`` if it was asked for, append the result."""
    if op.name not in selection.read_text().split():
        return
    result: dict[str, object]
    try:
        try:
            body = op.build()
        except NotImplementedError as exc:
            result = {"name": op.name, "unavailable": str(exc) or "not in this commit"}
        else:
            pids = _marked_segments(body, op.warmup, op.iterations)
            marks = [_summary(out_dir, pid) for pid in pids]
            result = {"name": op.name, "iterations": op.iterations, "marks": marks}
    except BaseException:
        result = {"name": op.name, "error": traceback.format_exc(limit=8)}
    with results.open("a") as f:
        f.write(json.dumps(result) + "\n")


#: Imported once by the parent, so that no worker pays for (or counts) an import.
_PRELOAD = (
    "httpx",
    "pganalytics_core",
    "pganalytics_core.cache",
    "pganalytics_core.client",
    "pganalytics_core.errors",
    "pganalytics_core.models",
    "pganalytics_core.retry",
    "pganalytics_core.load.recorder",
    "pganalytics_core.load.stats",
)


def _preload() -> None:
    for module in _PRELOAD:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # an older commit: the operations needing it report n/a


def _harness(group: int, groups: int, out_dir: Path, selection: Path, results: Path) -> None:
    """Fork a worker for every operation of the group, one after the other.

    The parent does exactly the same for every operation, measured or not (the worker
    reads the selection), so an operation's count does not depend on which others were
    asked for. It can depend slightly on the parent's heap when forking, which start-up
    and the operation's place in the table decide: so operations are only ever appended
    to the table.
    """
    _preload()
    gc.collect()
    gc.disable()
    for op in list(OPERATIONS.values())[group::groups]:
        pid = os.fork()
        if pid == 0:
            try:
                _worker(op, out_dir, selection, results)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        os.unlink(f"{out_dir}/cg.{pid}")


def _load_extra(path: str) -> None:
    """Import a file of extra ``@operation``s (tests use it)."""
    spec = importlib.util.spec_from_file_location("_instruction_extra_operations", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def main(argv: Sequence[str] | None = None) -> int:
    """The harness entry point (run under valgrind by :func:`count_instructions`)."""
    parser = argparse.ArgumentParser(description="the instruction-count harness")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--selection", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--group", type=int, required=True)
    parser.add_argument("--groups", type=int, required=True)
    parser.add_argument("--extra", action="append", default=[])
    args = parser.parse_args(argv)
    for path in args.extra:
        _load_extra(path)
    _harness(args.group, args.groups, args.out_dir, args.selection, args.results)
    return 0


# --------------------------------------------------------------------------- the driver


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """What one measurement found.

    Attributes:
        instructions: instructions per operation, by operation name.
        unavailable: operations whose API is missing in the measured commit, and why.
        failed: operations that raised (or whose worker died), with the error.
        seconds: the wall time of the whole measurement.
    """

    instructions: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def valgrind_path() -> str | None:
    """The valgrind executable on PATH, or None."""
    return shutil.which("valgrind")


def default_jobs() -> int:
    """One valgrind process per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def _bootstrap_code(heap_padding: int = 0) -> str:
    """``python -c`` code importing this module as asv does (only the benchmark package
    is added to the import system, so the installed pganalytics_core is the one measured,
    not the checkout's sources) and running :func:`main`; ``heap_padding`` first
    allocates that many rounds of small objects, to measure under another heap layout."""
    package_dir = Path(__file__).resolve().parent
    package = __name__.rpartition(".")[0] or package_dir.name
    padding = (
        f"_padding = [bytes(n) for n in range(0, 480, 8) for _ in range({heap_padding})]\n"
        if heap_padding
        else ""
    )
    return padding + (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location({package!r}, "
        f"{str(package_dir / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(package_dir)!r}])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        f"sys.modules[{package!r}] = module\n"
        "spec.loader.exec_module(module)\n"
        f"from {package}.instructions_harness import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )


@functools.cache
def _no_aslr() -> list[str]:
    """Run without address-space randomization, when ``setarch`` can: CPython's method
    cache and some hashes (context variables) follow object addresses. A container whose
    seccomp profile refuses the ``personality`` call gets the counts with randomization
    (slightly less repeatable) rather than none."""
    setarch = shutil.which("setarch")
    if setarch is None:
        return []
    command = [setarch, os.uname().machine, "--addr-no-randomize"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return command if probe.returncode == 0 else []


#: Set by ``make compare`` (benchtools/compare/asvglue.py): the directory holding the
#: commit's package, first on the benchmark process's ``sys.path`` (asv's runner drops
#: ``ASV_PYTHONPATH`` once used). The measuring process must count that package, not
#: whatever asv's environment has installed.
PACKAGE_OVERLAY_VARIABLE = "PGANALYTICS_PACKAGE_OVERLAY"


def _environment() -> dict[str, str]:
    """A small fixed environment: the counts must not depend on the caller's."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": HASH_SEED,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    overlay = os.environ.get(PACKAGE_OVERLAY_VARIABLE)
    if overlay:
        env["PYTHONPATH"] = overlay
    return env


def count_instructions(
    names: Iterable[str] | None = None,
    *,
    jobs: int | None = None,
    python: str = sys.executable,
    extra: Sequence[Path] = (),
    heap_padding: int = 0,
    timeout_s: float = 600.0,
) -> Counts:
    """Measure instructions per operation under valgrind.

    Args:
        names: the operations (default: all of :data:`OPERATIONS`). A subset gives the
            same counts as the whole table.
        jobs: valgrind processes run side by side (default: one per core); operation
            ``i`` of the table is measured by process ``i % jobs``. Keep it fixed on a
            machine: the counts depend on it (memory layout, see the docs).
        python: the interpreter to run (the asv environment's, by default this one).
        extra: files of extra ``@operation``s to import in the harness (for tests).
        heap_padding: allocate ``60 * heap_padding`` small objects before any import:
            the same code under another heap layout (to measure how much a count
            depends on where objects land; see docs/performance.md, "Layout").
        timeout_s: the longest the whole measurement may take, in seconds.

    Returns:
        The counts; operations missing in this commit are in ``unavailable``.

    Raises:
        NotImplementedError: valgrind is not installed (:data:`VALGRIND_HINT`).
        RuntimeError: a valgrind process failed or timed out (its output's tail is in
            the message).
    """
    valgrind = valgrind_path()
    if valgrind is None:
        raise NotImplementedError(VALGRIND_HINT)
    wanted = list(OPERATIONS) if names is None else list(names)
    groups = jobs or default_jobs()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pga-instructions-") as tmp:
        out_dir = Path(tmp)
        selection = out_dir / "selection.txt"
        selection.write_text("\n".join(wanted) + "\n")
        procs = [
            _start(valgrind, python, out_dir, selection, group, groups, extra, heap_padding)
            for group in range(groups)
        ]
        try:
            for proc, log in procs:
                remaining = started + timeout_s - time.perf_counter()
                code = proc.wait(timeout=max(0.0, remaining))
                if code != 0:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"valgrind harness exited with {code}:\n{tail}")
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"instruction counts took longer than {timeout_s} s") from None
        finally:
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        counts = Counts()
        for path in sorted(out_dir.glob("results.*.jsonl")):
            for line in path.read_text().splitlines():
                _collect(json.loads(line), counts)
    for name in wanted:
        if name not in counts.instructions and name not in counts.unavailable:
            counts.failed.setdefault(name, "no result: unknown operation, or its worker died")
    return Counts(
        instructions=counts.instructions,
        unavailable=counts.unavailable,
        failed=counts.failed,
        seconds=time.perf_counter() - started,
    )


def _start(
    valgrind: str,
    python: str,
    out_dir: Path,
    selection: Path,
    group: int,
    groups: int,
    extra: Sequence[Path],
    heap_padding: int,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the valgrind process of one group; its output goes to a log file."""
    log = out_dir / f"valgrind.{group}.log"
    cmd = [
        *_no_aslr(),
        valgrind,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--branch-sim=no",
        f"--cachegrind-out-file={out_dir}/cg.%p",
        python,
        "-s",  # no user site-packages
        "-P",  # no working directory on sys.path: its files change while we measure
        "-c",
        _bootstrap_code(heap_padding),
        *("--out-dir", str(out_dir), "--selection", str(selection)),
        *("--results", str(out_dir / f"results.{group}.jsonl")),
        *("--group", str(group), "--groups", str(groups)),
        *(arg for path in extra for arg in ("--extra", str(path))),
    ]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=out_dir,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _collect(result: dict[str, Any], counts: Counts) -> None:
    name = result["name"]
    if "unavailable" in result:
        counts.unavailable[name] = result["unavailable"]
    elif "error" in result:
        counts.failed[name] = result["error"]
    else:
        _, m1, m2, m3 = result["marks"]
        per_operation = ((m3 - m2) - (m2 - m1)) / result["iterations"]
        counts.instructions[name] = round(per_operation, 1)
