"""The compare self-test's probe: how much slower the planted ``call()`` makes each benchmark.

Run by path in asv's environment (the interpreter asv benchmarks with), with the clone
being measured first on ``sys.path``::

    ENV_PYTHON benchtools/probe.py '{"root": CLONE, "iterations": null, "target": 1.5,
                                     "calibrate_on": BENCHMARK, "regexes": []}'

It prints one JSON line, ``{"iterations", "calibration": {k: ratio}, "expected": {name:
ratio or null}}``: for each benchmark, how much slower the plant makes it. 1.0 exactly:
its measured code never completes a ``CircuitBreaker.call`` (the plant runs only on that
path), or it measures memory (the plant allocates nothing); a ratio: a ``time_``
benchmark's body timed with and without the plant, alternately, in this process; null: a
``track_``/``mem_``/``peakmem_`` benchmark that does go through the plant (magnitude
unknown), or a benchmark that failed here. With ``"iterations": null`` the loop is first
calibrated so that the calibration benchmark is ``target`` times slower.

Standard library only, and no import of this package: asv's environment has neither asv
nor this package, only the clone's ``pganalytics_core`` and ``benchmarks``. The planted
source comes from ``plant.py`` beside this file, loaded by its path.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import importlib.util
import inspect
import itertools
import json
import pkgutil
import re
import statistics
import sys
import textwrap
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

KINDS = ("time_", "track_", "mem_", "peakmem_")

#: A benchmark: its class, its method's name, one combination of its parameters.
Case = tuple[type, str, tuple[Any, ...]]


def load_plant() -> ModuleType:
    """``plant.py`` beside this file, loaded by path (this package is not importable)."""
    spec = importlib.util.spec_from_file_location(
        "_selftest_plant", Path(__file__).with_name("plant.py")
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {Path(__file__).with_name('plant.py')}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Probe:
    """The breaker module of the clone, its original ``call``, and what was measured."""

    def __init__(self, breaker: ModuleType, plant: Callable[[str, int], str]) -> None:
        self.breaker = breaker
        self.plant = plant
        self.source = Path(str(breaker.__file__)).read_text()
        self.original: Callable[..., Any] = breaker.CircuitBreaker.call
        self.caches: dict[type, tuple[Any, int]] = {}  # setup_cache value, calls it made
        self.count = 0

    def planted_call(self, k: int) -> Callable[..., Any]:
        """The planted ``call``, compiled in breaker's own namespace (the same globals)."""
        text = self.plant(self.source, k)
        cls = next(
            n
            for n in ast.parse(text).body
            if isinstance(n, ast.ClassDef) and n.name == "CircuitBreaker"
        )
        fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "call")
        segment = ast.get_source_segment(text, fn, padded=True) or ""
        code = compile(
            textwrap.dedent(segment),
            str(self.breaker.__file__),
            "exec",
            dont_inherit=True,
            flags=__future__.annotations.compiler_flag,
        )
        namespace: dict[str, Any] = {}
        exec(code, vars(self.breaker), namespace)
        planted: Callable[..., Any] = namespace["call"]
        return planted

    def _use(self, call: Callable[..., Any]) -> None:
        self.breaker.CircuitBreaker.call = call

    def counting(self) -> Callable[..., Any]:
        """``call`` that counts the calls that complete (the plant's path)."""
        original = self.original

        def call(breaker_self: Any, fn: Callable[..., Any], /, *a: Any, **kw: Any) -> Any:
            result = original(breaker_self, fn, *a, **kw)
            self.count += 1
            return result

        return call

    def prepared(self, cls: type, combo: tuple[Any, ...], call: Callable[..., Any]) -> Any:
        """An instance set up as asv would (setup_cache's value first), with ``call`` in place."""
        self._use(call)
        args: tuple[Any, ...] = combo
        if hasattr(cls, "setup_cache"):
            if cls not in self.caches:
                before = self.count
                self._use(self.counting())
                self.caches[cls] = (cls().setup_cache(), self.count - before)
                self._use(call)
            args = (self.caches[cls][0], *combo)
        obj = cls()
        if hasattr(obj, "setup"):
            obj.setup(*args)
        return obj, args

    def finish(self, obj: Any, args: tuple[Any, ...]) -> None:
        self._use(self.original)
        if hasattr(obj, "teardown"):
            obj.teardown(*args)

    def completed_calls(self, case: Case) -> int:
        """How many ``call()``s complete in one run of the benchmark (and its cache)."""
        cls, meth, combo = case
        before = self.count
        obj, args = self.prepared(cls, combo, self.counting())
        try:
            getattr(obj, meth)(*args)
        finally:
            self.finish(obj, args)
        return self.count - before + (self.caches[cls][1] if cls in self.caches else 0)

    def ratio(self, case: Case, call: Callable[..., Any], pairs: int = 25) -> float:
        """Median ratio planted/original of the body, timed alternately in this process."""
        cls, meth, combo = case
        a, a_args = self.prepared(cls, combo, self.original)
        b, b_args = self.prepared(cls, combo, call)
        fa, fb = getattr(a, meth), getattr(b, meth)
        ta = timeit.Timer(lambda: fa(*a_args))
        tb = timeit.Timer(lambda: fb(*b_args))
        self._use(self.original)
        number = max(1, ta.autorange()[0] // 10)  # ~20 ms per timing
        out = []
        for _ in range(pairs):
            self._use(self.original)
            x = ta.timeit(number)
            self._use(call)
            out.append(tb.timeit(number) / x)
        self.finish(a, a_args)
        self.finish(b, b_args)
        return statistics.median(out)

    def calibrate(self, case: Case, target: float) -> tuple[int, dict[int, float]]:
        """Loop iterations that make ``case`` about ``target`` times slower, and the tries.

        r(k) is close to linear in k: two points, aim, then refine around the aim.
        """
        measured = {k: self.ratio(case, self.planted_call(k)) for k in (1, 16)}
        slope = (measured[16] - measured[1]) / 15
        k = max(1, round(1 + (target - measured[1]) / slope)) if slope > 0 else 16
        for _ in range(4):
            if k not in measured:
                measured[k] = self.ratio(case, self.planted_call(k))
            nxt = max(1, k + (1 if measured[k] < target else -1))
            if nxt not in measured:
                measured[nxt] = self.ratio(case, self.planted_call(nxt))
            k = min(measured, key=lambda i: abs(measured[i] - target))
            if abs(measured[k] - target) < 0.04:
                break
        return k, measured

    def expected(self, case: Case, slow: Callable[..., Any]) -> float | None:
        """How much slower the plant makes one benchmark (see the module docstring)."""
        meth = case[1]
        try:
            if meth.startswith(("mem_", "peakmem_")) or not self.completed_calls(case):
                return 1.0  # a busy loop allocates nothing
            if meth.startswith("time_"):
                return self.ratio(case, slow, pairs=15)
            return None
        except NotImplementedError:  # n/a in this commit: asv shows n/a on both sides
            return 1.0
        except Exception:  # broken here: the comparison reports it
            return None


def benchmarks() -> Iterator[tuple[str, Case]]:
    """Every benchmark of the clone's suite, named as asv names it, with its case."""
    import benchmarks as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"benchmarks.{info.name}")
        for cname, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != mod.__name__:
                continue
            params = getattr(cls, "params", [])
            if params and not isinstance(params[0], list | tuple):
                params = [params]
            combos = list(itertools.product(*params)) if params else [()]
            for meth in sorted(m for m in vars(cls) if m.startswith(KINDS)):
                for combo in combos:
                    name = f"{info.name}.{cname}.{meth}"
                    if combo:
                        name += "(" + ", ".join(repr(p) for p in combo) + ")"
                    yield name, (cls, meth, tuple(combo))


def main(argv: list[str]) -> int:
    """Probe the clone ``argv[0]`` describes; print the outcome as one JSON line."""
    args = json.loads(argv[0])
    sys.path.insert(0, args["root"])
    import pganalytics_core.breaker as breaker

    probe = Probe(breaker, load_plant().plant)
    found = dict(benchmarks())
    if args["calibrate_on"] not in found:
        print(f"no benchmark {args['calibrate_on']} to calibrate on", file=sys.stderr)
        return 2
    target = found[args["calibrate_on"]]
    k: int | None = args["iterations"]
    measured: dict[int, float] = {}
    if k is None:
        k, measured = probe.calibrate(target, args["target"])
    slow = probe.planted_call(k)
    expected: dict[str, float | None] = {
        name: probe.expected(case, slow)
        for name, case in found.items()
        if not args["regexes"] or any(re.search(r, name) for r in args["regexes"])
    }
    expected[args["calibrate_on"]] = probe.ratio(target, slow, pairs=41)
    print(json.dumps({"iterations": k, "calibration": measured, "expected": expected}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
