"""A small benchmark history for the site tests: a git repo and asv results written as JSON.

:func:`make_history` builds a repository with a few commits on ``main`` and, for each
commit, an asv result file (asv's version-2 format) of three benchmarks for one machine:
a plain time benchmark that doubles at the fourth commit (a regression asv detects), a
parametrized one and a ``track_`` one. No benchmark runs: the values are made up, the
files are what ``asv run`` writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MACHINE = "fixture-box"
ENV = "virtualenv-py3.11"
COLUMNS = [
    "result",
    "params",
    "version",
    "started_at",
    "duration",
    "stats_ci_99_a",
    "stats_ci_99_b",
    "stats_q_25",
    "stats_q_75",
    "stats_number",
    "stats_repeat",
    "samples",
    "profile",
]
BENCHMARKS = {
    "bench_demo.Breaker.time_call": {"type": "time", "unit": "seconds", "params": []},
    "bench_demo.Sort.time_sort": {
        "type": "time",
        "unit": "seconds",
        "params": [["10", "1000"]],
        "param_names": ["n"],
    },
    "bench_demo.Load.track_p99_ms": {"type": "track", "unit": "ms", "params": []},
    # The same count on every commit: a flat graph.
    "bench_demo.Count.track_calls": {"type": "track", "unit": "instructions", "params": []},
    # Never has a value (n/a on every commit, as without the tool it needs).
    "bench_demo.Instructions.track_instructions": {
        "type": "track",
        "unit": "instructions",
        "params": [],
    },
}
#: The benchmarks with values in the result files.
MEASURED = (
    "bench_demo.Breaker.time_call",
    "bench_demo.Sort.time_sort",
    "bench_demo.Load.track_p99_ms",
    "bench_demo.Count.track_calls",
)
#: The commit (0-based) from which time_call takes twice as long.
REGRESSION_AT = 3
N_COMMITS = 6


@dataclass(frozen=True, slots=True)
class History:
    """The fixture repository and what it holds."""

    repo: Path
    commits: list[str]  # oldest first


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def benchmarks_json() -> dict[str, object]:
    out: dict[str, object] = {"version": 2}
    for name, spec in BENCHMARKS.items():
        out[name] = {
            "code": f"def {name.rsplit('.', 1)[1]}(self): pass",
            "name": name,
            "param_names": spec.get("param_names", []),
            "params": spec["params"],
            "timeout": 60.0,
            "type": spec["type"],
            "unit": spec["unit"],
            "version": "1" * 64,
        }
    return out


def machine_json(machine: str = MACHINE) -> dict[str, object]:
    return {
        "arch": "x86_64",
        "cpu": "fixture cpu",
        "machine": machine,
        "num_cpu": "2",
        "os": "Linux",
        "ram": "8000000",
        "version": 1,
    }


def result_json(
    commit: str, index: int, date_ms: int, machine: str = MACHINE, names: tuple[str, ...] = ()
) -> dict[str, object]:
    """One commit's result file; ``names`` limits it to some benchmarks (all when empty)."""
    base = 1e-6 * (2.0 if index >= REGRESSION_AT else 1.0) * (1 + 0.01 * (index % 2))
    values = {
        "bench_demo.Breaker.time_call": [base],
        "bench_demo.Sort.time_sort": [2e-6 + 1e-8 * index, 3e-4 + 1e-6 * index],
        "bench_demo.Load.track_p99_ms": [5.0 + 0.1 * index],
        "bench_demo.Count.track_calls": [35000.0],
    }
    results = {}
    for name, value in values.items():
        if names and name not in names:
            continue
        params = BENCHMARKS[name]["params"]
        results[name] = [value, params, "1" * 64, date_ms, 1.0]
    return {
        "commit_hash": commit,
        "env_name": ENV,
        "date": date_ms,
        "params": {
            **{k: v for k, v in machine_json(machine).items() if k != "version"},
            "python": "3.11",
        },
        "python": "3.11",
        "requirements": {},
        "env_vars": {},
        "result_columns": COLUMNS,
        "results": results,
        "durations": {},
        "version": 2,
    }


def write_results(results_dir: Path, history: History, machine: str = MACHINE) -> None:
    """asv's results tree of ``history`` for ``machine`` under ``results_dir``."""
    mdir = results_dir / machine
    mdir.mkdir(parents=True, exist_ok=True)
    (results_dir / "benchmarks.json").write_text(json.dumps(benchmarks_json()))
    (mdir / "machine.json").write_text(json.dumps(machine_json(machine)))
    for i, commit in enumerate(history.commits):
        date_ms = int(git(history.repo, "show", "-s", "--format=%ct", commit)) * 1000
        data = result_json(commit, i, date_ms, machine)
        (mdir / f"{commit[:8]}-{ENV}.json").write_text(json.dumps(data))


def make_history(repo: Path, n_commits: int = N_COMMITS) -> History:
    """A repository with ``n_commits`` commits on main, an hour apart, and asv.conf.json."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    conf = {
        "version": 1,
        "project": "demo",
        "project_url": "",
        "repo": ".",
        "branches": ["main"],
        "dvcs": "git",
        "environment_type": "virtualenv",
        "show_commit_url": "",
        "benchmark_dir": "benchmarks",
        "env_dir": ".asv/env",
        "results_dir": ".asv/results",
        "html_dir": "html",
    }
    (repo / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    (repo / ".gitignore").write_text(".asv/\nhtml/\n")
    commits = []
    for i in range(n_commits):
        (repo / "version.txt").write_text(f"{i}\n")
        git(repo, "add", "-A")
        stamp = f"{1_700_000_000 + 3600 * i} +0000"
        subprocess.run(
            ["git", "commit", "--quiet", "-m", f"change {i}"],
            cwd=repo,
            check=True,
            env={
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@localhost",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@localhost",
                "GIT_AUTHOR_DATE": stamp,
                "GIT_COMMITTER_DATE": stamp,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(repo),
            },
        )
        commits.append(git(repo, "rev-parse", "HEAD"))
    return History(repo=repo, commits=commits)


def asv_publish(repo: Path, config: Path | None = None) -> Path:
    """``asv publish`` of ``repo``'s stored results (with ``config`` when given); html/."""
    cmd = [sys.executable, "-m", "asv", "publish", "--no-pull"]
    if config is not None:
        cmd += ["--config", str(config)]
    subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
    return repo / "html"
