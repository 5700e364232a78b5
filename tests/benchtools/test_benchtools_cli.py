"""``python -m benchtools``: every command is reachable, and its help says how to use it."""

from __future__ import annotations

import pytest

from benchtools import cli

#: Commands whose module parses its options with argparse (``--help`` exits 0).
ARGPARSE = sorted(set(cli.COMMANDS) - {"selftest", "ratios", "sysdeps", "dry-run", "unasync"})


@pytest.mark.parametrize("command", ARGPARSE)
def test_every_command_answers_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["compare", "history"])
def test_selftest_commands_answer_help(which: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["selftest", which, "--help"])
    assert exc.value.code == 0
    assert f"selftest {which}" in capsys.readouterr().out


def test_the_command_list_and_unknown_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    listing = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name} " in listing
    assert cli.main([]) == 2
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert cli.main(["selftest", "nope"]) == 2
