"""The ``[judges]`` table: who judges each role of a run, and with which options (one place to say it).

It sits in the prompt folder's ``hubkit.toml``, or in a file given by ``--judges FILE`` (ini ``hubkit_judges``;
``--judges hub`` names the shipped ``hubkit/judges/hub.toml``, HUB's own choices). A ``--judges`` file
replaces the folder's table; a role neither names falls back to the folder manifest's older keys
(``judge`` per concept, ``noun_judge``, ``feature_judge``, ``fid_judge``, ``quality_judge``)::

    [judges]
    noun = "clip-l14"                  # a judge defined under [judges.define], or a registered judge's name
    alignment = "clip-score"           # the image-text scorer of general alignment
    fid = "inception"                  # the FID feature extractor
    quality = "laion-aesthetic"        # the quality scorer of target images (leave it out: those tests skip)
    fid_reference = "coco30k.npz"      # optional: FID reference statistics (mu, sigma) of the fid judge's features

    [judges.concept]                   # the concept judge per category, or per concept (a concept beats its category)
    style = "clip-l14"
    nsfw = "q16"
    "Nudity" = { judge = "nudenet", threshold = 0.6 }   # an inline table defines a judge wherever a name fits
    # or one judge for every concept:  concept = "clip-l14"  (directly under [judges])

    [judges.define.clip-l14]           # a configured judge: a registered judge and its options
    judge = "clip-zeroshot"
    arch = "ViT-L-14-quickgelu"
    pretrained = "weights/clip-vit-l14.safetensors"

File options (each judge's ``weight_options``: ``pretrained``, ``prompts``, ``mlp``, ``weights``, ...) resolve
relative to the table's file, expand ``~``, and may be ``hf://owner/repo[@revision]/path/in/repo``, looked up
in the Hugging Face cache only (never downloaded). Everything is checked when the table is read (roles,
judge names, options, each judge has its role) and when a judge is built (files); every error is one line
that names the file, the role and the fix.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubkit.errors import ConfigError, JudgeError, RegistryError

#: role key -> (the role type its judge needs, what the role is)
ROLE_KEYS: dict[str, tuple[str, str]] = {
    "concept": ("Detector", "the concept judge"),
    "noun": ("Detector", "the noun judge (pinpoint, selective alignment)"),
    "alignment": ("ImageTextScorer", "the image-text scorer (general alignment)"),
    "fid": ("FeatureExtractor", "the FID feature extractor"),
    "quality": ("QualityScorer", "the quality scorer (target image quality)"),
}
OTHER_KEYS = ("define", "fid_reference")
CATEGORIES = ("celebrity", "style", "ip", "nsfw")
SHIPPED = Path(__file__).resolve().parent
HF_SCHEME = "hf://"


def _fold(name: str) -> str:
    from hubkit.prompts.catalogue import fold

    return fold(name)


@dataclass(frozen=True)
class JudgeSpec:
    """One configured judge: a registered judge, its options, and where the configuration said so."""

    judge: str                     # the registered judge's canonical name
    options_json: str = "{}"       # the options as canonical JSON (hashable)
    label: str = ""                # what the table calls it: a [judges.define] name, or the judge's name
    where: str = ""                # "FILE: [judges] concept.style", for messages
    base: str | None = None        # the folder relative file options resolve against

    @classmethod
    def named(cls, judge: str, where: str = "") -> "JudgeSpec":
        """A judge by name with no options (the manifest's older keys)."""
        return cls(str(judge), "{}", str(judge), where)

    @property
    def options(self) -> dict:
        return json.loads(self.options_json)

    @property
    def key(self) -> tuple:
        """Equal for two roles that configure the same judge the same way (a session builds it once)."""
        return (self.judge, self.options_json, self.base)

    def judge_class(self):
        from hubkit.judges import JUDGES

        return JUDGES.get(self.judge)

    def on_device(self, device: str) -> "JudgeSpec":
        """This spec with ``device`` added, when the judge takes a ``device`` option and the table set none: a run on a
        GPU judges on it too (in the judge's own batches) unless the table pins a device. (A session memoises judges by
        the configured spec's ``key``, taken before this.)"""
        options = self.options
        if "device" in options:
            return self
        try:
            accepts = "device" in inspect.signature(self.judge_class().__init__).parameters
        except (TypeError, ValueError):
            accepts = False
        if not accepts:
            return self
        return dataclasses.replace(self, options_json=json.dumps({**options, "device": device}, sort_keys=True))

    def resolved_options(self) -> dict:
        """The options with every file option resolved to an existing local path (one-line JudgeError if not)."""
        options = self.options
        cls = self.judge_class()
        for name, hint in getattr(cls, "weight_options", {}).items():
            value = options.get(name)
            if isinstance(value, str) and value:
                options[name] = str(self._file(name, value, hint))
        for name in getattr(cls, "repo_options", {}):  # a model folder, or a repo id the judge finds in the HF cache
            value = options.get(name)
            if isinstance(value, str) and value and not value.startswith(HF_SCHEME):
                path = Path(value).expanduser()
                if not path.is_absolute() and self.base and (Path(self.base) / path).exists():
                    options[name] = str(Path(self.base) / path)
        return options

    def _file(self, option: str, value: str, hint: str) -> Path:
        where = f"{self.where} ({self.label or self.judge})"
        if value.startswith(HF_SCHEME):
            return resolve_hf(value, f"{where}: {option}")
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base:
            path = Path(self.base) / path
        if not path.exists():
            raise JudgeError(f"{where}: {option} file {path} not found; fix: put {hint} there, or set {option} to "
                             f"its local path")
        return path

    def build(self):
        """The judge, built with its resolved options; errors name where it is configured."""
        from hubkit.judges import JUDGES

        options = self.resolved_options()
        try:
            return JUDGES.build(self.judge, **options)
        except (JudgeError, RegistryError) as exc:
            if not self.where:
                raise
            raise type(exc)(f"{self.where} ({self.label or self.judge}): {exc}") from exc

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{self.label}" + (f" = {self.judge}({opts})" if self.label != self.judge or opts else "")


#: ``owner/name`` or ``owner/name@revision``: a Hugging Face repo id
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+(@[\w./-]+)?")


def resolve_folder(who: str, option: str, value, download: str) -> tuple[Path, str]:
    """(local folder, the name to record) for ``value``: a folder, or ``owner/name[@revision]`` / ``hf://owner/name``
    from the Hugging Face cache (never downloaded). ``download`` is the ``hf download ...`` command of the fix."""
    text = str(value)
    path = Path(text).expanduser()
    if path.is_dir():
        return path, text
    repo = text[len("hf://"):] if text.startswith("hf://") else text
    if REPO_ID.fullmatch(repo) and not path.exists():
        revision = None
        if "@" in repo:
            repo, revision = repo.split("@", 1)
        from huggingface_hub import constants, snapshot_download

        try:
            folder = Path(snapshot_download(repo, revision=revision, local_files_only=True))
        except Exception:
            raise JudgeError(f"{who}: {option} {text!r} is not a folder and not in the Hugging Face cache "
                             f"({constants.HF_HUB_CACHE}); fix: on a machine with network run `hf download {repo}` and "
                             f"copy the cache here (hubkit never downloads), or set {option} to a local folder") from None
        return folder, repo
    raise JudgeError(f"{who}: {option} folder {path} not found; fix: `{download} --local-dir {path}`, or set {option} "
                     f"to an existing folder (or a repo id in the Hugging Face cache)")


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a transformers checkpoint folder (every safetensors / bin shard)."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    return [f for f in files if f.is_file()]


def weights_digest(files: list[Path]) -> str:
    """One sha256 over a checkpoint's shards (name and content hash of each): a short version for ``info()``."""
    import hashlib

    from hubkit.hashing import file_sha256

    return hashlib.sha256("".join(f"{f.name}:{file_sha256(f)}\n" for f in files).encode()).hexdigest()


def resolve_hf(uri: str, where: str) -> Path:
    """``hf://owner/repo[@revision]/path`` -> the file in the Hugging Face cache; never downloads."""
    parts = uri[len(HF_SCHEME):].split("/")
    if len(parts) < 3 or not all(parts):
        raise JudgeError(f"{where}: {uri!r} is not hf://owner/repo[@revision]/path/in/repo")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    from huggingface_hub import constants, try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, revision=revision)
    if isinstance(found, str) and Path(found).is_file():
        return Path(found)
    raise JudgeError(f"{where}: {uri} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}); fix: on a machine "
                     f"with network run `hf download {repo} {filename}` and copy the cache here (hubkit never "
                     f"downloads), or set a local path")


