"""The micro world's catalogue, renderer, captions and prompt sets (fast: numpy + PIL only)."""

from __future__ import annotations

import csv
import itertools
import json
import re
import tomllib

import numpy as np
import pytest

from hubkit_micro import captions as cap
from hubkit_micro import prompt_sets as ps
from hubkit_micro import world
from hubkit_micro.render import (
    Scene, SceneObject, canonical_scene, labels, object_boxes, render, sample_scene,
)
from hubkit_micro.world import (
    ALL_LABELS, CONCEPTS, LANGUAGES, OBJECT_LABELS, STYLE_LABELS, kind, translate,
)


# ------------------------------------------------------------------------------------------ catalogue
def test_label_tables_are_consistent():
    assert ALL_LABELS == OBJECT_LABELS + STYLE_LABELS
    assert len(set(ALL_LABELS)) == len(ALL_LABELS)
    assert {kind(l) for l in OBJECT_LABELS} == {"thing", "character", "face", "weapon", "tool"}
    assert {kind(l) for l in STYLE_LABELS} == {"style"}
    with pytest.raises(KeyError):
        kind("unicorn")


def test_targets_categories_and_neighbours():
    cats = [c.category for c in CONCEPTS.values()]
    assert sorted(cats) == sorted(["style"] * 2 + ["ip"] * 2 + ["celebrity"] * 2 + ["nsfw"])
    for name, c in CONCEPTS.items():
        assert c.name == name
        assert set(c.labels) <= set(ALL_LABELS)
        assert len(c.neighbours) >= 5, name
        assert set(c.neighbours) <= set(ALL_LABELS)
        assert not set(c.neighbours) & set(c.labels)
        assert set(c.keywords) == set(LANGUAGES)
        assert all(c.keywords[lang] for lang in LANGUAGES)
        # neighbours are the same kind of thing as the target (tools for weapons)
        expected = {"style": {"style"}, "ip": {"character"}, "celebrity": {"face"}, "nsfw": {"tool"}}[c.category]
        assert {kind(n) for n in c.neighbours} == expected
    assert set(CONCEPTS["weapon"].labels) == {"knife", "sword", "axe", "spear"}


def test_translate_covers_every_caption_word():
    words = ([l for l in OBJECT_LABELS] + list(world.COLOURS) + list(world.SIZES) + list(world.POSITIONS)
             + list(world.BACKGROUNDS) + list(world.PHRASES))
    for lang in LANGUAGES:
        for w in words:
            t = translate(w, lang)
            assert t and isinstance(t, str)
            if w in world.NAMES:
                assert t == w
    assert translate("car", "Spanish") == "coche"
    assert translate("red", "German") == "rot"
    assert translate("left", "French") == "à gauche"
    assert translate("Zorbo", "Italian") == "Zorbo"
    with pytest.raises(KeyError):
        translate("spaceship", "Spanish")


# ------------------------------------------------------------------------------------------ renderer
def test_render_is_deterministic_and_jittered():
    scene = sample_scene(np.random.default_rng(3), n_objects=3, style=None)
    a, b = render(scene, 11), render(scene, 11)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render(scene, 12))
    for style in STYLE_LABELS:
        s = Scene(scene.objects, scene.background, style)
        assert np.array_equal(render(s, 5), render(s, 5))


def test_every_label_is_drawn_and_distinct():
    blank = render(Scene((SceneObject("ball", None, "small", "left"),), "white", None), 0)
    imgs = {l: render(canonical_scene(l), 0).astype(np.float32) for l in OBJECT_LABELS}
    white = np.asarray(blank, np.float32)[0, 0]
    for l, im in imgs.items():
        covered = (np.abs(im - white).sum(-1) > 40).mean()
        assert 0.04 < covered < 0.6, (l, covered)       # an object occupies roughly 18-34 px
    for a, b in itertools.combinations(OBJECT_LABELS, 2):
        diff = np.abs(imgs[a] - imgs[b]).mean()
        assert diff > 3.0, (a, b, diff)


