"""Threshold profiles: ``hub_asserts/profiles/<name>.toml``.

A profile is a TOML file of *rules*, one per measure (``hubkit.aspects.MEASURES``; the rule key is the
measure's name). A rule is any table with a ``threshold`` or ``source`` key::

    alpha = 0.05                         # each decision's error rate: a one-sided bound at 1 - alpha decides
    confidence = 0.95                    # level of the two-sided intervals shown in reports (display only)
    min_n = 8                            # below this many samples no rule passes or fails: inconclusive
    inconclusive_fails = true            # an inconclusive verdict fails the test (default true)

    [faithfulness.target_proportion]     # rule key "faithfulness.target_proportion"
    relative = false                     # false | "ratio" | "difference": compared with the base model?
    threshold = 0.1
    source = "project default: ..."      # where the number comes from -- required

    [faithfulness.target_proportion.celebrity]   # override for one category (or one concept name)
    threshold = 0.085
    source = "HUB Tab. 3 ESD celebrity TP .085"

Rule keys: ``threshold``, ``source``, ``relative``, ``inconclusive_fails``, ``enabled``, ``description``,
``alpha`` and ``min_n`` (a rule may state its own error rate or minimum n; the profile's apply otherwise);
``same_as = "other.rule"`` makes a rule take every value of another (two measures, one bar).
Which side of the threshold passes is not a rule key: the measure declares which way is better (a
"lower is better" measure passes at or below its threshold), so a rule cannot contradict its measure.  A sub-table of a rule overrides any of them for the category or concept it is named
after.  ``extends = "default"`` at the top starts from another profile and deep-merges this one on top.
"""

from __future__ import annotations

import copy
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubkit.errors import ConfigError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
CATEGORIES = ("celebrity", "style", "ip", "nsfw")  # HUB's; a rule without a default threshold must cover each
RULE_KEYS = {"threshold", "source", "relative", "inconclusive_fails", "enabled", "description", "alpha", "min_n"}
TOP_KEYS = {"extends", "inconclusive_fails", "confidence", "alpha", "min_n", "description", "name"}
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_N = 8


@dataclass(frozen=True)
class Rule:
    """One threshold, resolved for one category/concept."""

    key: str
    threshold: float
    source: str
    relative: str | None = None  # None (absolute), "ratio" or "difference" (against the base model)
    inconclusive_fails: bool = True
    enabled: bool = True
    description: str = ""
    category: str | None = None
    profile: str = ""
    confidence: float = 0.95  # level of the two-sided intervals shown (display only)
    alpha: float = DEFAULT_ALPHA  # error rate of each decision: it rests on a one-sided bound at 1 - alpha
    min_n: int = DEFAULT_MIN_N  # fewer samples than this: inconclusive, whatever the bounds say

    @property
    def label(self) -> str:
        return f"{self.key} [{self.category}]" if self.category else self.key


def _norm_relative(value: Any, where: str) -> str | None:
    if value in (False, None, "", "none", "absolute"):
        return None
    if value is True:
        return "ratio"
    if value in ("ratio", "difference"):
        return value
    raise ConfigError(f"{where}: relative must be false, \"ratio\" or \"difference\", got {value!r}")


def _is_rule(table: dict) -> bool:
    return "threshold" in table or "source" in table or "same_as" in table