@dataclass
class JudgesConfig:
    """A parsed ``[judges]`` table."""

    source: str                                                  # the file it came from
    base: Path                                                   # where relative paths resolve
    concept: dict[str, JudgeSpec] = field(default_factory=dict)  # folded category / concept name, or "*" -> spec
    roles: dict[str, JudgeSpec] = field(default_factory=dict)    # noun / alignment / fid / quality -> spec
    fid_reference: str | None = None

    def concept_judge(self, concept: str, category: str) -> JudgeSpec | None:
        """The concept's own entry, else its category's, else the table's one judge for all; None if none."""
        for key in (_fold(concept), _fold(category), "*"):
            if key in self.concept:
                return self.concept[key]
        return None

    def role(self, role: str) -> JudgeSpec | None:
        return self.roles.get(role)

    def fid_reference_path(self) -> Path | None:
        if not self.fid_reference:
            return None
        path = Path(self.fid_reference).expanduser()
        path = path if path.is_absolute() else self.base / path
        if not path.is_file():
            raise ConfigError(f"{self.source}: [judges] fid_reference {path} not found; fix: write it with "
                              f"`hubkit fid-reference IMAGES_DIR -o {path} --judges {self.source}`")
        return path

    def entries(self) -> list[tuple[str, JudgeSpec]]:
        """(role key, spec) for every entry: ``concept.<category or concept>`` and the other roles."""
        out = [(f"concept.{key}" if key != "*" else "concept", spec) for key, spec in self.concept.items()]
        return out + list(self.roles.items())


