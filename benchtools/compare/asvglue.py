"""Everything that touches asv: its environment, builds, discovery, runner, results.

The only module of the package that imports asv. asv has no type information, so its
objects are ``Any`` here and nowhere else: what leaves this module is
:mod:`benchtools.compare.model` data.

asv's private parts used (run with asv 0.6.6 and asv_runner 0.2.5 in asv's environment;
asv 0.6.4's runner.py is the same code and its environment.py, benchmarks.py and results.py
differ in nothing used here; ``pyproject.toml`` pins ``asv>=0.6.4,<0.7``: check this list
before widening it):

* ``Environment._path`` (:meth:`AsvSession._setup`, :func:`environment_python`): the
  environment's directory; asv 0.6 computes ``dir_name`` differently.
* the build cache layout ``<env>/asv-build-cache/<commit>/*.whl`` (:meth:`AsvSession._overlay`);
* subclasses of ``asv.runner.Spawner`` and ``asv.runner.ForkServer``
  (:func:`_spawner_classes`): ``Spawner.__init__(env, benchmark_dir)``, the attributes
  ``env``, ``benchmark_dir``, ``tmp_dir``, ``socket_name``, ``server_proc``,
  ``_server_output``, ``stdout_reader_thread`` and ``_stdout_reader``, the method
  ``create_setup_cache`` and ``runner.BENCHMARK_RUN_SCRIPT``;
* ``asv.runner.run_benchmark``'s result attributes ``result``, ``samples``, ``stderr``;
* ``asv.plugins.regressions.Regressions._save(conf, data)`` and
  ``Regressions._save_feed(conf, benchmarks, data, revisions, revision_to_hash)``
  (:func:`save_regressions`): asv's own writers of ``regressions.json`` and the feed.

Public asv used: ``Config.load``, ``util.load_json(..., js_comments=True)`` (the one reader
of ``asv.conf.json``, :func:`load_conf_json` and :func:`load_config`), ``environment``,
``Benchmarks``, ``get_repo``, ``iter_results_for_machine_and_hash``. Every name is pinned
by ``tests/benchtools/test_asv_adapter.py``, and no other module of the package imports
asv (the same test), so an asv upgrade fails there, in one place, loudly.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asv import environment, runner, util
from asv.benchmarks import Benchmarks
from asv.config import Config
from asv.repo import get_repo
from asv.results import iter_results_for_machine_and_hash

from benchtools.compare.model import (
    DEFAULT_CONFIRM_ROUNDS,
    DEFAULT_FACTOR,
    DEFAULT_INSTRUCTIONS_THRESHOLD,
    DEFAULT_ROUNDS,
    BudgetSpent,
    CompareError,
    Measurements,
    RoundResult,
    Verdict,
)
from benchtools.compare.rounds import measure

ASV = [sys.executable, "-m", "asv"]

#: asv's objects (Config, Environment, Benchmarks, Spawner, ...): untyped, this module only.
AsvObject = Any
#: One benchmark's metadata as asv's discovery gives it (a dict from JSON).
AsvBenchmark = dict[str, Any]

Log = Callable[[str], None]


def _log(msg: str) -> None:
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def result_name(key: str, combo: Sequence[str]) -> str:
    """``key(p1, p2)``: a benchmark with its parameters, as asv shows it."""
    return f"{key}({', '.join(combo)})" if combo else key


def last_line(text: str | None) -> str:
    """The last useful line of a benchmark's output (asv's own lines only as a last resort)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("asv: ")] or lines
    return useful[-1][:200] if useful else ""


@contextlib.contextmanager
def exclusive(state: Path) -> Iterator[None]:
    """One comparison at a time per checkout: they share asv's environment."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CompareError(f"another comparison is running in {state}") from None
        yield


def load_config(repo: Path, path: Path | None = None) -> Any:
    """asv's ``Config`` of ``path`` (default: ``repo/asv.conf.json``), paths against ``repo``."""
    with contextlib.chdir(repo):
        return Config.load(str(path.resolve()) if path else "asv.conf.json")