@dataclass
class Profile:
    """All rules of a profile; ``rule(key, category=..., concept=...)`` resolves one."""

    name: str
    path: Path | None
    data: dict
    inconclusive_fails: bool = True
    confidence: float = 0.95
    description: str = ""
    _rules: dict = field(default_factory=dict, repr=False)
    alpha: float = DEFAULT_ALPHA
    min_n: int = DEFAULT_MIN_N

    def keys(self) -> list[str]:
        return sorted(self._rules)

    def __contains__(self, key: str) -> bool:
        return key in self._rules

    def overrides(self, key: str) -> list[str]:
        """Names (categories, concepts) that have their own values for ``key``."""
        return sorted(self._table(key)[1])

    def _table(self, key: str) -> tuple[dict, dict]:
        if key not in self._rules:
            raise ConfigError(f"profile {self.name!r} has no rule {key!r}; its rules: {', '.join(self.keys())}")
        return self._rules[key]

    def rule(self, key: str, category: str | None = None, concept: str | None = None) -> Rule:
        """The rule ``key`` with the overrides for ``concept`` (first) or ``category`` applied."""
        base, subs = self._table(key)
        merged = dict(base)
        chosen = None
        for sel in (category, concept):
            if sel is None:
                continue
            for name, sub in subs.items():
                if name.lower() == str(sel).lower():
                    merged.update(sub)
                    chosen = sel
        where = f"profile {self.name!r}, rule {key!r}" + (f" [{chosen}]" if chosen else "")
        if "threshold" not in merged:
            have = ", ".join(sorted(subs)) or "none"
            raise ConfigError(f"{where}: no threshold for category={category!r} concept={concept!r} "
                              f"(overrides defined: {have}); add a default threshold or an override")
        return Rule(
            key=key,
            threshold=float(merged["threshold"]),
            source=merged["source"],
            relative=_norm_relative(merged.get("relative"), where),
            inconclusive_fails=bool(merged.get("inconclusive_fails", self.inconclusive_fails)),
            enabled=bool(merged.get("enabled", True)),
            description=str(merged.get("description", "")),
            category=category or concept,
            profile=self.name,
            confidence=self.confidence,
            alpha=float(merged.get("alpha", self.alpha)),
            min_n=int(merged.get("min_n", self.min_n)),
        )

    # convenience wrappers around hubkit_asserts.check / assert_rule
    def check(self, key: str, measurement, *, category: str | None = None, concept: str | None = None,
              examples=None):
        from hubkit_asserts.verdict import check

        return check(measurement, self.rule(key, category, concept), examples=examples)

    def assert_rule(self, key: str, measurement, *, category: str | None = None, concept: str | None = None,
                    examples=None):
        from hubkit_asserts.verdict import assert_rule

        return assert_rule(measurement, self.rule(key, category, concept), examples=examples)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def _merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_path(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    p = Path(s).expanduser()
    if s.endswith(".toml") or "/" in s or "\\" in s:
        if p.is_file():
            return p
        if not (PROFILE_DIR / p.name).is_file() or "/" in s:
            raise ConfigError(f"profile file {s} not found; built-in profiles: {', '.join(available_profiles())}")
        return PROFILE_DIR / p.name
    candidate = PROFILE_DIR / f"{s}.toml"
    if candidate.is_file():
        return candidate
    raise ConfigError(f"unknown profile {s!r}; available profiles: {', '.join(available_profiles())} "
                      f"(or pass a path to a .toml file)")


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise ConfigError(f"profile {path} extends itself (chain: {' -> '.join(str(s) for s in seen)})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"profile {path}: cannot read it as TOML ({exc})") from exc
    parent = data.pop("extends", None)
    if parent:
        base_path = _resolve_path(parent) if not Path(parent).is_absolute() else Path(parent)
        if not base_path.is_file():
            base_path = (path.parent / parent)
        data = _merge(_read(base_path, seen + (path,)), data)
    return data


def _collect(table: dict, prefix: str, rules: dict, where: str) -> None:
    for k, v in table.items():
        if not isinstance(v, dict):
            if prefix:
                raise ConfigError(f"{where}: {prefix}.{k} is a plain value in a table that is not a rule "
                                  f"(a rule needs threshold and source)")
            continue
        key = f"{prefix}.{k}" if prefix else k
        if "same_as" in v:
            continue  # resolved by _resolve_same_as once every rule is known
        if _is_rule(v):
            base = {kk: vv for kk, vv in v.items() if not isinstance(vv, dict)}
            subs = {kk: vv for kk, vv in v.items() if isinstance(vv, dict)}
            _validate_rule(base, subs, key, where)
            rules[key] = (base, subs)
        elif key == "profile":
            continue
        else:
            _collect(v, key, rules, where)


def _resolve_same_as(data: dict, rules: dict, where: str) -> None:
    """``same_as = "other.rule"``: this rule takes every value and override of that rule (after ``extends``
    merging), and may add its own ``description``. Two measures judged by one bar keep one set of numbers."""

    def walk(table: dict, prefix: str):
        for k, v in table.items():
            if isinstance(v, dict):
                key = f"{prefix}.{k}" if prefix else k
                if "same_as" in v:
                    yield key, v
                elif not _is_rule(v):
                    yield from walk(v, key)

    for key, table in walk(data, ""):
        target = table["same_as"]
        extra = set(table) - {"same_as", "description"}
        if extra:
            raise ConfigError(f"{where}: rule {key!r} has same_as and also {sorted(extra)}; a same_as rule takes "
                              f"all its values from {target!r} (only description may be added)")
        if target not in rules:
            raise ConfigError(f"{where}: rule {key!r} is same_as {target!r}, which is not a rule of this profile")
        base, subs = rules[target]
        rules[key] = ({**base, **({"description": table["description"]} if "description" in table else {})},
                      copy.deepcopy(subs))


def _validate_rule(base: dict, subs: dict, key: str, where: str) -> None:
    for name, table in [(None, base)] + list(subs.items()):
        label = f"{where}: rule {key!r}" + (f" [{name}]" if name else "")
        if "direction" in table:
            raise ConfigError(f"{label}: direction is declared by the measure {key!r}, not by the profile; "
                              f"remove it (a lower-is-better measure passes at or below its threshold)")
        unknown = set(table) - RULE_KEYS
        if unknown:
            raise ConfigError(f"{label}: unknown keys {sorted(unknown)}; allowed: {sorted(RULE_KEYS)}")
        merged = {**base, **table}
        if not isinstance(merged.get("source"), str) or not merged["source"].strip():
            raise ConfigError(f"{label}: every threshold needs a non-empty source string")
        if "threshold" in table or name is None and "threshold" in base:
            t = merged.get("threshold")
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise ConfigError(f"{label}: threshold must be a finite number, got {t!r}")
        _norm_relative(merged.get("relative"), label)
        if "alpha" in table:
            _check_alpha(table["alpha"], label)
        if "min_n" in table:
            _check_min_n(table["min_n"], label)
    if "threshold" not in base and base.get("enabled", True) is not False:
        # no default: every category must have its own threshold (or be switched off), or the error would come
        # only when a check asks for the rule, after its images were made
        missing = [c for c in CATEGORIES if not any(
            name.lower() == c and ("threshold" in t or t.get("enabled", True) is False) for name, t in subs.items())]
        if missing:
            raise ConfigError(f"{where}: rule {key!r} has no threshold: none by default and none for the categories "
                              f"{', '.join(missing)}; add threshold = <number> to [{key}] (or to each "
                              f"[{key}.<category>])")


def _check_alpha(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
        raise ConfigError(f"{where}: alpha (the one-sided error rate of a decision) must be a number in (0, 0.5), "
                          f"got {value!r}")
    return float(value)


def _check_min_n(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: min_n must be a whole number >= 1, got {value!r}")
    return value


def load_profile(name_or_path: str | Path = "default") -> Profile:
    """Load ``hub_asserts/profiles/<name>.toml`` or a ``.toml`` path; ``ConfigError`` lists the choices."""
    path = _resolve_path(name_or_path)
    data = _read(path)
    where = f"profile {path.name}"
    top = data.get("profile", {}) if isinstance(data.get("profile"), dict) else {}
    settings = {**{k: v for k, v in data.items() if not isinstance(v, dict)}, **top}
    unknown = {k for k, v in data.items() if not isinstance(v, dict)} - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    confidence = float(settings.get("confidence", 0.95))
    if not 0 < confidence < 1:
        raise ConfigError(f"{where}: confidence must be in (0, 1), got {confidence}")
    alpha = _check_alpha(settings.get("alpha", DEFAULT_ALPHA), where)
    min_n = _check_min_n(settings.get("min_n", DEFAULT_MIN_N), where)
    rules: dict = {}
    _collect({k: v for k, v in data.items() if isinstance(v, dict)}, "", rules, where)
    _resolve_same_as({k: v for k, v in data.items() if isinstance(v, dict)}, rules, where)
    if not rules:
        raise ConfigError(f"{where}: no rules found (a rule is a table with threshold and source)")
    return Profile(
        name=str(settings.get("name", path.stem)),
        path=path,
        data=data,
        inconclusive_fails=bool(settings.get("inconclusive_fails", True)),
        confidence=confidence,
        description=str(settings.get("description", "")),
        _rules=rules,
        alpha=alpha,
        min_n=min_n,
    )
