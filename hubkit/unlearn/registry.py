"""The registry of unlearning methods: ``hubkit unlearn <name>`` and ``UNLEARNING.get(name).function(...)``.

Each method module registers one ``UnlearningMethod``; third parties add theirs through the entry-point group
``hubkit.unlearning`` (an ``UnlearningMethod`` object, or a module whose import registers one)::

    [project.entry-points."hubkit.unlearning"]
    salun = "my_package.salun:METHOD"
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hubkit.errors import RegistryError
from hubkit.registry import Registry


@dataclass(frozen=True)
class UnlearningMethod:
    name: str
    help: str                                              # one line for ``hubkit unlearn --help``
    function: Callable[..., Path]                          # fn(base, concept, out, *, seed=0, **options) -> checkpoint
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]               # prints the checkpoint path, returns 0


def _check(name: str, entry: object) -> None:
    if not isinstance(entry, UnlearningMethod):
        raise RegistryError(f"unlearning method {name!r} must be a hubkit.unlearn.UnlearningMethod, "
                            f"not {type(entry).__name__}")


UNLEARNING: Registry[UnlearningMethod] = Registry(
    "unlearning method", group="hubkit.unlearning", check=_check, where="hubkit.unlearn.UNLEARNING",
    builtins=("hubkit.unlearn.esd", "hubkit.unlearn.uce", "hubkit.unlearn.sld", "hubkit.unlearn.ac", "hubkit.unlearn.sa",
              "hubkit.unlearn.salun", "hubkit.unlearn.mace", "hubkit.unlearn.receler", "hubkit.unlearn.advunlearn"),
)
