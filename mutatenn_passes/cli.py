"""The `mutatenn` command line.

Every subcommand lives in a module exposing ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int`` as the handler. Any `MutateNNError` ends the command with one clear
line on stderr and exit code 2, never a traceback; each `MutateNNWarning` is one ``warning:``
line on stderr. Every ``--help`` states the defaults (`DefaultsHelpFormatter`), and a mistyped
flag is reported with the usage of the subcommand it was given to.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
import warnings

from rich.markup import escape

from .version import __version__
from .errors import MutateNNError, MutateNNWarning
from .ui import errors

#: Modules contributing subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "mutatenn_passes.commands.predict",
    "mutatenn_passes.commands.targets",
    "mutatenn_passes.commands.operators",
    "mutatenn_passes.commands.tune",
    "mutatenn_passes.campaign.commands",
    "mutatenn_passes.commands.devices",
    "mutatenn_passes.commands.cluster",
)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help, except where the help already says its
    default, or where there is none to state: an on/off flag (off unless given) or an option
    whose default is None (its help must then say what happens without it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.nargs == 0:
            return text
        return super()._get_help_string(action)


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: states defaults in its help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mutatenn", formatter_class=DefaultsHelpFormatter,
        description="Mutation testing for DNN compilers: inject faults into TVM's Relax and "
                    "TIR, build the mutants for several targets, and measure how far their "
                    "predictions drift from the original's.")
    parser.add_argument("--version", action="version", version=f"mutatenn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=_SubcommandParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each subcommand, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _reject_unknown(parser: argparse.ArgumentParser, unknown: list[str]) -> None:
    """Report unrecognised arguments with the parser's usage and a near match, if any."""
    flags = [s for a in parser._actions for s in a.option_strings]
    hints = []
    for arg in unknown:
        near = difflib.get_close_matches(arg.split("=", 1)[0], flags, n=1) \
            if arg.startswith("-") else []
        hints.append(f"{arg} (did you mean {near[0]}?)" if near else arg)
    parser.error(f"unrecognized arguments: {' '.join(hints)}")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Our warnings as one line each; others as Python prints them."""
    if issubclass(category, MutateNNWarning):
        errors.print(f"[bold yellow]warning:[/] {escape(str(message))}", soft_wrap=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _reject_unknown(subcommand_parsers(parser).get(args.command, parser), unknown)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("always", MutateNNWarning)  # targets.py says each only once
        warnings.showwarning = _show_warning
        try:
            return int(args.func(args) or 0)
        except MutateNNError as exc:
            errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            return 2
        except KeyboardInterrupt as exc:  # a campaign's says what was saved
            errors.print(escape(str(exc)) or "interrupted", soft_wrap=True)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
