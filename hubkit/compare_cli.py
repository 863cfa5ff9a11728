"""``hubkit compare``: a built-in entry of ``hubkit.cli.COMMANDS`` (the engine side is ``hubkit.compare``).

    hubkit compare RUN.json... [-o leaderboard.html] [--csv PATH] [--markdown PATH]
                   [--name NAME ...] [--baseline NAME ...] [--strict]

Each RUN.json is the reports/results.json of one hubkit run. Rows are methods (the run's method, else the file
stem; ``--name`` once per file, in order, overrides); files of one name merge into one row (one checkpoint per
concept, as HUB trains them). ``--baseline`` rows (the original model) are shown but not ranked, as in HUB's
Table 5. Without an output option the Markdown table goes to stdout. Runs measured with different judges,
sample sizes, thresholds or prompt folders are flagged in the tables; ``--strict`` refuses them (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hubkit.cli import COMMANDS
from hubkit.errors import ConfigError


def _run(args) -> int:
    from hubkit.atomic import write_text
    from hubkit.compare import compare, load_run, to_csv, to_html, to_markdown

    if args.name and len(args.name) != len(args.runs):
        raise ConfigError(f"--name given {len(args.name)} times for {len(args.runs)} run files; fix: one --name "
                          f"per RUN.json, in the same order (or none)")
    names = args.name or [None] * len(args.runs)
    runs = [load_run(path, name) for path, name in zip(args.runs, names)]
    board = compare(runs, baselines=args.baseline or (), strict=args.strict)
    wrote = []
    for path, render in ((args.output, to_html), (args.csv, to_csv), (args.markdown, to_markdown)):
        if path:
            try:
                write_text(Path(path), render(board))
            except OSError as exc:
                raise ConfigError(f"{path}: cannot write it ({type(exc).__name__}: {exc}); fix: pass a path in "
                                  f"a writable folder") from None
            wrote.append(str(path))
    if not wrote:
        sys.stdout.write(to_markdown(board))
    else:
        ranked = sorted((r for r in board.rows if not r.baseline and r.average_rank is not None),
                        key=lambda r: r.average_rank)
        print(f"{len(board.rows)} rows, wrote {', '.join(wrote)}"
              + (f"; best average rank: {ranked[0].name} ({ranked[0].average_rank:.1f})" if ranked else "")
              + ("; comparability notes: see the tables" if board.flagged else ""))
    return 0


@COMMANDS.register("compare")
def add_compare_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="a leaderboard of runs in HUB's layout (Table 3 values, Table 5 ranks)",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN.json", help="reports/results.json of each run")
    p.add_argument("-o", "--output", metavar="HTML", help="write a self-contained HTML leaderboard")
    p.add_argument("--csv", metavar="PATH", help="write the table as CSV")
    p.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    p.add_argument("--name", action="append", metavar="NAME", help="row name of each run file, in order")
    p.add_argument("--baseline", action="append", metavar="NAME", help="a row shown but not ranked (the original)")
    p.add_argument("--strict", action="store_true", help="refuse runs with different judges, budgets, profiles "
                                                         "or prompt folders instead of flagging them")
    p.set_defaults(func=_run)
