"""The unlearning report: pytest-html extras (numbers, intervals, verdicts, base-vs-unlearned grids)."""
