"""``hubkit prompts check DIR``: what a prompt folder holds and what the loader did with it, before any run.

One table per concept: per prompt set, the file used, how many lines/rows/items were read and kept, and what
was dropped by which rule; then every issue (its decision, rule and examples). Exit status 1 when a file is
refused (missing, a Git-LFS pointer, not UTF-8, malformed, nothing left): a check that needs it cannot mean
anything. The rules are ``hubkit.prompts.clean.RULES``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hubkit.prompts.folder import load_prompt_folder
from hubkit.prompts.records import SETS, ValidationIssue

SET_ORDER = (*SETS, "general")


def _reasons(issues: list[ValidationIssue], decision: str, unit: str | None) -> str:
    """``kind count`` of the issues with ``decision``; the unit is named when it is not the set's (nouns, files)."""
    return ", ".join(f"{i.kind} {i.count:,}" + (f" {i.unit}" if unit and i.unit != unit else "")
                     for i in issues if i.decision == decision)


def table(folder) -> list[str]:
    """The per-concept, per-set lines (read, kept, dropped by reason, cleaned, refused)."""
    by_set: dict[tuple[str, str], list[ValidationIssue]] = {}
    for issue in folder.validation:
        by_set.setdefault((issue.concept, issue.prompt_set), []).append(issue)
    width = max([len(c.file) for c in folder.counts.values()] + [30])
    out = []
    for concept in [*folder.concepts, "*"]:
        title = f"{concept} ({folder.concepts[concept].category})" if concept != "*" else "* (whole folder)"
        out.append(title)
        out.append(f"  {'set':<13} {'file':<{width}} {'read':>7} {'kept':>7}  dropped by reason; cleaned; noted; refused")
        for set_name in SET_ORDER:
            issues = by_set.get((concept, set_name), [])
            count = folder.counts.get((concept, set_name))
            if count is None and not issues:
                continue
            refused = [i for i in issues if i.refused]
            file = count.file if count else (refused[0].file if refused and refused[0].file else "-")
            read = f"{count.read:,}" if count else "-"
            kept = f"{count.kept:,}" if count else "-"
            unit = count.unit if count else None
            cells = [f"{decision if decision != 'kept' else 'noted'}: {text}" for decision in ("dropped", "cleaned", "kept")
                     if (text := _reasons(issues, decision, unit))]
            cells += [f"REFUSED: {i.kind}" for i in refused]
            out.append(f"  {set_name:<13} {file:<{width}} {read:>7} {kept:>7}  {'; '.join(cells) or '-'}")
        out.append("")
    return out


def report(folder) -> tuple[list[str], int]:
    """The printed report and the exit status (1 when any file is refused)."""
    issues = folder.validate()
    lines = [f"prompt folder {folder.root}: {len(folder.concepts)} concepts "
             f"({', '.join(folder.concepts) or 'none'})", ""]
    lines += table(folder)
    lines.append("issues (decision, what, rule; examples):")
    for i in issues:
        where = f"{i.concept} / {i.prompt_set}" + (f" ({i.file})" if i.file else "")
        lines.append(f"  [{i.decision}] {where}: {i.kind}: {i.count:,} of {i.total:,} {i.unit} -- {i.message}")
        lines += [f"      e.g. {e}" for e in i.examples[:3]]
    refused = [i for i in issues if i.refused]
    lines.append("")
    if refused:
        lines.append(f"{len(refused)} refused file(s) make a check meaningless:")
        lines += [f"  {i.concept} / {i.prompt_set}: {i.kind}: {i.message}" for i in refused]
    else:
        lines.append("every file is usable: all defects above were decided by a rule (see hubkit/prompts/clean.py)")
    return lines, 1 if refused else 0


def run(args) -> int:
    folder = load_prompt_folder(Path(args.folder))
    lines, status = report(folder)
    if args.json:
        print(json.dumps({"folder": str(folder.root), "concepts": list(folder.concepts),
                          "counts": [c.as_dict() for c in folder.counts.values()],
                          "issues": [i.as_dict() for i in folder.validation], "exit_status": status}, indent=1))
    else:
        print("\n".join(lines))
    return status


def add_parser(subparsers) -> None:
    prompts = subparsers.add_parser("prompts", help="inspect a HUB-layout prompt folder")
    actions = prompts.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="read every file of a prompt folder and report what each rule did "
                                             "(exit 1 when a file is refused)")
    check.add_argument("folder", help="a HUB checkout's prompts/ folder (or any HUB-layout folder)")
    check.add_argument("--json", action="store_true", help="print the counts and issues as one JSON object")
    check.set_defaults(func=run)
