"""Unlearning methods that write checkpoints ``--model`` accepts: ESD, UCE (weight edits) and SLD (a method config).

Python::

    from hubkit.microworld.unlearn import esd, uce, sld
    esd(base_folder, "Pointelli", Path("out/esd-pointelli"), steps=200, lr=5e-5, seed=0)

CLI wiring (``hubkit unlearn esd|uce|sld``)::

    for name, (add_arguments, run) in COMMANDS.items():
        sub = subparsers.add_parser(name); add_arguments(sub); sub.set_defaults(func=run)
"""

from __future__ import annotations

from typing import Callable


def esd(*args, **kwargs):
    from hubkit.microworld.unlearn.esd import esd as _esd

    return _esd(*args, **kwargs)


def uce(*args, **kwargs):
    from hubkit.microworld.unlearn.uce import uce as _uce

    return _uce(*args, **kwargs)


def sld(*args, **kwargs):
    from hubkit.microworld.unlearn.sld import sld as _sld

    return _sld(*args, **kwargs)


def _command(module: str) -> tuple[Callable, Callable]:
    import importlib

    def add_arguments(parser):
        return importlib.import_module(f"hubkit.microworld.unlearn.{module}").add_arguments(parser)

    def run(args):
        return importlib.import_module(f"hubkit.microworld.unlearn.{module}").run(args)

    return add_arguments, run


#: ``hubkit unlearn <name>``: (add_arguments(parser), run(args) -> Path of the checkpoint)
COMMANDS: dict[str, tuple[Callable, Callable]] = {name: _command(name) for name in ("esd", "uce", "sld")}

__all__ = ["esd", "uce", "sld", "COMMANDS"]
