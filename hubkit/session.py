"""One evaluation run: the two models, the prompt folder, the image store, the judges and the budget.

Everything is loaded lazily and once (per process, i.e. per xdist worker). The pytest fixtures are a
thin layer over a ``Session``; the same object drives a run from plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

from hubkit.budgets import BUDGETS, Budget
from hubkit.errors import ConfigError

# Who judges when the prompt folder's manifest names nobody for a role (HUB's folder names no judges).
DEFAULT_JUDGE = "clip-zeroshot"


@dataclass(frozen=True)
class RunConfig:
    model: str | None = None
    base_model: str | None = None
    concepts: tuple[str, ...] = ()
    prompts: str | None = None
    budget: str = "ci"
    profile: str | None = None  # None: the prompt folder's `profile` (manifest), else "default"
    device: str | None = None
    image_cache: str | None = None
    seed: int = 0
    trust_checkpoint: bool = False

    @classmethod
    def from_options(cls, options: dict) -> "RunConfig":
        return cls(**{**options, "concepts": tuple(options.get("concepts") or ())})

    def resolved(self) -> "RunConfig":
        """Fill the embedded-default paths: the default world (``hubkit.worlds``) when nothing else is given."""
        from hubkit.worlds import default_world

        world = None
        prompts = self.prompts
        if prompts is None and self.base_model is not None:
            try:
                world = default_world()
            except ConfigError:
                world = None
            if world is None or Path(self.base_model).resolve() != Path(world.base_model).resolve():
                raise ConfigError("--prompts is required with a --base-model other than the default world's base: "
                                  "point it at a HUB checkout's prompts/ folder")
        if world is None and (self.model is None or self.base_model is None or prompts is None):
            world = default_world()
        model = self.model or str(world.model)
        base = self.base_model or str(world.base_model)
        prompts = str(world.prompts) if prompts is None else prompts
        cache = self.image_cache or ".hubkit-cache/images"
        return RunConfig(model, base, self.concepts, prompts, self.budget, self.profile, self.device, cache,
                         self.seed, self.trust_checkpoint)


class Session:
    def __init__(self, config: RunConfig):
        self.config = config.resolved()

    # ---------------------------------------------------------------- configuration
    @cached_property
    def budget(self) -> Budget:
        return BUDGETS.get(self.config.budget)

    @cached_property
    def profile_name(self) -> str:
        """The threshold profile that judges this run: --profile, else the prompt folder's, else "default".

        The engine only names it; the verdict layer (``hubkit_asserts``, through the fixtures) reads it."""
        return self.config.profile or self.prompts.manifest.get("profile") or "default"

    @cached_property
    def prompts(self):
        from hubkit.prompts import load_prompt_folder

        return load_prompt_folder(Path(self.config.prompts))

    @cached_property
    def model_metadata(self) -> dict:
        """The checkpoint's declared metadata, read without loading weights (concept, method, cost)."""
        from hubkit.models import read_metadata

        return read_metadata(self.config.model)

    def concept_names(self) -> list[str]:
        """--concept, else the checkpoint's declared concept(s), else every concept of the prompt folder."""
        known = self.prompts.concepts
        wanted = list(self.config.concepts)
        if not wanted:
            declared = self.model_metadata.get("concept") or self.model_metadata.get("concepts")
            if isinstance(declared, str):
                declared = [c.strip() for c in declared.split(",") if c.strip()]
            wanted = list(declared or [])
            # HUB's three NSFW concepts share one model: a checkpoint declaring "NSFW" covers all of them.
            wanted = [c for w in wanted for c in ([n for n, i in known.items() if i.model_key == w] or [w])]
        if not wanted:
            wanted = list(known)
        lookup = {name.casefold(): name for name in known}
        unknown = [c for c in wanted if c.casefold() not in lookup]
        if unknown:
            raise ConfigError(f"--concept {unknown[0]!r} is not in the prompt folder {self.config.prompts}; known: {', '.join(known)}")
        return [lookup[c.casefold()] for c in wanted]

    def concept(self, name: str):
        return self.prompts.concepts[name]

    # ---------------------------------------------------------------- heavy objects
    @cached_property
    def device(self) -> str:
        from hubkit.devices import choose_device, configure_threads

        configure_threads()
        return choose_device(self.config.device)

    @cached_property
    def base(self):
        from hubkit.models import load_model_cached

        return load_model_cached(self.config.base_model, base=None, device=self.device,
                                 trust_checkpoint=self.config.trust_checkpoint)

    @cached_property
    def model(self):
        from hubkit.models import load_model_cached

        return load_model_cached(self.config.model, base=self.config.base_model, device=self.device,
                                 trust_checkpoint=self.config.trust_checkpoint)

    @cached_property
    def settings(self):
        from hubkit.settings import GenerationSettings

        return GenerationSettings.from_model_folder(Path(self.config.base_model))

    @cached_property
    def store(self):
        from hubkit.store import ImageStore

        return ImageStore(Path(self.config.image_cache))

    @cached_property
    def batch_size(self) -> int:
        pixels = self.settings.height * self.settings.width
        if self.device.startswith("cuda"):
            return 64 if pixels <= 128 * 128 else 8
        return 64 if pixels <= 128 * 128 else 2

    # ---------------------------------------------------------------- judges, by role
    @cached_property
    def _judges(self) -> dict:
        return {}

    def judge(self, name: str):
        from hubkit.judges import JUDGES

        if name not in self._judges:
            self._judges[name] = JUDGES.build(name)
        return self._judges[name]

    def role_assignments(self) -> list[tuple[str, str, str]]:
        """(judge name, role, where it is configured) for every role this run fills."""
        manifest = self.prompts.manifest
        where = f"{self.config.prompts}/hubkit.toml"
        out = [(self.concept(c).judge, "Detector", f"the concept judge of {c!r} ({where}, concepts.{c}.judge)")
               for c in self.concept_names()]
        out += [(manifest.get("noun_judge", DEFAULT_JUDGE), "Detector", f"the noun judge ({where}, noun_judge)"),
                (self._alignment_judge_name, "ImageTextScorer", f"the alignment judge ({where}, feature_judge)"),
                (self._fid_judge_name, "FeatureExtractor", f"the FID judge ({where}, fid_judge or feature_judge)")]
        if manifest.get("quality_judge"):
            out.append((manifest["quality_judge"], "QualityScorer", f"the quality judge ({where}, quality_judge)"))
        return out

    def check_roles(self) -> None:
        """Fail at start, in one line, when a configured judge lacks the role it is configured for."""
        from hubkit.judges import JUDGES, ROLES, roles_of

        for name, role, where in self.role_assignments():
            cls = JUDGES.get(name)
            if not issubclass(cls, ROLES[role]):
                fits = [n for n in JUDGES.names() if role in roles_of(JUDGES.get(n))]
                raise ConfigError(f"judge {name!r}, configured as {where}, lacks the role {role} (its roles: "
                                  f"{', '.join(roles_of(cls)) or 'none'}); configure a judge with that role: "
                                  f"{', '.join(fits) or 'none registered'}")

    def concept_judge(self, concept: str):
        return self.judge(self.concept(concept).judge)

    def noun_judge(self, concept: str):
        """Who says whether an ordinary noun (a neighbour, a selective-alignment noun) is in an image."""
        return self.judge(self.prompts.manifest.get("noun_judge", DEFAULT_JUDGE))

    @cached_property
    def _alignment_judge_name(self) -> str:
        return self.prompts.manifest.get("feature_judge", DEFAULT_JUDGE)

    @cached_property
    def _fid_judge_name(self) -> str:
        return self.prompts.manifest.get("fid_judge", self._alignment_judge_name)

    @cached_property
    def alignment_judge(self):
        """The image-text scorer of general alignment (manifest key ``feature_judge``)."""
        return self.judge(self._alignment_judge_name)

    @cached_property
    def fid_judge(self):
        """The FID feature extractor (manifest key ``fid_judge``, else the alignment judge)."""
        return self.judge(self._fid_judge_name)

    @cached_property
    def quality_judge(self):
        """The quality scorer (manifest key ``quality_judge``); None when the folder names none."""
        name = self.prompts.manifest.get("quality_judge")
        return self.judge(name) if name else None

    def pinpoint_template(self, concept: str) -> str:
        """``a photo of {noun}`` (HUB), unless the folder's manifest sets one for this concept or globally."""
        spec = self.prompts.manifest.get("concepts", {}).get(concept, {})
        return spec.get("pinpoint_template") or self.prompts.pinpoint_template

    # ---------------------------------------------------------------- generation
    def images(self, which: str, set_name: str, prompts: Sequence, per_prompt: int = 1, desc: str = ""):
        """Images of ``prompts`` (``Prompt(index, text)``) by the base or the unlearned model, from the store.

        Seeds depend only on (prompt set, prompt index, image number, --seed), so the base and the
        unlearned model see identical noise and any subset or order reproduces the same pictures.
        """
        from hubkit.generate import ImageRequest, image_seed

        loaded = {"base": self.base, "model": self.model}[which]
        requests = [
            ImageRequest(prompt=p.text, seed=image_seed(set_name, p.index, j, self.config.seed))
            for p in prompts
            for j in range(per_prompt)
        ]
        return self.store.images(loaded, requests, self.settings, batch_size=self.batch_size,
                                 desc=desc or f"{which}: {set_name}")

    def subsample(self, prompts: Sequence, n: int, salt: str):
        from hubkit.prompts import subsample

        return subsample(list(prompts), n, seed=f"{self.config.seed}:{salt}")