def save_regressions(
    repo: Path,
    conf: Any,
    data: Mapping[str, Any],
    benchmarks: Mapping[str, Any],
    revisions: Mapping[str, int],
    revision_to_hash: Mapping[int, str],
) -> None:
    """``regressions.json`` and ``regressions.xml`` of the site, by asv's own writers."""
    from asv.plugins.regressions import Regressions

    with contextlib.chdir(repo):
        Regressions._save(conf, data)
        Regressions._save_feed(conf, benchmarks, data["regressions"], revisions, revision_to_hash)


def load_conf_json(path: Path) -> dict[str, object]:
    """asv.conf.json (JSON with comments) as a dict."""
    conf = util.load_json(str(path), js_comments=True)
    if not isinstance(conf, dict):
        raise CompareError(f"{path} is not a JSON object")
    return {str(k): v for k, v in conf.items()}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the forkserver ends when this tool does, even when it is killed."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _benchmark_env(env: AsvObject, python: str, overlay: Path) -> dict[str, str]:
    """The environment of a benchmark process: the commit's package first on sys.path.

    asv's benchmark runner honours ``ASV_PYTHONPATH`` (and drops ``PYTHONPATH``).
    ``PGANALYTICS_PACKAGE_OVERLAY`` tells benchmarks that start interpreters of their
    own (the instruction counts' valgrind runs) where the commit's package is.
    """
    variables = dict(os.environ)
    variables.update(env.env_vars)
    variables.pop("PYTHONPATH", None)
    variables["ASV_PYTHONPATH"] = str(overlay)
    variables["PGANALYTICS_PACKAGE_OVERLAY"] = str(overlay)
    variables["PATH"] = os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])
    return variables


