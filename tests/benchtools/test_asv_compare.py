"""The command line of the review tool: tools/asv_compare.py (benchtools.compare.cli)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchtools.compare import Measurements, RoundResult, cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("factor", ["1", "0.9", "nan", "x"])
def test_cli_rejects_a_factor_not_above_one(
    factor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["--factor", factor])

    assert exc.value.code == 2
    assert "expected a number > 1" in capsys.readouterr().err


def test_cli_unknown_revision_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    repo = ROOT

    code = cli.main(["--repo", str(repo), "--base", "no-such-rev-xyz", "--head", "HEAD"])

    assert code == 2
    assert "unknown revision 'no-such-rev-xyz'" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["0", "1", "-0.02", "nan", "2%"])
def test_cli_rejects_an_instructions_threshold_not_a_fraction(
    threshold: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["--instructions-threshold", threshold])

    assert exc.value.code == 2
    assert "expected a fraction between 0 and 1" in capsys.readouterr().err


def test_cli_options_keep_their_defaults() -> None:
    options = cli.parse_args([])

    assert (options.base, options.head, options.factor) == ("main", "HEAD", 1.2)
    assert (options.rounds, options.confirm_rounds) == (4, 8)
    assert options.instructions_threshold == 0.02
    assert options.repo == ROOT
    assert cli.parse_args(["--instructions-threshold", "0.05"]).instructions_threshold == 0.05


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (["--base", "no-such-rev-xyz"], 2, "unknown revision 'no-such-rev-xyz'"),
        (["--base", "HEAD", "--head", "HEAD"], 0, "nothing to compare"),
    ],
)
def test_the_direct_command_passes_its_exit_code_on(
    args: list[str], code: int, output: str
) -> None:
    # What CI runs: the script itself, not make (make turns every failure into 2).
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "asv_compare.py"), "--repo", str(ROOT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == code, proc.stderr
    assert output in proc.stdout + proc.stderr


def test_python_m_benchtools_compare_is_the_same_command() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchtools",
            "compare",
            "--repo",
            str(ROOT),
            "--base",
            "no-such-rev-xyz",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 2
    assert "unknown revision 'no-such-rev-xyz'" in proc.stderr


@pytest.mark.parametrize(
    ("head_ns", "code"),
    [((100, 101), 0), ((150, 151), 1), ((None, None), 2)],
)
def test_main_returns_the_verdicts_exit_code_for_stored_results(
    head_ns: tuple[float | None, ...],
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from benchtools.compare import asvglue

    def stored(repo: Path, commits: list[str], regexes: list[str]) -> Measurements:
        base, head = commits
        m = Measurements()
        m.kinds["b.T.time_x"] = "time"
        m.units["b.T.time_x"] = "seconds"
        m.add(base, "b.T.time_x", RoundResult(0, 100e-9, (100e-9, 101e-9)))
        samples = () if None in head_ns else tuple(x * 1e-9 for x in head_ns if x)
        value = None if None in head_ns else samples[0]
        m.add(head, "b.T.time_x", RoundResult(0, value, samples, error="" if value else "boom"))
        return m

    monkeypatch.setattr(asvglue, "stored_measurements", stored)
    out = tmp_path / "report.json"

    args = ["--repo", str(ROOT), "--base", "HEAD~1", "--head", "HEAD", "--no-run"]
    got = cli.main([*args, "--json", str(out)])

    assert got == code
    assert f"; exit {code}\n" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["exit_code"] == code
    assert set(report) == {"info", "exit_code", "summary", "verdicts", "calls", "measurements"}
    assert report["calls"] == {}  # stored results: nothing is profiled


def test_setup_cache_runs_the_commits_package_under_both_launchers() -> None:
    # asv's ForkServer inherits Spawner.create_setup_cache, which runs through asv's
    # environment without the commit's package: setup_cache (the instruction counts)
    # then measured whatever the environment had installed, the same on both sides.
    from benchtools.compare import asvglue

    for launcher in (asvglue.OverlaySpawner, asvglue.OverlayForkServer):
        assert launcher.create_setup_cache is asvglue.OverlaySpawner.create_setup_cache
        assert launcher._call is asvglue.OverlaySpawner._call
    env = asvglue._benchmark_env(type("Env", (), {"env_vars": {}})(), "/x/bin/python", Path("/o"))
    assert env["ASV_PYTHONPATH"] == env["PGANALYTICS_PACKAGE_OVERLAY"] == "/o"
