from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class MeasureSpec:
    name: str            # also the profile key of its threshold rule
    direction: str       # "lower" or "higher" is better
    aggregation: str     # how the number is formed: proportion, ratio, mean, fid, ...
    fn: Callable


MEASURES: dict[str, MeasureSpec] = {}


def measure(name: str, *, direction: str, aggregation: str):
    def register(fn):
        MEASURES[name] = MeasureSpec(name, direction, aggregation, fn)
        fn.measure = MEASURES[name]
        return fn

    return register
