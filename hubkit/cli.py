"""The ``hubkit`` command: jobs that are not tests (building the micro world, unlearning, checks).

    hubkit micro build [--only STEP ...]      rebuild the embedded micro world from seeds
    hubkit micro check                        re-measure every micro-world bar, print one JSON object
    hubkit unlearn esd|uce|sld --base B --concept C --out PATH
"""

from __future__ import annotations

import argparse
import os
import sys

from hubkit.errors import HubkitError


def _micro_build(args) -> int:
    from hubkit.microworld.build import build

    build(only=args.only, seed=args.seed, fast=args.fast)
    return 0


def _micro_check(args) -> int:
    import json

    from hubkit.microworld.check import check

    print(json.dumps(check(n=args.n, seed=args.seed), indent=1))
    return 0


def _unlearn(args) -> int:
    from importlib import import_module

    module = import_module(f"hubkit.microworld.unlearn.{args.method}")
    return int(module.run(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    micro = sub.add_parser("micro", help="the embedded micro world").add_subparsers(dest="micro", required=True)
    build = micro.add_parser("build", help="rebuild prompts, micro SD, judges and unlearned checkpoints from seeds")
    build.add_argument("--only", action="append", choices=["prompts", "sd", "judges", "unlearned"],
                       help="rebuild only these steps (repeatable)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--fast", action="store_true", help="tiny step counts (smoke test of the pipeline, not shippable)")
    build.set_defaults(func=_micro_build)
    check = micro.add_parser("check", help="re-measure every micro-world bar from the committed weights (JSON)")
    check.add_argument("--n", type=int, default=64, help="images per measured rate")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(func=_micro_check)

    unlearn = sub.add_parser("unlearn", help="erase a concept from a model, writing a checkpoint --model accepts")
    methods = unlearn.add_subparsers(dest="method", required=True)
    from hubkit.microworld.unlearn import METHODS

    for name, (help_text, add_arguments) in METHODS.items():
        p = methods.add_parser(name, help=help_text)
        add_arguments(p)
        p.set_defaults(func=_unlearn)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HubkitError as exc:
        print(f"hubkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