# ---------------------------------------------------------------------------------------------------- reading
def shipped_tables() -> list[str]:
    """Names of the tables shipped with hubkit (``--judges NAME``)."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def find_judges_file(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    text = str(name_or_path)
    if "/" not in text and "\\" not in text:
        shipped = SHIPPED / (text if text.endswith(".toml") else f"{text}.toml")
        if shipped.is_file():
            return shipped
    raise ConfigError(f"--judges {text}: no such file; fix: pass a TOML file with a [judges] table, or a shipped "
                      f"one by name: {', '.join(shipped_tables()) or 'none'}")


def load_judges_file(name_or_path: str | Path) -> JudgesConfig:
    """Read ``--judges FILE`` (a path, or a shipped table's name such as ``hub``)."""
    path = find_judges_file(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    if "judges" not in data:
        raise ConfigError(f"{path}: no [judges] table; fix: put the roles under [judges] (see {SHIPPED / 'hub.toml'})")
    return parse_judges(data["judges"], source=str(path), base=path.resolve().parent)


def parse_judges(table: Any, *, source: str, base: Path) -> JudgesConfig:
    """Check a ``[judges]`` table and turn it into specs (imports no model code)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: judges must be a table ([judges]), got {type(table).__name__}")
    unknown = [k for k in table if k not in ROLE_KEYS and k not in OTHER_KEYS]
    if unknown:
        raise ConfigError(f"{source}: [judges] has unknown key {unknown[0]!r}; fix: use the roles "
                          f"{', '.join(ROLE_KEYS)} (and define, fid_reference)")
    defines = table.get("define", {})
    if not isinstance(defines, dict) or not all(isinstance(v, dict) for v in defines.values()):
        raise ConfigError(f"{source}: [judges.define] must hold tables ([judges.define.NAME] with judge = ...)")
    config = JudgesConfig(source=source, base=Path(base))
    # a definition is checked where a role uses it (so its role is known), and once on its own
    for label, spec in defines.items():
        _spec(spec, defines, f"{source}: [judges.define.{label}]", base, label=label, role=None)
    concept = table.get("concept")
    if isinstance(concept, dict) and "judge" not in concept:
        for key, value in concept.items():
            folded = _fold(key)
            if folded in config.concept:
                raise ConfigError(f"{source}: [judges.concept] names {key!r} twice (keys are case- and accent-insensitive)")
            config.concept[folded] = _spec(value, defines, f"{source}: [judges] concept.{key}", base, role="concept")
    elif concept is not None:
        config.concept["*"] = _spec(concept, defines, f"{source}: [judges] concept", base, role="concept")
    for role in ROLE_KEYS:
        if role != "concept" and role in table:
            config.roles[role] = _spec(table[role], defines, f"{source}: [judges] {role}", base, role=role)
    reference = table.get("fid_reference")
    if reference is not None and not isinstance(reference, str):
        raise ConfigError(f"{source}: [judges] fid_reference must be a path string (an .npz with mu and sigma)")
    config.fid_reference = reference
    return config


def _spec(value: Any, defines: dict, where: str, base: Path, *, role: str | None, label: str | None = None) -> JudgeSpec:
    from hubkit.judges import JUDGES, ROLES, roles_of

    if isinstance(value, str):
        if value in defines and label is None:
            label, value = value, defines[value]
        else:
            label, value = label or value, {"judge": value}
    if not isinstance(value, dict) or not isinstance(value.get("judge"), str):
        raise ConfigError(f"{where}: needs a judge's name, or a table with judge = \"NAME\" and its options")
    name = value["judge"]
    options = {k: v for k, v in value.items() if k != "judge"}
    try:
        cls = JUDGES.get(name)
        name = JUDGES.canonical(name)
    except RegistryError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        inspect.signature(cls).bind(**options)
    except TypeError:
        accepted = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
        bad = sorted(set(options) - set(accepted)) or sorted(options)
        raise ConfigError(f"{where}: judge {name!r} does not accept the option(s) {', '.join(bad)}; fix: use its "
                          f"options: {', '.join(accepted) or 'none'}") from None
    if role is not None:
        needed, what = ROLE_KEYS[role]
        if not issubclass(cls, ROLES[needed]):
            fits = [n for n in JUDGES.names() if needed in roles_of(JUDGES.get(n))]
            raise ConfigError(f"{where}: judge {name!r} cannot be {what}: it lacks the role {needed} (its roles: "
                              f"{', '.join(roles_of(cls)) or 'none'}); fix: configure one of {', '.join(fits)}")
    return JudgeSpec(name, json.dumps(options, sort_keys=True, default=str), label or name, where, str(base))