class OverlaySpawner(runner.Spawner):  # type: ignore[misc]  # asv is untyped
    """asv's one-process-per-benchmark launcher, running one commit's package."""

    def __init__(self, env: AsvObject, benchmark_dir: str, python: str, overlay: Path) -> None:
        super().__init__(env, benchmark_dir)
        self.python = python
        self.overlay = overlay

    def _call(self, args: list[str], timeout: float | None, cwd: str | None) -> tuple[str, int]:
        try:
            proc = subprocess.run(
                [self.python, runner.BENCHMARK_RUN_SCRIPT, *args],
                env=_benchmark_env(self.env, self.python, self.overlay),
                cwd=cwd,
                timeout=timeout,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.output if isinstance(exc.output, str) else ""
            return out, int(util.TIMEOUT_RETCODE)
        return proc.stdout, proc.returncode

    def create_setup_cache(
        self, benchmark_id: str, timeout: float, params_str: str
    ) -> tuple[str | None, str | None]:
        """Run a class's ``setup_cache`` in a new directory: (directory, None) or (None, error)."""
        cache_dir = tempfile.mkdtemp()
        args = ["setup_cache", self.benchmark_dir, benchmark_id, params_str]
        out, code = self._call(args, timeout, cache_dir)
        if code == 0:
            return cache_dir, None
        shutil.rmtree(cache_dir, ignore_errors=True)
        return None, f"{out}\nasv: setup_cache failed (exit status {code})".strip()

    def run(
        self,
        name: str,
        params_str: str,
        profile_path: str,
        result_file_name: str,
        timeout: float,
        cwd: str,
    ) -> tuple[str, int]:
        """Run one benchmark in a fresh process (asv's ``Spawner.run`` interface)."""
        args = ["run", self.benchmark_dir, name, params_str, profile_path, result_file_name]
        return self._call(args, timeout, cwd)


class OverlayForkServer(runner.ForkServer):  # type: ignore[misc]  # asv is untyped
    """asv's forkserver (suite imported once, a fork per benchmark), one commit's package."""

    def __init__(self, env: AsvObject, benchmark_dir: str, python: str, overlay: Path) -> None:
        runner.Spawner.__init__(self, env, benchmark_dir)
        self.python = python
        self.overlay = overlay
        self.tmp_dir = tempfile.mkdtemp(prefix="asv-forkserver-")
        self.socket_name = os.path.join(self.tmp_dir, "socket")
        self.server_proc = subprocess.Popen(
            [
                python,
                runner.BENCHMARK_RUN_SCRIPT,
                "run_server",
                self.benchmark_dir,
                self.socket_name,
            ],
            env=_benchmark_env(env, python, overlay),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._server_output = None
        self.stdout_reader_thread = threading.Thread(target=self._stdout_reader, daemon=True)
        self.stdout_reader_thread.start()
        deadline = time.monotonic() + 60
        while not os.path.exists(self.socket_name):
            if self.server_proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise CompareError("asv's forkserver did not start")
            time.sleep(0.02)

    # asv's ForkServer runs setup_cache through asv's environment (Spawner's method), which
    # has not got the commit's package: run it in a process of our own, as the spawner does.
    _call = OverlaySpawner._call
    create_setup_cache = OverlaySpawner.create_setup_cache

    def close(self) -> None:
        """Kill the forkserver's process group and remove its socket directory."""
        if self.server_proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server_proc.pid, signal.SIGKILL)
        self.server_proc.wait()
        self.stdout_reader_thread.join()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def asv_environment(conf: AsvObject, log: Log) -> AsvObject:
    """asv's (first) environment of asv.conf.json, created when missing.

    Call with the repository as working directory.
    """
    envs = list(environment.get_environments(conf, None, verbose=False))
    if not envs:
        raise CompareError("asv.conf.json defines no environment")
    env = envs[0]
    if len(envs) > 1:
        log(f"{len(envs)} environments in asv.conf.json; using {env.name}")
    if not env.check_presence():
        log(f"creating asv's environment {env.name} (first run only, about a minute)")
    try:
        env.create()
    except util.ProcessError as exc:
        raise CompareError(f"could not create asv's environment: {exc}") from None
    return env


def environment_python(repo: Path, install: str | None = None, log: Log | None = None) -> str:
    """The python of asv's environment for ``repo`` (created when missing).

    Args:
        repo: the repository.
        install: a commit to build and install into it (with its dependencies).
        log: where progress messages go.
    """
    with contextlib.chdir(repo):  # asv resolves asv.conf.json's paths against it
        conf = Config.load("asv.conf.json")
        env = asv_environment(conf, log or _log)
        if install is not None:
            try:
                env.install_project(conf, get_repo(conf), install)
            except util.ProcessError as exc:
                raise CompareError(f"asv could not build {install[:8]}: {exc}") from None
        return str(Path(env._path) / "bin" / "python")


def stored_measurements(repo: Path, commits: Sequence[str], regexes: Sequence[str]) -> Measurements:
    """What ``.asv/results`` already holds for ``commits`` (one round each)."""
    m = Measurements()
    with contextlib.chdir(repo):  # asv resolves asv.conf.json's paths against it
        conf = Config.load("asv.conf.json")
        subprocess.run([*ASV, "machine", "--yes"], check=True, stdout=subprocess.DEVNULL)
        machine = _machine_name(Path(conf.results_dir))
        meta = Benchmarks.load(conf)
        for commit in commits:
            found = False
            for res in iter_results_for_machine_and_hash(conf.results_dir, machine, commit):
                found = True
                for key in res.get_result_keys(meta):
                    params = res.get_result_params(key)
                    values = res.get_result_value(key, params)
                    samples = res.get_result_samples(key, params) or [None] * len(values)
                    combos = list(itertools.product(*params)) if params else [()]
                    for combo, value, sample in zip(combos, values, samples, strict=False):
                        name = result_name(key, combo)
                        if regexes and not any(re.search(r, name) for r in regexes):
                            continue
                        m.kinds[name] = str(meta[key]["type"])
                        m.units[name] = str(meta[key].get("unit") or "")
                        v = None if value is None else float(value)
                        error = last_line(res.stderr.get(key)) if v is None else ""
                        points = tuple(float(x) for x in sample or ())
                        m.add(commit, name, RoundResult(0, v, points, error))
            if not found:
                raise CompareError(
                    f"no stored results for {commit[:8]} on machine {machine!r} "
                    "(run `make bench`, `asv run`, or drop --no-run)"
                )
    return m


def _machine_name(results_dir: Path | None = None) -> str:
    """The machine name the stored results are under.

    ``make bench`` stores them under ``$ASV_MACHINE``, else this host's first name label
    (``benchtools/history.py``); plain ``asv run`` under what ``asv machine --yes``
    stored.
    """
    named = os.environ.get("ASV_MACHINE", "").strip()
    if named:
        return named
    label = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]).strip("-._")
    if label and results_dir is not None and (results_dir / label).is_dir():
        return label
    node = platform.node()
    try:
        known = [
            k
            for k in json.loads(Path("~/.asv-machine.json").expanduser().read_text())
            if k != "version"
        ]
    except (OSError, ValueError):
        return node
    return node if node in known or len(known) != 1 else known[0]