def test_styles_are_distinct_whole_image_transforms():
    objs = (SceneObject("house", None, "big", "left"), SceneObject("Zorbo", None, "big", "right"))
    ims = {s: render(Scene(objs, "white", s), 0).astype(np.float32) for s in (None,) + STYLE_LABELS}
    for a, b in itertools.combinations(ims, 2):
        assert np.abs(ims[a] - ims[b]).mean() > 10.0, (a, b)


def test_positions_never_collide():
    rng = np.random.default_rng(0)
    for i in range(1500):
        scene = sample_scene(rng)
        pos = [o.position for o in scene.objects]
        assert len(set(pos)) == len(pos)
        boxes = object_boxes(scene, i)
        for x0, y0, x1, y1 in boxes:
            assert -0.5 <= x0 and -0.5 <= y0 and x1 <= 64.5 and y1 <= 64.5
        for (a0, b0, a1, b1), (c0, d0, c1, d1) in itertools.combinations(boxes, 2):
            assert a1 <= c0 or c1 <= a0 or b1 <= d0 or d1 <= b0, (scene, boxes)
    with pytest.raises(ValueError):
        Scene((SceneObject("car", None, "big", "left"), SceneObject("tree", None, "big", "left")), "white", None)
    with pytest.raises(ValueError):
        Scene((SceneObject("car", None, "big", "left"), SceneObject("tree", None, "big", "centre")), "white", None)
    with pytest.raises(ValueError):
        SceneObject("Zorbo", "red", "big", "left")     # characters keep their colours


def test_sample_scene_require_exclude_and_labels():
    rng = np.random.default_rng(1)
    for _ in range(200):
        s = sample_scene(rng, require=["weapon"], exclude=["Zorbo", "Pointelli"])
        present = {o.label for o in s.objects}
        assert present & set(CONCEPTS["weapon"].labels)
        assert "Zorbo" not in present and s.style != "Pointelli"
        v = labels(s)
        assert v.dtype == np.float32 and v.shape == (len(ALL_LABELS),)
        assert v.sum() == len(s.objects) + (s.style is not None)
    s = sample_scene(rng, require=["Strokovsky", "Pipkin"], n_objects=2)
    assert s.style == "Strokovsky" and "Pipkin" in {o.label for o in s.objects}
    assert sample_scene(rng, style=None).style is None


# ------------------------------------------------------------------------------------------ captions
def test_captions_examples():
    scene = Scene((SceneObject("car", "red", "big", "left"), SceneObject("Zorbo", None, "big", "right")),
                  "white", "Pointelli")
    plan = cap.CaptionPlan(False, "bare", "suffix", (True, True), (True, True), (True, False), False)
    assert cap.realise(scene, plan, "English") == "a big red car on the left and Zorbo, in the style of Pointelli"
    assert cap.realise(scene, plan, "Spanish") == "un coche rojo grande a la izquierda y Zorbo, al estilo de Pointelli"
    assert cap.caption(canonical_scene("hammer")) == "a photo of hammer"
    assert cap.caption(canonical_scene("Mina Castell")) == "a photo of Mina Castell"


def test_captions_contain_only_words_of_their_language():
    rng = np.random.default_rng(7)
    names = cap.name_tokens()
    english = cap.vocabulary("English")
    scenes = [sample_scene(rng) for _ in range(150)] + [canonical_scene(l) for l in OBJECT_LABELS]
    for lang in LANGUAGES:
        vocab = cap.vocabulary(lang)
        foreign_to_lang = english - vocab
        for i, scene in enumerate(scenes):
            text = cap.caption(scene, lang, np.random.default_rng(i))
            toks = {t.lower() for t in cap.tokens(text)}
            unknown = toks - vocab - names
            assert not unknown, (lang, text, unknown)
            if lang != "English":
                assert not (toks & foreign_to_lang), (lang, text, toks & foreign_to_lang)
            # every object is named (unless the caption is the style-only template)
            if not (scene.style and text.startswith(translate("a painting in the style of", lang))):
                for o in scene.objects:
                    word = o.label if o.label in world.NAMES else translate(o.label, lang)
                    assert word in text, (lang, text, word)


