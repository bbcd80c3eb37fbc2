"""The `mutatenn` command line.

Every subcommand lives in a module exposing ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int`` as the handler. Any `MutateNNError` ends the command with one clear
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import MutateNNError
from rich.markup import escape

from .ui import errors

#: Modules contributing subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "mutatenn_passes.commands.predict",
    "mutatenn_passes.commands.targets",
    "mutatenn_passes.commands.operators",
    "mutatenn_passes.campaign.commands",
    "mutatenn_passes.commands.devices",
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mutatenn",
        description="Mutation testing for DNN compilers: inject faults into TVM's Relax and "
                    "TIR, build the mutants for several targets, and measure how far their "
                    "predictions drift from the original's.")
    parser.add_argument("--version", action="version", version=f"mutatenn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MutateNNError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
