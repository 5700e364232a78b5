"""benchtools.compare.asvglue is the only importer of asv, and asv still has what it uses.

Each private name its docstring lists is pinned here against the installed asv, so an
asv upgrade that moves one fails this test (one place, loudly) instead of a benchmark
run or a published history.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

from asv import environment, runner, util
from asv.benchmarks import Benchmarks
from asv.config import Config
from asv.plugins.regressions import Regressions
from asv.repo import get_repo
from asv.results import iter_results_for_machine_and_hash

from benchtools.compare import asvglue

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "benchtools"


def _imports_asv(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(
            a.name == "asv" or a.name.startswith("asv.") for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "asv":
            return True
    return False


def test_no_other_module_of_the_package_imports_asv() -> None:
    importers = sorted(
        p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if _imports_asv(p)
    )

    assert importers == ["benchtools/compare/asvglue.py"]


def test_the_private_names_asvglue_uses_are_still_there() -> None:
    # Environment._path: the environment's directory.
    assert "self._path = " in inspect.getsource(environment.Environment.__init__)
    # The runner: Spawner(env, benchmark_dir), ForkServer's attributes, the script.
    assert list(inspect.signature(runner.Spawner.__init__).parameters) == [
        "self",
        "env",
        "benchmark_dir",
    ]
    assert issubclass(runner.ForkServer, runner.Spawner)
    assert callable(runner.Spawner.create_setup_cache)
    assert callable(runner.ForkServer._stdout_reader)
    server = inspect.getsource(runner.ForkServer.__init__)
    for attribute in ("tmp_dir", "socket_name", "server_proc", "_server_output"):
        assert f"self.{attribute} = " in server, attribute
    assert "self.stdout_reader_thread = " in server
    assert Path(runner.BENCHMARK_RUN_SCRIPT).name == "benchmark.py"
    assert "run_benchmark" in vars(runner)
    # asv's writers of the Regressions page.
    assert list(inspect.signature(Regressions._save).parameters) == ["conf", "data"]
    assert list(inspect.signature(Regressions._save_feed).parameters) == [
        "conf",
        "benchmarks",
        "data",
        "revisions",
        "revision_to_hash",
    ]


def test_the_public_names_are_there_too() -> None:
    assert "js_comments" in inspect.signature(util.load_json).parameters
    assert callable(Config.load)
    assert callable(get_repo)
    assert callable(iter_results_for_machine_and_hash)
    assert callable(Benchmarks.load)


def test_the_one_reader_of_asv_conf_json_reads_comments(tmp_path: Path) -> None:
    conf = tmp_path / "asv.conf.json"
    conf.write_text('{\n    // a comment\n    "version": 1,\n    "project": "x"\n}\n')

    assert asvglue.load_conf_json(conf) == {"version": 1, "project": "x"}
    ours = asvglue.load_conf_json(ROOT / "asv.conf.json")
    assert ours["branches"] == ["main"]
    assert json.dumps(ours)  # plain JSON data
    loaded = asvglue.load_config(ROOT)
    assert Path(loaded.results_dir) == Path(".asv/results")  # relative to the repository