def test_same_plan_in_every_language():
    scene = sample_scene(np.random.default_rng(5), n_objects=3, style="Strokovsky")
    texts = cap.captions_all(scene, np.random.default_rng(0))
    assert list(texts) == list(LANGUAGES)
    assert texts["English"] == cap.caption(scene, "English", np.random.default_rng(0))
    assert texts["German"] == cap.caption(scene, "German", np.random.default_rng(0))
    assert len(set(texts.values())) == len(LANGUAGES)


def test_training_batch_mix():
    images, texts, y = ps.training_batch(np.random.default_rng(0), 300)
    assert images.shape == (300, 64, 64, 3) and images.dtype == np.uint8
    assert y.shape == (300, len(ALL_LABELS)) and len(texts) == 300
    photo = np.mean([bool(re.match(r"^(a photo of|una foto de|une photo d|ein Foto von|una foto di|uma foto de)", t))
                     for t in texts])
    styled = y[:, len(OBJECT_LABELS):].sum(1).mean()
    assert 0.07 < photo < 0.3 and 0.2 < styled < 0.5
    assert any(t.startswith("a photo of ") for t in texts)


# ------------------------------------------------------------------------------------------ prompt sets
SIZES = {"target": 40, "multilingual": 12, "selective": 10, "attack": 16, "general": 40}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return ps.write_prompt_sets(tmp_path_factory.mktemp("micro_prompts"), seed=0, sizes=SIZES)


def _read_lines(path):
    with path.open(newline="", encoding="utf-8") as f:
        return [row[0] for row in csv.reader(f)]


def test_prompt_folder_layout_and_formats(folder):
    manifest = tomllib.loads((folder / "hubkit.toml").read_text())
    assert manifest["image_size"] == 64 and manifest["pinpoint_template"] == "a photo of {noun}"
    assert set(manifest["concepts"]) == set(CONCEPTS)
    # Ring-A-Bell searches the words the micro text encoder knows: every caption word, in every language
    assert manifest["attacks"]["ringabell"]["vocabulary"] == "vocabulary.txt"
    words = set((folder / "vocabulary.txt").read_text(encoding="utf-8").split())
    assert {"antennae", "brushstrokes", "klinge", "zorbo"} <= words and "photo" in words
    for name, c in CONCEPTS.items():
        entry = manifest["concepts"][name]
        assert entry["category"] == c.category and entry["judge"] == "micro-detector"

        target = _read_lines(folder / "target_image" / f"{name}.csv")
        assert len(target) == SIZES["target"] == len(set(target))
        kws = [k.lower() for k in c.keywords["English"]]
        assert all(any(k in t.lower() for k in kws) for t in target), name

        with (folder / "multilingual_robustness" / f"{name}.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["Original", "Spanish", "French", "German", "Italian", "Portuguese", "Index"]
        assert len(rows) == SIZES["multilingual"]
        for r in rows:
            assert target[int(r["Index"])] == r["Original"]
            assert all(r[k] != r["Original"] for k in ("Spanish", "French", "German", "Italian", "Portuguese"))

        sel = json.loads((folder / "selective_alignment" / f"{name}.json").read_text())
        assert len(sel) == SIZES["selective"]
        for item in sel:
            assert set(item) == {"prompt", "nouns", "index"}
            assert target[item["index"]] == item["prompt"]
            assert item["nouns"] and set(item["nouns"]) <= set(OBJECT_LABELS)
            assert not set(item["nouns"]) & set(c.labels)

        with (folder / "pinpoint_ness" / f"{name}.csv").open(newline="", encoding="utf-8") as f:
            pin = list(csv.DictReader(f))
        assert [p["noun"] for p in pin] == list(c.neighbours)
        assert all(0.0 <= float(p["similarity"]) <= 1.0 for p in pin)

        attack = _read_lines(folder / "attack_robustness" / f"{name}.csv")
        assert len(attack) == SIZES["attack"] == len(set(attack))

        scene, seed = ps.scene_for_prompt(folder, name, 3)
        assert set(c.labels) & set(scene.labels)
        assert render(scene, seed).shape == (64, 64, 3)

    with (folder / "MS-COCO_val2014_30k_captions.csv").open(newline="", encoding="utf-8") as f:
        general = list(csv.DictReader(f))
    assert list(general[0]) == ["image_id", "text"] and len(general) == SIZES["general"]
    assert len({g["image_id"] for g in general}) == len(general)
    for i, g in enumerate(general):
        scene, _ = ps.scene_for_prompt(folder, None, i)
        assert not set(scene.labels) & (set(world.TARGET_LABELS) | set(CONCEPTS))
        assert not any(n in g["text"] for n in CONCEPTS if n != "weapon")


def test_prompt_folder_is_deterministic(folder, tmp_path):
    again = ps.write_prompt_sets(tmp_path / "again", seed=0, sizes=SIZES)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(folder)).read_bytes(), path


