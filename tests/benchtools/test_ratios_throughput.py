"""``ratios`` and ``fake-throughput``: numbers for a reader, so these pin their shape and
their errors, never a speed (each runs a token amount of work)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchtools import cli, ratios, throughput
from benchtools.throughput import Measurement

NUMBER = r"[0-9][0-9,.]*"


def test_breaker_report_names_every_body_and_every_target() -> None:
    lines = ratios.breaker(rounds=1, number=20)
    text = "\n".join(lines)
    for label, a, b, target in ratios.BREAKER_TARGETS:
        assert re.search(rf"^{re.escape(label)} +{NUMBER}  \(target <= {target}\)$", text, re.M)
        assert re.search(rf"^{a} +{NUMBER} ns$", text, re.M)
        assert re.search(rf"^{b} +{NUMBER} ns$", text, re.M)
    for label, _, _ in ratios.BREAKER_WRAPPED:
        assert re.search(rf"^{re.escape(label)} +{NUMBER}$", text, re.M)
    assert re.search(rf"^metrics\(\) {NUMBER} ns", text, re.M)


def test_client_report_pairs_ours_with_raw_httpx_over_loopback() -> None:
    lines = ratios.client(rounds=1)
    assert len(lines) == 3
    for line in lines:
        assert re.fullmatch(
            rf".+: ours {NUMBER} ms, raw httpx {NUMBER} ms; throughput ours/raw, paired: "
            rf"median {NUMBER} \[{NUMBER}\.\.{NUMBER}\]  \(target >= 0.95\)",
            line,
        ), line


@pytest.mark.parametrize("argv", [[], ["nope"], ["breaker", "x"], ["client", "1", "2"]])
def test_ratios_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ratios", *argv]) == 2
    assert "usage: python -m benchtools ratios" in capsys.readouterr().err


def test_throughput_report_is_the_median_of_paired_ratios() -> None:
    runs = {
        "baseline": [Measurement(100.0, 10.0), Measurement(200.0, 20.0), Measurement(50.0, 5.0)],
        "candidate": [Measurement(110.0, 9.0), Measurement(180.0, 22.0), Measurement(60.0, 5.0)],
    }
    lines = throughput.report("httpx", runs, rounds=3, seconds=2)
    assert lines[0] == "load 'httpx' (3 rounds x 2 s):"
    assert "median      100 req/s" in lines[1]
    assert "[100 200 50]" in lines[1]
    # req/s ratios 1.1, 0.9, 1.2; CPU ratios 0.9, 1.1, 1.0
    assert lines[3] == "  candidate / baseline, req/s: median 1.100 (min 0.900, max 1.200)"
    assert lines[4] == "  candidate / baseline, CPU us/request: median 1.000 (min 0.900, max 1.100)"


def test_fake_throughput_measures_the_extracted_revision_and_the_tree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--baseline", "HEAD", "--rounds", "1", "--seconds", "0.2", "--load", "pipelined"]
    assert throughput.main(argv) == 0
    out = capsys.readouterr().out
    assert "load 'pipelined' (1 rounds x 0.2 s):" in out
    assert re.search(rf"baseline +median +{NUMBER} req/s", out)
    assert re.search(rf"candidate +median +{NUMBER} req/s", out)
    assert "candidate / baseline, req/s: median" in out


def test_the_driver_refuses_code_it_was_not_given(tmp_path: Path) -> None:
    # An empty root holds no pganalytics_core: the driver must fail, not measure the
    # installed package in its place.
    with pytest.raises(Exception, match=r"returned non-zero|not the code under"):
        throughput.measure(tmp_path, "pipelined", 0.1, 1)


def test_fake_throughput_names_an_unknown_revision(capsys: pytest.CaptureFixture[str]) -> None:
    assert throughput.main(["--baseline", "no-such-rev", "--rounds", "1"]) == 2
    assert "no-such-rev" in capsys.readouterr().err


def test_fake_throughput_refuses_nonsense_options() -> None:
    with pytest.raises(SystemExit) as exc:
        throughput.main(["--rounds", "0"])
    assert exc.value.code == 2
