"""Worlds and commands reach the engine through registries: the default world, its presets, the `hubkit` command."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hubkit.errors import ConfigError, RegistryError
from hubkit.session import RunConfig
from hubkit.worlds import DEFAULT_WORLD, WORLDS, World, WorldConcept, default_world, find_concept, world_for_base


def test_the_micro_world_is_the_default_and_resolves_a_bare_run():
    from hubkit_micro import paths

    world = default_world()
    assert world.name == DEFAULT_WORLD == "micro" and world is paths.WORLD
    config = RunConfig().resolved()
    assert Path(config.model) == paths.unlearned("esd-pointelli")
    assert Path(config.base_model) == paths.BASE and Path(config.prompts) == paths.PROMPTS
    assert RunConfig(base_model=str(paths.BASE)).resolved().prompts == str(paths.PROMPTS)


def test_another_base_model_needs_its_prompts(tmp_path):
    with pytest.raises(ConfigError, match="--prompts is required with a --base-model other than the default world"):
        RunConfig(base_model=str(tmp_path)).resolved()
    config = RunConfig(model="m", base_model=str(tmp_path), prompts="p").resolved()
    assert (config.model, config.prompts) == ("m", "p")


def test_worlds_answer_concepts_and_presets(tmp_path):
    from hubkit_micro import paths
    from hubkit_micro.unlearn import MICRO_PRESETS

    assert find_concept("WEAPON") == WorldConcept("weapon", ("weapon", "knife", "sword", "axe", "spear"), "nsfw",
                                                  find_concept("weapon").neighbours)
    assert find_concept("a red bicycle") is None
    assert world_for_base(paths.BASE) is paths.WORLD and world_for_base(tmp_path) is None
    assert paths.WORLD.unlearning_presets("esd", None) == MICRO_PRESETS["esd"]
    from hubkit_micro.unlearn import ESD_STYLE_TEMPLATES

    assert paths.WORLD.unlearning_presets("esd", "Pointelli")["templates"] == ESD_STYLE_TEMPLATES
    assert paths.WORLD.unlearning_presets("esd", "Pointelli")["direction"] == "context"
    assert "direction" not in paths.WORLD.unlearning_presets("esd", "Zorbo")
    for method in ("receler", "advunlearn"):  # ESD's target, so ESD's way of erasing a style
        assert paths.WORLD.unlearning_presets(method, "Pointelli")["direction"] == "context"
        assert "direction" not in paths.WORLD.unlearning_presets(method, "Zorbo")
    # HUB's celebrity anchor draws the micro world's one described man, the celebrity himself: AC and SA map to the
    # world's generic noun instead, for a celebrity only
    from hubkit.unlearn.ac import ANCHORS
    from hubkit_micro.unlearn import CELEBRITY_ANCHOR

    assert CELEBRITY_ANCHOR != ANCHORS["celebrity"]
    assert paths.WORLD.unlearning_presets("ac", "Dario Voss")["anchor"] == CELEBRITY_ANCHOR
    assert paths.WORLD.unlearning_presets("sa", "Dario Voss")["surrogate"] == CELEBRITY_ANCHOR
    for method in ("ac", "sa"):
        assert not {"anchor", "surrogate"} & set(paths.WORLD.unlearning_presets(method, "Zorbo"))


def test_a_third_party_world_registers_and_is_checked(tmp_path):
    world = World("toy", tmp_path / "base", tmp_path / "model", tmp_path / "prompts",
                  concept=lambda text, language: WorldConcept("gizmo", ("gizmo", "widget")) if text == "gizmo" else None)
    WORLDS.register("toy", obj=world)
    try:
        assert find_concept("gizmo").keywords == ("gizmo", "widget")
        assert default_world().name == "micro"
        with pytest.raises(RegistryError, match="must be a hubkit.worlds.World"):
            WORLDS.register("broken", obj=object())
    finally:
        WORLDS.unregister("toy")


def test_the_hubkit_command_gathers_its_subcommands(capsys):
    from hubkit.cli import COMMANDS, build_parser, main

    assert {"micro", "unlearn"} <= set(COMMANDS.names())
    args = build_parser().parse_args(["micro", "check", "--n", "8"])
    assert args.n == 8 and args.func.__module__ == "hubkit_micro.cli"
    args = build_parser().parse_args(["unlearn", "esd", "--concept", "Pointelli", "--out", "x"])
    assert args.preset == "auto" and Path(args.base) == default_world().base_model
    assert main(["nosuchcommand"]) == 2
    assert "unknown command 'nosuchcommand'" in capsys.readouterr().err


def test_unlearn_presets_follow_the_base(tmp_path):
    from hubkit.unlearn.common import cli_kwargs
    from hubkit_micro import paths
    from hubkit_micro.unlearn import presets

    def ns(**kw):
        return argparse.Namespace(**{"base": tmp_path, "preset": "auto", "concept": ["weapon"], **kw})

    assert cli_kwargs(ns(), "esd", {}) == {}
    assert cli_kwargs(ns(base=paths.BASE), "esd", {}) == presets("esd", "weapon")
    assert presets("esd", "weapon")["eta"] == 8.0
    assert cli_kwargs(ns(base=paths.BASE, preset="paper"), "esd", {}) == {}
    assert cli_kwargs(ns(preset="micro"), "uce", {}) == {}
