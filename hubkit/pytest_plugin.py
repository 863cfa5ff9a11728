"""The pytest plugin (entry point ``pytest11: hubkit``): options, ini keys, aspect markers, run config.

Importing this module must stay cheap (no torch): it is loaded by every pytest run once hubkit is
installed. Heavy work happens in session fixtures (``fixtures/``), on first use.
"""

from __future__ import annotations

import os
import re

import pytest

from hubkit.budgets import BUDGETS, LEVELS, default_budget
from hubkit.devices import bounded_openmp_waiting

ASPECTS = {
    "faithfulness": "HUB aspect 1: target proportion, general and target image quality",
    "alignment": "HUB aspect 2: general and selective image-text alignment",
    "pinpoint": "HUB aspect 3: neighbouring concepts survive the erasure",
    "multilingual": "HUB aspect 4: the concept stays gone in ES/FR/DE/IT/PT",
    "robustness": "HUB aspect 5: adversarial prompts (static sets and attacks on the model)",
    "efficiency": "HUB aspect 6: inference and training cost",
}

# option name -> (ini key, help, kwargs)
_OPTIONS = {
    "--model": ("hubkit_model", "unlearned checkpoint to evaluate (any format; default: a shipped micro-world ESD model)", {}),
    "--base-model": ("hubkit_base_model", "original model every number is compared with (default: the micro-world base)", {}),
    "--concept": ("hubkit_concepts", "concept to evaluate (repeatable; default: the checkpoint's declared concept)", {"action": "append"}),
    "--prompts": ("hubkit_prompts", "HUB-layout prompt folder (default: the micro world's)", {}),
    "--budget": ("hubkit_budget", "how many samples per aspect: smoke, ci, full (HUB's counts), auto (rounds until each check "
                                  "is decided, up to HUB's counts; the default with a --base-model other than the micro "
                                  "world's) or a registered budget", {}),
    "--profile": ("hubkit_profile", "threshold profile: a name in hub_asserts/profiles or a .toml path", {}),
    "--device": ("hubkit_device", "cpu, cuda or cuda:N (default: cuda spread over xdist workers if present, else cpu)", {}),
    "--image-cache": ("hubkit_image_cache", "content-addressed image store (default: .hubkit-cache/images)", {}),
    "--seed": ("hubkit_seed", "global seed mixed into every per-image seed (integer)", {}),
    "--judges": ("hubkit_judges", "TOML file with a [judges] table (who judges each role, with which weights), or a "
                                  "shipped one by name (hub); default: the prompt folder's hubkit.toml", {}),
    "--trust-checkpoint": ("hubkit_trust_checkpoint", "allow full unpickling of .pt/.bin/.ckpt files (runs their code!)", {"action": "store_true"}),
    "--dtype": ("hubkit_dtype", "weights and activations: float16, bfloat16 or float32 (default: float16 on CUDA, float32 "
                                "elsewhere); part of every image's key", {}),
    "--compile": ("hubkit_compile", "torch.compile the UNet (opt-in; its warm-up is timed and reported)", {"action": "store_true"}),
    "--ray": ("hubkit_ray", "make missing images on a Ray cluster, one actor per GPU: auto (the cluster this machine "
                            "belongs to, or a local one) or ADDRESS (ray://host:10001); needs pip install hubkit[ray]", {}),
    "--results": ("hubkit_results", "where the run's results.json goes (default: reports/results.json under the rootdir)", {}),
}
_FLAGS = {"--trust-checkpoint", "--compile"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hubkit", "concept-unlearning evaluation (HUB)")
    for flag, (ini, help_text, kwargs) in _OPTIONS.items():
        dest = ini
        group.addoption(flag, dest=dest, default=None, help=help_text, **kwargs)
        ini_type = "linelist" if flag == "--concept" else ("bool" if flag in _FLAGS else "string")
        parser.addini(ini, help=f"ini equivalent of {flag}", type=ini_type, default=None)


def _value(config: pytest.Config, ini: str):
    value = getattr(config.option, ini, None)
    if value in (None, False, []):
        value = config.getini(ini)
    return value or None


def _usage(message: str) -> pytest.UsageError:
    return pytest.UsageError(message)


def run_options(config: pytest.Config) -> dict:
    """The validated hubkit options of this run, with ini fallbacks (no heavy imports)."""
    # no --budget: ci for the embedded world, auto (rounds until decided) against another base model
    budget = _value(config, "hubkit_budget") or default_budget(_value(config, "hubkit_base_model"))
    if budget not in BUDGETS:  # built-in levels and any a package registers (entry points "hubkit.budgets")
        raise _usage(f"--budget / hubkit_budget: {budget!r} is not a budget; use one of {', '.join(LEVELS)}"
                     + "".join(f", {name}" for name in BUDGETS.names() if name not in LEVELS))
    budget = BUDGETS.canonical(budget)
    seed = _value(config, "hubkit_seed") or 0
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise _usage(f"--seed / hubkit_seed: {seed!r} is not an integer") from None
    device = _value(config, "hubkit_device")
    if device and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
        raise _usage(f"--device / hubkit_device: {device!r} is not a device; use cpu, cuda, cuda:N or mps")
    concepts = _value(config, "hubkit_concepts") or []
    dtype = _value(config, "hubkit_dtype")
    if dtype:
        from hubkit.errors import ConfigError
        from hubkit.settings import normalise_dtype

        try:
            dtype = normalise_dtype(dtype)
        except ConfigError:
            raise _usage(f"--dtype / hubkit_dtype: {dtype!r} is not a dtype; use float16, bfloat16 or float32") from None
    return {
        "model": _value(config, "hubkit_model"),
        "base_model": _value(config, "hubkit_base_model"),
        "concepts": [c.strip() for c in concepts if c.strip()],
        "prompts": _value(config, "hubkit_prompts"),
        "budget": budget,
        "profile": _value(config, "hubkit_profile"),
        "device": device,
        "image_cache": _value(config, "hubkit_image_cache"),
        "seed": seed,
        "trust_checkpoint": bool(_value(config, "hubkit_trust_checkpoint")),
        "judges": _value(config, "hubkit_judges"),
        "dtype": dtype,
        "compile": bool(_value(config, "hubkit_compile")),
        "ray": _value(config, "hubkit_ray"),
    }


_KEYWORDS = {"and", "or", "not"}
_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def join_bare_words(expression: str) -> str:
    """Let ``-k "faithfulness and Van Gogh"`` work: adjacent bare words become ``(Van and Gogh)``.

    pytest's -k grammar has no spaces inside identifiers, but concept names do ("Van Gogh", "Emma
    Watson"). Every identifier matches a substring of the test id, so "Van and Gogh" selects exactly
    the ids that contain both words. Words lose their accents, as test ids do ("Édouard" -> "Edouard"), and
    ``concept:`` followed by words is one keyword: ``concept:Van Gogh`` -> ``concept:Van_Gogh``, which only
    that concept's tests carry (``hubkit_fixtures.params``), not the neighbour tests of others.
    """
    from hubkit.prompts.catalogue import strip_accents

    tokens = [tok if tok in ("(", ")") else strip_accents(tok) for tok in _TOKEN.findall(expression)]
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run and run[0].casefold().startswith("concept:"):
            out.append("_".join(run))
            run.clear()
        elif run:
            out.append(run[0] if len(run) == 1 else "(" + " and ".join(run) + ")")
            run.clear()

    for tok in tokens:
        if tok in ("(", ")") or tok in _KEYWORDS:
            flush()
            out.append(tok)
        else:
            run.append(tok)
    flush()
    return " ".join(out).replace("( ", "(").replace(" )", ")")


def _group_by_concept(config: pytest.Config) -> None:
    """``-n N`` alone means ``--dist loadgroup`` here: each concept's tests (marked ``xdist_group`` by
    ``hubkit_fixtures.params``) go to one worker, which makes that concept's base and model images once. A
    ``--dist`` the user gives wins."""
    if getattr(config.option, "dist", None) != "load":
        return
    given = config.invocation_params.args
    if any(a == "--dist" or a.startswith("--dist=") or a == "-d" or a == "--distload" for a in given):
        return
    config.option.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, description in ASPECTS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    keyword = getattr(config.option, "keyword", "")
    if keyword:
        config.option.keyword = join_bare_words(keyword)
    # Tests may never touch the hub: a lookup can hang for minutes or return a 2-token tokenizer.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HUBKIT_CACHE_DIR", str(config.rootpath / ".hubkit-cache"))
    bounded_openmp_waiting()  # before torch is imported: a busy machine must not stall torch's threads
    _group_by_concept(config)
    config.hubkit_options = run_options(config)  # type: ignore[attr-defined]
    # Session fixtures and report hooks live in their own modules (thin layers over hubkit).
    if not config.pluginmanager.has_plugin("hubkit.fixtures"):
        import hubkit_fixtures
        import hubkit_reports.html
        import hubkit_reports.results

        config.pluginmanager.register(hubkit_fixtures, "hubkit.fixtures")
        config.pluginmanager.register(hubkit_reports.html, "hubkit.reports")
        config.pluginmanager.register(hubkit_reports.results, "hubkit.results")
