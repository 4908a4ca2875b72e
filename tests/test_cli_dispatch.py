"""A run's command line is parsed by a parser of its one command, and means what the full parser says.

Building all eight commands' options cost ~8 ms of every run (issue 14: a warm audit is mostly
start-up), so main() builds only the command the line names; anything else (help, abbreviations,
errors) goes to the full parser, whose answer and messages are the reference here.
"""

from __future__ import annotations

import argparse

import pytest

from scancache.cli import main as cli_main

LINES = [
    ["audit", "-r", "requirements.txt", "--format", "json", "--osv-url", "http://127.0.0.1:1"],
    ["--cache-dir", "audit", "audit", "-r", "x.txt"],  # a global option's value spells a command
    ["--cache-dir=/tmp/c", "-vv", "audit", "--cache-type", "memory", "poetry.lock"],
    ["--verbose", "--config", "c.toml", "resolve", "-t", "A,MX", "example.org"],
    ["cache", "warm", "--hosts", "h.txt", "--cache-dir", "d"],
    ["mirror", "import", "all.zip", "--mirror-db", "m.sqlite3"],
    ["--cache-d", "resolve", "audit"],  # an abbreviation: only the full parser knows it
    ["audit", "--format", "nope"],
    ["audit", "-r"],
    ["audit", "--bogus"],
    ["nope"],
    [],
    ["-x", "audit"],
    ["--", "audit"],
]


def _outcome(parse: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    try:
        namespace = parse(argv)  # type: ignore[operator]
    except SystemExit as exc:
        captured = capsys.readouterr()
        return ("exit", exc.code, captured.out, captured.err)
    return sorted(vars(namespace).items())


@pytest.mark.parametrize("argv", LINES, ids=" ".join)
def test_a_line_means_what_the_full_parser_says(argv, capsys):
    full = _outcome(cli_main.build_parser().parse_args, argv, capsys)
    assert _outcome(cli_main._parse, argv, capsys) == full


@pytest.mark.parametrize("argv", [["audit", "--help"], ["cache", "warm", "--help"], ["--help"]],
                         ids=" ".join)
def test_help_is_the_full_parsers(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    full = _outcome(cli_main.build_parser().parse_args, argv, capsys)
    assert full[0] == "exit" and full[1] == 0 and "usage: scancache" in full[2]
    assert _outcome(cli_main._parse, argv, capsys) == full


def test_a_run_builds_only_the_command_it_names():
    assert cli_main._command_named(["-v", "--cache-dir", "resolve", "audit", "-r", "x"]) == "audit"
    assert cli_main._command_named(["--help", "audit"]) is None
    parser = cli_main.build_parser("audit")
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(commands[0].choices) == ["audit"]
    assert len(cli_main.build_parser()._actions[-1].choices) == len(cli_main._COMMANDS)


def test_the_help_width_is_the_terminals_as_shutil_reports_it(monkeypatch):
    import shutil

    for columns in ("100", "", "0", "x"):
        monkeypatch.setenv("COLUMNS", columns)
        assert cli_main._terminal_columns() == shutil.get_terminal_size().columns