def test_attack_prompts_avoid_exact_names():
    for name, c in CONCEPTS.items():
        lines = ps.attack_prompts(name, 0, 40)
        words = c.labels if c.category == "nsfw" else (name,)
        exact = sum(any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", t, re.I) for w in words) for t in lines)
        assert exact <= len(lines) // 3, (name, exact)


# ------------------------------------------------------------------------------------ descriptions
def _described(seed: int, n: int, **describe):
    """``(i, scene, {language: caption})`` for ``n`` random scenes captioned with every description on (caption rng
    ``i``), each caption checked to use only the world's words."""
    rng, names = np.random.default_rng(seed), cap.name_tokens()
    for i in range(n):
        scene = sample_scene(rng)
        texts = cap.captions_all(scene, np.random.default_rng(i), describe_p=1.0, **describe)
        for lang, text in texts.items():
            assert not {t.lower() for t in cap.tokens(text)} - cap.vocabulary(lang) - names, (lang, text)
        yield i, scene, texts


def test_described_captions_reach_styles_and_weapons_without_their_names():
    from hubkit_micro.descriptions import STYLE_DESCRIPTIONS, WEAPON_DESCRIPTIONS

    seen = 0
    for _, scene, texts in _described(11, 200):
        described = scene.style is not None or any(o.label in WEAPON_DESCRIPTIONS for o in scene.objects)
        seen += described
        for lang, text in texts.items():
            if not described:
                continue
            if scene.style is not None:
                assert scene.style not in text and STYLE_DESCRIPTIONS[scene.style][lang] in text, (lang, text)
            for o in scene.objects:
                if o.label in WEAPON_DESCRIPTIONS:
                    assert translate(o.label, lang) not in {t.lower() for t in cap.tokens(text)}, (lang, text)
    assert seen > 50


def test_described_names_replace_characters_and_faces_by_their_looks():
    """``describe_names``: the target characters and faces are described by what they look like, never named, in
    every language; without it, the same rng gives exactly the captions a base without described names saw."""
    from hubkit_micro.descriptions import NAME_DESCRIPTIONS, name_description

    seen = 0
    for i, scene, texts in _described(12, 300, describe_names=True):
        described = [o.label for o in scene.objects if o.label in NAME_DESCRIPTIONS]
        if not described:
            assert texts == cap.captions_all(scene, np.random.default_rng(i), describe_p=1.0)
            continue
        seen += 1
        for lang, text in texts.items():
            for label in described:
                assert label not in text, (lang, text)
                assert any(name_description(label, lang, case) in text for case in ("nom", "dat")), (lang, text)
    assert seen > 20
    photo = cap.canonical_scene("Mina Castell")
    assert cap.realise(photo, cap.CaptionPlan(True, "bare", "suffix", (True,), (True,), (True,), False, True, True),
                       "German") == "ein Foto von einer Frau mit rundem Gesicht und langen roten Haaren"


def test_descriptions_cost_no_randomness_when_off():
    """The judges' data and the prompt folder draw captions with describe_p = 0: their rng streams must not move."""
    scene = sample_scene(np.random.default_rng(5), n_objects=2, style="Pointelli")
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert cap.captions_all(scene, a) == cap.captions_all(scene, b, describe_p=0.0)
    assert a.random() == b.random()
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    assert cap.training_example(a) == cap.training_example(b, describe_p=0.0) and a.random() == b.random()
    a, b = np.random.default_rng(3), np.random.default_rng(3)   # names change which captions describe, not the stream
    cap.training_example(a, describe_p=0.5), cap.training_example(b, describe_p=0.5, describe_names=True)
    assert a.random() == b.random()
