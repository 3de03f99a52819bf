"""The ``facetrack`` command: the table of subcommands, dispatch, and plain-text help for every option."""
from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facetrack import cli

REPO = Path(__file__).resolve().parent.parent
#: reStructuredText / Sphinx markup that must not reach a terminal.
RST = re.compile(r"``|:(func|mod|class|data|meth|attr):`|^\s*\.\. |^[-=~]{4,}\s*$", re.M)


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _parser_of(name: str) -> argparse.ArgumentParser:
    """The parser ``facetrack NAME`` ends up in (the module's, or its subcommand's)."""
    spec = cli.SUBCOMMANDS[name]
    parser = importlib.import_module(spec.module).build_parser(prog=spec.prog(name))
    return _subparsers(parser)[spec.command] if spec.command else parser


def _all_parsers():
    """Every parser reachable from ``facetrack``, ``python -m evaluation`` and ``python -m gallery``, by prog."""
    todo = [cli.build_parser()] + [_parser_of(n) for n in cli.SUBCOMMANDS]
    todo += [importlib.import_module(m).build_parser() for m in ("evaluation.__main__", "facetrack.gallery_cli")]
    seen = {}
    while todo:
        p = todo.pop()
        if p.prog not in seen:
            seen[p.prog] = p
            todo.extend(_subparsers(p).values())
    return seen


def test_every_subcommand_of_the_table_exists_and_takes_a_prog():
    for name, spec in cli.SUBCOMMANDS.items():
        module = importlib.import_module(spec.module)
        assert callable(getattr(module, spec.entry)), name
        parser = _parser_of(name)
        assert parser.prog == f"facetrack {name}", name


def test_the_issue_s_subcommands_are_all_there():
    assert {"run", "enroll", "identify", "list", "rename", "remove", "calibrate", "bench", "report",
            "models"} <= set(cli.SUBCOMMANDS)


@pytest.mark.parametrize("prog", sorted(_all_parsers()))
def test_every_option_and_subcommand_is_described_in_plain_text(prog):
    parser = _all_parsers()[prog]
    undescribed = [a.dest if not a.option_strings else a.option_strings[-1] for a in parser._actions
                   if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            undescribed += [c.dest for c in action._choices_actions if not c.help]
    assert undescribed == [], f"{prog}: options without help"
    text = parser.format_help()
    assert not RST.search(text), f"{prog} --help shows markup:\n{text}"


def test_the_help_of_the_evaluation_names_each_of_its_subcommands():
    parser = importlib.import_module("evaluation.__main__").build_parser()
    text = parser.format_help()
    names = _subparsers(parser)
    assert len(names) >= 6
    for name in names:
        assert re.search(rf"^\s+{re.escape(name)}\s", text, re.M), name


def _facetrack(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "facetrack", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_facetrack_help_lists_every_subcommand_with_its_help():
    out = _facetrack("--help")
    assert out.returncode == 0, out.stderr
    for name, spec in cli.SUBCOMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(spec.help[:30])}", out.stdout, re.M), name


def test_a_subcommand_s_help_is_its_module_s_under_the_facetrack_name():
    out = _facetrack("rename", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: facetrack rename ")
    assert "--db" in out.stdout and "the new name" in out.stdout


def test_a_wrong_subcommand_is_refused_with_the_list():
    out = _facetrack("enrol")
    assert out.returncode == 2
    assert "invalid choice: 'enrol'" in out.stderr and "enroll" in out.stderr
    assert _facetrack().returncode == 2


def test_the_subcommand_runs_with_its_module_s_arguments_and_exit_status(tmp_path):
    missing = tmp_path / "none.db"
    out = _facetrack("list", "--db", str(missing))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and str(missing) in out.stderr
    assert not missing.exists()


def test_setup_py_declares_the_facetrack_command():
    text = (REPO / "setup.py").read_text()
    assert re.search(r'"facetrack\s*=\s*facetrack\.cli:main"', text)
