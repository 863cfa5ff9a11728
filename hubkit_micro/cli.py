"""``hubkit micro build|check``: the micro world's command, registered through the entry-point group
``hubkit.commands`` (``pyproject.toml``)."""

from __future__ import annotations

from pathlib import Path


def _micro_build(args) -> int:
    from hubkit_micro.build import build

    build(only=args.only, seed=args.seed, fast=args.fast)
    return 0


def _micro_check(args) -> int:
    import json

    from hubkit_micro.check import check

    print(json.dumps(check(n=args.n, seed=args.seed, only=tuple(args.only or ()), base=args.base), indent=1))
    return 0


def add_parser(subparsers) -> None:
    from hubkit_micro.check import PARTS

    """Add ``micro`` (with ``build`` and ``check``) to the ``hubkit`` command's subparsers."""
    micro = subparsers.add_parser("micro", help="the embedded micro world").add_subparsers(dest="micro", required=True)
    build = micro.add_parser("build", help="rebuild prompts, micro SD, judges and unlearned checkpoints from seeds")
    build.add_argument("--only", action="append", choices=["prompts", "sd", "judges", "unlearned"],
                       help="rebuild only these steps (repeatable)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--fast", action="store_true", help="tiny step counts (smoke test of the pipeline, not shippable)")
    build.set_defaults(func=_micro_build)
    check = micro.add_parser("check", help="re-measure every micro-world bar from the committed weights (JSON)")
    check.add_argument("--n", type=int, default=64, help="images per measured rate")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--only", action="append", choices=list(PARTS), help="measure only these parts (repeatable)")
    check.add_argument("--base", type=Path, default=None,
                       help="a candidate base model folder: measures its bars (base, description, attack power)")
    check.set_defaults(func=_micro_check)
