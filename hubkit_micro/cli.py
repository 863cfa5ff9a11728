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


def _micro_leaderboard(args) -> int:
    from hubkit.compare import fmt_rank
    from hubkit_micro.leaderboard import leaderboard

    board = leaderboard(methods=tuple(args.method or ()) or None, concepts=tuple(args.concept or ()) or None,
                        budget=args.budget, seed=args.seed, work=args.work, runs=args.runs, out=args.out,
                        fast=args.fast, select=args.select)
    ranked = sorted((r for r in board.rows if not r.baseline and r.average_rank is not None), key=lambda r: r.average_rank)
    print(f"wrote {args.out}; average ranks: " + ", ".join(f"{r.name} {fmt_rank(r.average_rank)}" for r in ranked))
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
    from hubkit_micro.leaderboard import CONCEPTS, DEFAULT_OUT, DEFAULT_RUNS, DEFAULT_WORK, METHODS

    board = micro.add_parser("leaderboard", help="HUB's Table 3 and Table 5 for every method of the roster on the "
                                                 "micro world (docs/micro-leaderboard.md)")
    board.add_argument("--method", action="append", choices=list(METHODS), help="only these methods (repeatable)")
    board.add_argument("--concept", action="append", choices=list(CONCEPTS), help="only these concepts (repeatable)")
    board.add_argument("--budget", default="ci", help="the suites' budget (default ci)")
    board.add_argument("--seed", type=int, default=0)
    board.add_argument("--select", default=None, help="a pytest -k expression passed to every run")
    board.add_argument("--work", type=Path, default=DEFAULT_WORK, help="built checkpoints (reused)")
    board.add_argument("--runs", type=Path, default=DEFAULT_RUNS,
                       help=f"finished evaluations, reused by key wherever this folder travels (default {DEFAULT_RUNS}, "
                            f"committed with the table)")
    board.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Markdown file to write")
    board.add_argument("--fast", action="store_true", help="token training steps (a smoke test, not a leaderboard)")
    board.set_defaults(func=_micro_leaderboard)
