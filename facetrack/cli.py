"""``facetrack``: one command for everything, as a table of subcommands.

Each subcommand is the command line of a module that already exists
(``facetrack run`` is ``python demo.py``, ``facetrack enroll`` is
``python -m gallery enroll``, ...). This module only dispatches: the
options, their help and their errors stay in the module, which takes the
``prog`` to show in its usage line.

The contract of a module in :data:`SUBCOMMANDS`: it defines
``build_parser(prog=...)`` and ``main(argv, prog=...)``, ``main`` returning
the exit status. Adding a command is one line in the table.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

PROG = "facetrack"


@dataclass(frozen=True)
class Subcommand:
    """One ``facetrack NAME`` command.

    Attributes
    ----------
    module : str
        The module whose ``main(argv, prog=...)`` runs it.
    help : str
        One line for ``facetrack --help``.
    command : str or None
        For a module with subcommands of its own (``python -m gallery``):
        the one this name stands for, put before the user's arguments, so
        ``facetrack enroll X`` runs ``python -m gallery enroll X``.
    entry : str
        The function of ``module`` to call (``main_and_exit`` for ``run``, which
        leaves without tearing the models down, as ``demo.py`` does).
    """

    module: str
    help: str
    command: Optional[str] = None
    entry: str = "main"

    def prog(self, name: str) -> str:
        """The usage name the module shows: its own subcommand adds the name itself."""
        return PROG if self.command else f"{PROG} {name}"

    def argv(self, args: List[str]) -> List[str]:
        """The module's arguments for the user's ``args``."""
        return ([self.command] if self.command else []) + list(args)


#: ``facetrack NAME`` -> what runs it, in the order ``facetrack --help`` lists them.
SUBCOMMANDS: Dict[str, Subcommand] = {
    "run": Subcommand("facetrack.demo_cli", "track and name faces in a video file, camera, image folder or stream "
                                            "(python demo.py)", entry="main_and_exit"),
    "enroll": Subcommand("facetrack.gallery_cli", "enroll a photo folder (one subfolder per person) into a gallery",
                         "enroll"),
    "identify": Subcommand("facetrack.gallery_cli", "name every face of photos and folders against a gallery",
                           "identify"),
    "list": Subcommand("facetrack.gallery_cli", "list the people of a gallery", "list"),
    "rename": Subcommand("facetrack.gallery_cli", "rename a person in a gallery", "rename"),
    "remove": Subcommand("facetrack.gallery_cli", "remove a person and their embeddings from a gallery", "remove"),
    "calibrate": Subcommand("facetrack.gallery_cli", "similarity thresholds from labelled photos or a pairs CSV",
                            "calibrate"),
    "bench": Subcommand("facetrack.bench", "speed of the tuned scheduling against detecting on every frame, "
                                           "on any video"),
    "report": Subcommand("evaluation.__main__", "the evaluation report: simulator, metrics, speed (long)", "report"),
    "unknowns": Subcommand("facetrack.unknowns_cli", "the Unknown people a gallery remembers: list, name, merge, "
                                                   "split, dismiss, 'this is not X'"),
    "serve": Subcommand("facetrack.serve", "the local web page: people, Unknowns, events, the live stream"),
    "models": Subcommand("models.__main__", "model weights: where they are, check the install, detect, compare, "
                                            "time"),
}


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The top-level parser: it names the subcommand only (the rest goes to its module)."""
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Real-time face tracking and identification: YOLO faces, ArcFace embeddings, DeepSORT "
                    "tracks, names from a gallery of photos.",
        epilog=f"Run '{prog} COMMAND --help' for the options of a command.\n\n"
               "Example: name the people of photos/ (one folder per person) in a video file:\n"
               f"  {prog} run --source video.mp4 --gallery photos/ --output out.mp4 --no-show")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    for name, spec in SUBCOMMANDS.items():
        sub.add_parser(name, help=spec.help, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``facetrack COMMAND ARGS...``; the exit status of the command (2 for a wrong command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the first word is ours: "facetrack run --help" is the run command's help.
    name = build_parser().parse_args(argv[:1]).command
    spec = SUBCOMMANDS[name]
    entry = getattr(importlib.import_module(spec.module), spec.entry)
    return entry(spec.argv(argv[1:]), prog=spec.prog(name))


if __name__ == "__main__":
    sys.exit(main())
