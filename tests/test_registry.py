"""One registry idiom: every pluggable kind is a ``hubkit.registry.Registry`` with the same names, errors and plugins."""

from __future__ import annotations

import pytest

from hubkit.errors import ConfigError, RegistryError
from hubkit.registry import Registry


def _all_registries():
    from hubkit.aspects import MEASURES
    from hubkit.attacks import ATTACKS
    from hubkit.budgets import BUDGETS
    from hubkit.cli import COMMANDS
    from hubkit.judges import JUDGES
    from hubkit.metrics import METRICS
    from hubkit.models import FORMATS, METHODS
    from hubkit.unlearn import UNLEARNING
    from hubkit.worlds import WORLDS

    return {"measure": MEASURES, "attack": ATTACKS, "budget": BUDGETS, "command": COMMANDS, "judge": JUDGES,
            "metric": METRICS, "format": FORMATS, "method": METHODS, "unlearning": UNLEARNING, "world": WORLDS}


@pytest.mark.parametrize("kind", sorted(_all_registries()))
def test_every_kind_is_a_registry_with_entries_and_one_unknown_name_error(kind):
    registry = _all_registries()[kind]
    assert isinstance(registry, Registry)
    assert registry.names(), f"no {kind} registered"
    assert registry.group.startswith("hubkit.")
    with pytest.raises(RegistryError) as err:
        registry.get("no-such-name-xyz")
    message = str(err.value)
    assert "\n" not in message and "no-such-name-xyz" in message
    assert registry.names()[0] in message  # the error lists what is registered
    assert isinstance(err.value, ConfigError)  # the pytest layer turns it into one usage line


def test_names_are_matched_case_and_dash_insensitively_and_aliases_resolve():
    r = Registry("gadget", group="hubkit.test-gadgets")
    r.register("my-thing", "mt", obj=object())
    assert r.get("MY_THING") is r.get(" my-thing ") is r.get("MT")
    assert r.names() == ["my-thing"] and r.canonical("mt") == "my-thing"
    assert "my_thing" in r and "other" not in r


def test_a_second_class_under_a_taken_name_is_refused():
    r = Registry("gadget", group="hubkit.test-gadgets")

    @r.register("thing")
    class A:
        pass

    class B:
        pass

    with pytest.raises(RegistryError, match="already registered"):
        r.register("thing", obj=B)
    assert A.name == "thing"


def test_build_checks_options_against_the_signature():
    r = Registry("gadget", group="hubkit.test-gadgets")

    @r.register("thing")
    class Thing:
        def __init__(self, size: int = 1):
            self.size = size

    assert r.build("thing", size=3).size == 3
    with pytest.raises(RegistryError, match=r"gadget 'thing' does not accept options \['colour'\]"):
        r.build("thing", colour="red")


def test_entry_points_register_and_a_broken_one_fails_only_its_own_name(monkeypatch):
    import hubkit.registry as module

    class EP:
        def __init__(self, name, value, load):
            self.name, self.value, self.load = name, value, load

    def broken():
        raise ImportError("no module named missing")

    eps = [EP("good", "pkg:Good", lambda: "the good one"), EP("bad", "missing:Thing", broken)]
    monkeypatch.setattr(module.metadata, "entry_points",
                        lambda group: eps if group == "hubkit.test-gadgets" else [])
    r = Registry("gadget", group="hubkit.test-gadgets")
    r.register("builtin", obj="built in")
    assert r.get("good") == "the good one" and r.get("builtin") == "built in"
    assert r.names() == ["builtin", "good"]
    with pytest.raises(RegistryError, match=r"gadget 'bad' \(entry point missing:Thing in the group "
                                            r"'hubkit.test-gadgets'\) failed to import: ImportError"):
        r.get("bad")
    assert len(r.broken()) == 1


def test_builtins_are_imported_only_when_first_needed():
    import sys

    r = Registry("gadget", group="hubkit.test-gadgets", builtins=("hubkit.languages",))
    sys.modules.pop("hubkit.languages", None)
    assert "hubkit.languages" not in sys.modules
    with pytest.raises(RegistryError):
        r.get("x")
    assert "hubkit.languages" in sys.modules
