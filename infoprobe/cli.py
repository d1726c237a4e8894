"""The ``infoprobe`` command line: a thin layer over the Python API.

Every subcommand lives in ``infoprobe/commands/<name>.py`` with ``HELP`` (one line),
``configure(parser)`` and ``run(args) -> int``; adding one is one module plus one line in
``COMMANDS``. A user error (``InfoprobeError``, a missing file) is one line on stderr and
exit status 2, naming the flag where the library names its parameter; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from infoprobe import __version__
from infoprobe.errors import InfoprobeError

__all__ = ["COMMANDS", "build_parser", "flag_message", "main"]

COMMANDS: dict[str, str] = {
    "inspect": "infoprobe.commands.inspect",
    "train": "infoprobe.commands.train",
    "analyze": "infoprobe.commands.analyze",
    "compare": "infoprobe.commands.compare",
    "embed": "infoprobe.commands.embed",
    "plot": "infoprobe.commands.plot",
    "export": "infoprobe.commands.export",
}

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"infoprobe: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="infoprobe",
        description="Where, layer by layer, is information kept or lost? "
        "Information-theoretic analysis of (invertible) autoencoders.",
    )
    parser.add_argument("--version", action="version", version=f"infoprobe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(p)
        flags = {a.dest: a.option_strings[0] for a in p._actions if a.option_strings}
        p.set_defaults(_run=module.run, _flags=flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    try:
        return int(args._run(args) or 0)
    except (InfoprobeError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        parameter = getattr(exc, "parameter", None)
        # the library speaks of parameters, the command line of flags
        if isinstance(parameter, str) and parameter in args._flags:
            message = flag_message(message, parameter, args._flags[parameter])
        print(f"infoprobe: error: {message}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("infoprobe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``infoprobe inspect x.pt | head``)
        sys.stderr.close()
        return 0


def flag_message(message: str, parameter: str, flag: str) -> str:
    """``message`` with the parameter named as its flag: ``ci=0.95`` -> ``--ci 0.95``, ``ci`` -> ``--ci``,
    ``download=True`` -> ``--download``.

    Only the parameter as a whole word is replaced, not inside other words or dotted module
    names (``specific``, ``encoder.layers.0``).
    """
    pattern = re.compile(rf"(?<![\w-])(?<!\w\.){re.escape(parameter)}(?![\w-]|\.\w)(=True\b|=?)")
    return pattern.sub(lambda m: f"{flag} " if m.group(1) == "=" else flag, message)


if __name__ == "__main__":
    sys.exit(main())
