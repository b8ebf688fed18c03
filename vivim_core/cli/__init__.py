"""`vivim-core`: one command with verbs. Each verb lives in its own module of this package with

    HELP: str                              one line for `vivim-core --help`
    add_arguments(parser) -> None          its flags (documented: `--help` explains every one)
    run(args) -> int                       the exit code

Verb modules import torch inside `run`, never at module level, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# verb -> module; add a line here to add a verb.
COMMANDS = {
    "info": "vivim_core.cli.info",
    "evaluate": "vivim_core.cli.evaluate",
    "benchmark": "vivim_core.cli.benchmark",
    "train-affine-prior": "vivim_core.cli.train_affine_prior",
    "train": "vivim_core.cli.train",
    "finetune": "vivim_core.cli.finetune",
    "predict": "vivim_core.cli.predict",
    "import-official": "vivim_core.cli.import_official",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="vivim-core",
        description="Vivim: video vision Mamba for medical video object segmentation "
                    "(train, fine-tune, predict, evaluate, benchmark).",
    )
    parser.add_argument("--version", action="version", version=f"vivim-core {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = verbs.add_parser(name, help=module.HELP, description=module.__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show full tracebacks for errors")
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import VivimError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if not args.debug:  # FFmpeg's own log lines would bury our one-line error messages
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL
    try:
        return int(args._module.run(args) or 0)
    except VivimError as exc:
        if args.debug:
            raise
        print(f"vivim-core {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vivim-core {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