@dataclass(frozen=True, slots=True)
class Selected:
    """One benchmark (one parameter combination) to run."""

    name: str  # "key(params)" as asv shows it
    key: str  # asv's benchmark name
    index: int | None  # parameter combination index, None without params


class AsvSession:
    """asv's environment, builds, discovery and runner, for paired rounds of commits.

    Use as a context manager; everything runs with the repository as working directory.
    Implements :class:`benchtools.compare.rounds.RoundRunner`.
    """

    def __init__(
        self,
        repo: Path,
        commits: Sequence[str],
        regexes: Sequence[str],
        *,
        launch_method: str = "forkserver",
        quick: bool = False,
        attributes: Mapping[str, object] | None = None,
        pin: bool = True,
        log: Log | None = None,
        deadline: float | None = None,
    ) -> None:
        self.repo = repo
        self.deadline = deadline
        self.commits = list(commits)
        self.regexes = list(regexes)
        self.launch_method = launch_method
        self.quick = quick
        self.attributes = dict(attributes or {})
        self.pin = pin and hasattr(os, "sched_getaffinity")
        self.log: Log = log or _log
        self.state = repo / ".asv" / "compare"
        self.build_errors: dict[str, str] = {}
        self.spawners: dict[str, AsvObject] = {}
        self.selection: list[Selected] = []
        self.benchmarks: AsvObject = None
        self.rounds_run = 0
        self.seconds = 0.0
        self.asv_runner_version: tuple[int, ...] | None = None
        self._caches: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._stack = contextlib.ExitStack()

    # -- setup

    def __enter__(self) -> AsvSession:
        try:
            self._stack.enter_context(exclusive(self.state))
            self._stack.enter_context(contextlib.chdir(self.repo))
            self._setup()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._drop_caches()
        for spawner in self.spawners.values():
            with contextlib.suppress(Exception):
                spawner.close()
        self._stack.close()

    def _prepare_environment(self) -> None:
        self.conf = Config.load("asv.conf.json")
        self.repo_obj = get_repo(self.conf)
        self.env = asv_environment(self.conf, self.log)
        # Environment._path, not dir_name: asv 0.6 computes the path before it moves pinned
        # base requirements (asv_runner) out of the requirements that dir_name hashes.
        self.env_path = Path(self.env._path)
        self.python = str(self.env_path / "bin" / "python")

    def _setup(self) -> None:
        self._prepare_environment()
        overlays = {c: self._overlay(c) for c in self.commits}
        self._prune_overlays()
        ok = [c for c in self.commits if c not in self.build_errors]
        if not ok:
            raise CompareError("no commit could be built: " + "; ".join(self.build_errors.values()))
        try:
            self.benchmarks = Benchmarks.discover(
                self.conf, self.repo_obj, [self.env], [ok[-1]], regex=self.regexes or None
            )
        except util.UserError as exc:
            raise CompareError(f"asv could not discover the benchmarks: {exc}") from None
        for key, bench in sorted(self.benchmarks.items()):
            idx = self.benchmarks.benchmark_selection.get(key)
            if idx is None:
                self.selection.append(Selected(key, key, None))
                continue
            combos = list(itertools.product(*bench["params"]))
            self.selection += [Selected(result_name(key, combos[i]), key, i) for i in idx]
        if not self.selection:
            raise CompareError(f"no benchmark matches {self.regexes}")
        cls = OverlayForkServer if self.launch_method == "forkserver" else OverlaySpawner
        for commit in ok:
            spawner = cls(self.env, self.conf.benchmark_dir, self.python, overlays[commit])
            self.spawners[commit] = spawner
            imported, output = spawner.preimport()  # the forkserver imports the suite once
            if not imported:
                self.log(f"importing the suite for {commit[:8]} failed: {last_line(output)}")
        self.asv_runner_version = self._runner_version()

    def _overlay(self, commit: str) -> Path:
        """The commit's package, installed alone in a directory (cached per commit)."""
        target = self.state / "overlays" / commit
        if (target / ".complete").exists():
            return target
        self.log(f"building {commit[:8]} with asv")
        try:
            self.env.install_project(self.conf, self.repo_obj, commit)
        except util.ProcessError as exc:
            output = (exc.stdout or "") + (exc.stderr or "")
            self.build_errors[commit] = f"build failed: {last_line(output) or exc}"
            return target
        cache = self.env_path / "asv-build-cache" / commit
        wheels = sorted(cache.glob("*.whl"))
        if not wheels:
            raise CompareError(f"asv's build_command left no wheel in {cache}")
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [
                self.python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-index",
                "--disable-pip-version-check",
                "--target",
                str(target),
                str(wheels[-1]),
            ],
            check=True,
        )
        (target / ".complete").touch()
        return target

    def code_paths(self, commit: str) -> list[Path]:
        """The ``sys.path`` entries that run the suite on ``commit`` outside asv's runner:
        the commit's package (its overlay) first, then the suite's root (this checkout)."""
        return [self.state / "overlays" / commit, self.repo]

    def _prune_overlays(self) -> None:
        root = self.state / "overlays"
        for old in root.iterdir() if root.is_dir() else ():
            if old.name not in self.commits:
                shutil.rmtree(old, ignore_errors=True)

    def _runner_version(self) -> tuple[int, ...] | None:
        for info in (self.env_path / "lib").glob("python*/site-packages/asv_runner-*.dist-info"):
            match = re.match(r"asv_runner-(\d+)\.(\d+)", info.name)
            if match:
                return int(match[1]), int(match[2])
        return None

    # -- rounds

    def kinds(self, into: Measurements) -> None:
        """Record every selected benchmark's type and unit."""
        for s in self.selection:
            bench = self.benchmarks[s.key]
            into.kinds[s.name] = str(bench["type"])
            into.units[s.name] = str(bench.get("unit") or "")

    def run_rounds(
        self, rounds: int, into: Measurements, only: Iterable[str] | None = None
    ) -> None:
        """``rounds`` paired rounds over the selection (or the names in ``only``).

        A benchmark :meth:`~benchtools.compare.model.Measurements.done` on a commit (failed, n/a,
        or an instruction count already measured) is not run again there.
        """
        wanted = set(only) if only is not None else None
        todo = [s for s in self.selection if wanted is None or s.name in wanted]
        self.kinds(into)
        for commit, error in self.build_errors.items():
            for s in todo:
                if not into.get(commit, s.name):
                    into.add(commit, s.name, RoundResult(0, None, error=error))
        for _ in range(rounds):
            started = time.monotonic()
            n = self.rounds_run
            self.rounds_run += 1
            # Both sides of a pair on the same CPU: the two CPUs of a shared machine are
            # slowed by different neighbours at different times. Rounds alternate CPUs.
            cpus = sorted(os.sched_getaffinity(0)) if self.pin else []
            affinity: dict[str, object] = {"cpu_affinity": [cpus[n % len(cpus)]]} if cpus else {}
            for i, s in enumerate(todo):
                order = self._order(n + i)
                for commit in order:
                    if into.done(commit, s.name):
                        continue
                    if self.deadline is not None and time.monotonic() > self.deadline:
                        raise BudgetSpent(f"the deadline passed in round {self.rounds_run}")
                    bench = dict(self.benchmarks[s.key])
                    bench["timeout"] = bench.get("timeout") or self.conf.default_benchmark_timeout
                    extra: dict[str, object] = {**affinity, **self.attributes}
                    if self.quick:
                        extra = {"number": 1, "repeat": 1, "warmup_time": 0, "rounds": 1}
                    res = self._run_one(bench, commit, s, extra)
                    into.add(commit, s.name, res)
            self._drop_caches()
            took = time.monotonic() - started
            self.seconds += took
            self.log(
                f"round {self.rounds_run}: {len(todo)} benchmark(s) x {len(self.spawners)} "
                f"commit(s) in {took:.0f} s"
            )

    def _order(self, j: int) -> list[str]:
        """The commits' order for the j-th run: every commit in every position equally
        often (rotations, then reversed rotations); for two commits A B, B A, B A, A B."""
        commits = list(self.spawners)
        k = len(commits)
        order = commits[j % k :] + commits[: j % k]
        return order[::-1] if (j // k) % 2 else order

    def _drop_caches(self) -> None:
        for cache_dir, _ in self._caches.values():
            if cache_dir is not None:
                shutil.rmtree(cache_dir, ignore_errors=True)
        self._caches.clear()

    def _run_one(
        self, bench: AsvBenchmark, commit: str, s: Selected, extra: dict[str, object]
    ) -> RoundResult:
        spawner = self.spawners[commit]
        cache_dir = None
        key = bench.get("setup_cache_key")
        if key is not None:
            # Like asv run: one setup_cache per commit (here: per round), shared by the
            # benchmarks that use it; created when the first of them runs.
            if (commit, key) not in self._caches:
                timeout = bench.get("setup_cache_timeout") or bench["timeout"]
                self._caches[commit, key] = spawner.create_setup_cache(
                    s.key, timeout, json.dumps({"cpu_affinity": extra.get("cpu_affinity")})
                )
            cache_dir, error = self._caches[commit, key]
            if cache_dir is None:
                return RoundResult(self.rounds_run, None, error=last_line(error))
        selected = {s.index} if s.index is not None else None
        res = runner.run_benchmark(
            bench,
            spawner,
            profile=False,
            selected_idx=selected,
            extra_params=extra,
            cwd=cache_dir,
        )
        i = s.index or 0
        value = res.result[i] if res.result else None
        samples = res.samples[i] if res.samples else None
        if value is None:
            return RoundResult(self.rounds_run, None, error=last_line(res.stderr))
        return RoundResult(self.rounds_run, float(value), tuple(float(x) for x in samples or ()))


def code_of_commits(
    repo: Path, commits: Sequence[str], log: Log | None = None
) -> tuple[str, dict[str, list[Path]]]:
    """asv's interpreter and, per commit that builds, the ``sys.path`` entries that run
    the suite on it (:meth:`AsvSession.code_paths`): for profiling outside asv's runner.

    Builds what is not built yet (one wheel per commit, cached as for ``make compare``);
    no benchmark discovery, no benchmark process.
    """
    session = AsvSession(repo, commits, [], log=log)
    with exclusive(session.state), contextlib.chdir(repo):
        session._prepare_environment()
        for commit in commits:
            session._overlay(commit)
    built = [c for c in commits if c not in session.build_errors]
    return session.python, {c: session.code_paths(c) for c in built}


def compare(
    repo: Path,
    base: str,
    heads: Sequence[str],
    *,
    regexes: Sequence[str] = (),
    factor: float = DEFAULT_FACTOR,
    rounds: int = DEFAULT_ROUNDS,
    confirm_rounds: int = DEFAULT_CONFIRM_ROUNDS,
    quick: bool = False,
    launch_method: str = "forkserver",
    attributes: Mapping[str, object] | None = None,
    pin: bool = True,
    instructions_threshold: float = DEFAULT_INSTRUCTIONS_THRESHOLD,
    deadline: float | None = None,
) -> tuple[Measurements, dict[str, list[Verdict]], AsvSession]:
    """Measure ``base`` and every head with asv in the same paired rounds, judge each head.

    The order and the rules: :func:`benchtools.compare.rounds.measure`. With a
    ``deadline`` (a ``time.monotonic()`` value), no benchmark process starts after it:
    :class:`~benchtools.compare.model.BudgetSpent` is raised instead (the one running then
    finishes first, within its asv timeout).

    Returns:
        The measurements, the verdicts per head, and the (closed) session for its facts.
    """
    with AsvSession(
        repo,
        [base, *heads],
        regexes,
        launch_method=launch_method,
        quick=quick,
        attributes=attributes,
        pin=pin,
        deadline=deadline,
    ) as s:
        m, verdicts = measure(
            s,
            base,
            heads,
            factor=factor,
            rounds=rounds,
            confirm_rounds=confirm_rounds,
            quick=quick,
            instructions_threshold=instructions_threshold,
        )
    return m, verdicts, s
