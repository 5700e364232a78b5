"""What one operation of the instruction-count table runs, function by function.

Run by path in asv's environment (the interpreter asv benchmarks with), with the package
being measured and the benchmark suite on the path it is given::

    ENV_PYTHON benchtools/callprofile.py '{"paths": [OVERLAY, SUITE_ROOT],
                                           "operations": ["breaker_reset", ...]}'
    ENV_PYTHON benchtools/callprofile.py '{"paths": [...], "mirrors": true}'

The first prints one JSON line: for each operation, ``{"n": n, "functions": {function:
[calls, bytecodes, own_ns]}}`` per call of its body. ``function`` is
``path/inside/its/root.py:Qualified.name`` for Python code (the path relative to the
``sys.path`` entry it was imported from, so two commits compare), or the name of a
builtin (``time.monotonic``, ``_thread.lock.acquire``), never an address.

* ``calls``: how many times the function was called (``cProfile``);
* ``bytecodes``: how many bytecode instructions ran in the function's own frames
  (``sys.settrace`` with opcode events); this sees work that calls nothing, a loop;
* ``own_ns``: the function's own time under ``cProfile``, in ns (for a reader only:
  the profiler's overhead is in it, and it varies from run to run).

The first two are exact: each is measured like the instruction-count harness measures,
as the difference of a segment of ``2n`` calls and one of ``n`` calls after a warm-up,
divided by ``n``, with the garbage collector off (the caller fixes ``PYTHONHASHSEED``),
so start-up, set-up and the profiler's own calls cancel; the same commit twice gives the
same numbers. The second form prints ``{operation: [benchmark, ...]}``: the wall-clock
benchmarks each operation mirrors (its ``mirrors``).

Standard library only, no import of this package: asv's environment has only the
measured ``pganalytics_core`` and the suite. Built on ``cProfile`` (calls, time) and
``sys.settrace`` (bytecodes): nothing else counts bytecodes per function on CPython 3.11.
"""

from __future__ import annotations

import cProfile
import gc
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import repeat
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

Body = Callable[[], object]
#: function -> (calls, bytecodes, own ns) per call of the body.
Costs = dict[str, tuple[float, float, float]]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_BUILTIN = re.compile(r"<built-in (?:method|function) ([^ >]+)(?: of ([^>]+))?>")
_METHOD = re.compile(r"<method '([^']+)' of '([^']+)' objects>")


class Roots:
    """Names code by its file relative to the ``sys.path`` entry it came from."""

    def __init__(self, paths: Sequence[str]) -> None:
        entries = {str(Path(p).resolve()) for p in paths if p and Path(p).is_dir()}
        self.entries = sorted(entries, key=len, reverse=True)
        self._seen: dict[str, str] = {}

    def file(self, filename: str) -> str:
        """``filename`` relative to the longest ``sys.path`` entry holding it."""
        name = self._seen.get(filename)
        if name is None:
            resolved = str(Path(filename).resolve()) if filename.startswith("/") else filename
            name = next(
                (resolved[len(e) + 1 :] for e in self.entries if resolved.startswith(e + "/")),
                resolved,
            )
            self._seen[filename] = name
        return name

    def code(self, code: CodeType) -> str:
        """``file.py:Qualified.name`` of a code object."""
        return f"{self.file(code.co_filename)}:{code.co_qualname}"


def builtin_name(description: str) -> str:
    """A builtin as ``cProfile`` describes it, without addresses: ``module.name``."""
    text = _ADDRESS.sub("", description)
    method = _METHOD.fullmatch(text)
    if method:
        return f"{method[2]}.{method[1]}"
    builtin = _BUILTIN.fullmatch(text)
    if builtin:
        owner = builtin[2]
        if owner:  # "<built-in method acquire of _thread.lock object>"
            return f"{owner.removesuffix(' object')}.{builtin[1]}"
        return builtin[1]
    return text


def _segment_calls(body: Body, k: int, roots: Roots) -> dict[str, tuple[int, float]]:
    """(calls, own seconds) per function over ``k`` calls of ``body``."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in repeat(None, k):
        body()
    profiler.disable()
    out: dict[str, tuple[int, float]] = {}
    for entry in profiler.getstats():
        code = entry.code
        name = roots.code(code) if isinstance(code, CodeType) else builtin_name(str(code))
        calls, seconds = out.get(name, (0, 0.0))
        out[name] = (calls + entry.callcount, seconds + entry.inlinetime)
    return out


def _segment_bytecodes(body: Body, k: int, roots: Roots) -> Counter[str]:
    """Bytecodes executed per function (its own frames) over ``k`` calls of ``body``."""
    counts: Counter[CodeType] = Counter()

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            counts[frame.f_code] += 1
        return local

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        return local

    previous = sys.gettrace()  # a debugger's or coverage's: put back afterwards
    sys.settrace(on_call)
    try:
        for _ in repeat(None, k):
            body()
    finally:
        sys.settrace(previous)
    named: Counter[str] = Counter()
    for code, n in counts.items():
        named[roots.code(code)] += n
    return named


def costs(body: Body, n: int, warmup: int, roots: Roots) -> Costs:
    """Calls, bytecodes and own time per call of ``body`` (``2n`` calls minus ``n`` calls)."""
    for _ in repeat(None, warmup):
        body()
    gc.disable()
    try:
        calls_n = _segment_calls(body, n, roots)
        calls_2n = _segment_calls(body, 2 * n, roots)
        codes_n = _segment_bytecodes(body, n, roots)
        codes_2n = _segment_bytecodes(body, 2 * n, roots)
    finally:
        gc.enable()
    out: Costs = {}
    for name in sorted({*calls_n, *calls_2n, *codes_n, *codes_2n}):
        calls = (calls_2n.get(name, (0, 0.0))[0] - calls_n.get(name, (0, 0.0))[0]) / n
        codes = (codes_2n[name] - codes_n[name]) / n
        own_ns = calls_2n.get(name, (0, 0.0))[1] / (2 * n) * 1e9
        if calls or codes:
            out[name] = (calls, codes, round(own_ns, 1))  # (exact: count / n)
    return out


def main(argv: list[str]) -> int:
    """Print the JSON line the request asks for; 2 on a bad request."""
    try:
        request = json.loads(argv[0]) if len(argv) == 1 else None
        paths = [str(p) for p in request["paths"]] if isinstance(request, dict) else None
    except (ValueError, KeyError, TypeError):
        paths = None
    if paths is None or not isinstance(request, dict):
        print('usage: callprofile.py \'{"paths": [...], "operations": [...]}\'', file=sys.stderr)
        return 2
    # An editable install's import hook would win over sys.path: drop it, put ours first.
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if not type(finder).__module__.startswith("__editable__")
    ]
    sys.path[:0] = paths
    from benchmarks.instructions_operations import OPERATIONS

    if request.get("mirrors"):
        mirrors = {name: list(getattr(op, "mirrors", ())) for name, op in OPERATIONS.items()}
        print(json.dumps(mirrors))
        return 0
    roots = Roots(sys.path)
    out: dict[str, object] = {}
    for name in request.get("operations", []):
        op = OPERATIONS.get(name)
        if op is None:
            out[name] = {"error": "no such operation at this commit"}
            continue
        try:
            body = op.build()
            table = costs(body, op.iterations, op.warmup, roots)
        except NotImplementedError as exc:
            out[name] = {"error": f"n/a: {exc}"}
            continue
        except Exception as exc:  # one operation's failure is its own
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[name] = {"n": op.iterations, "functions": {k: list(v) for k, v in table.items()}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
