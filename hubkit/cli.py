"""The ``hubkit`` command: jobs that are not tests (unlearning, and what installed worlds add).

    hubkit unlearn esd|uce|sld --base B --concept C --out PATH
    hubkit prompts check DIR                  what a prompt folder holds and what the loader did (exit 1: unusable)
    hubkit judges list                        every registered judge and its roles (hubkit.judges.cli)
    hubkit judges check --judges FILE         build each judge a [judges] table configures, run it on a few images
    hubkit judges fetch --judges FILE         download the hf:// files and model repo ids a table names (network)
    hubkit fid-reference DIR -o stats.npz --judges FILE   FID reference statistics of a folder of images
    hubkit compare RUN.json... -o board.html [--csv P] [--markdown P]   leaderboard in HUB's Table 3/5 layout
    hubkit micro build [--only STEP ...]      rebuild the embedded micro world from seeds (hubkit_micro)
    hubkit micro check                        re-measure every micro-world bar, print one JSON object

Each subcommand is an entry of ``COMMANDS``: a function ``add_parser(subparsers)`` that adds its subparser and
sets ``func`` (``args.func(args)`` runs it and returns the exit status). Packages add commands through the
entry-point group ``hubkit.commands``::

    [project.entry-points."hubkit.commands"]
    micro = "hubkit_micro.cli:add_parser"
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from hubkit.devices import bounded_openmp_waiting
from hubkit.errors import HubkitError
from hubkit.registry import Registry

COMMANDS: Registry[Callable[[argparse._SubParsersAction], None]] = Registry("command", group="hubkit.commands",
                                                                       where="hubkit.cli.COMMANDS",
                                                                       builtins=("hubkit.judges.cli", "hubkit.compare_cli"))


def _unlearn(args) -> int:
    from hubkit.unlearn import UNLEARNING

    return int(UNLEARNING.get(args.method).run(args) or 0)


@COMMANDS.register("unlearn")
def add_unlearn_parser(subparsers) -> None:
    from hubkit.unlearn import UNLEARNING

    unlearn = subparsers.add_parser("unlearn", help="erase a concept from a model, writing a checkpoint --model accepts")
    methods = unlearn.add_subparsers(dest="method", required=True)
    for name, method in UNLEARNING.items():
        p = methods.add_parser(name, help=method.help)
        method.add_arguments(p)
        p.set_defaults(func=_unlearn)


@COMMANDS.register("prompts")
def add_prompts_parser(subparsers) -> None:
    from hubkit.prompts.check import add_parser

    add_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for _name, add_parser in COMMANDS.items():
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bounded_openmp_waiting()  # before torch is imported (hubkit.devices)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and not argv[0].startswith("-"):
            COMMANDS.get(argv[0])  # a command whose package failed to import says why, not just "invalid choice"
        args = build_parser().parse_args(argv)
        return args.func(args)
    except HubkitError as exc:
        print(f"hubkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover - `python -m hubkit.cli`: use the imported module's COMMANDS, where the
    from hubkit.cli import main as _main  # built-in commands registered themselves (this copy runs as __main__)

    sys.exit(_main())
