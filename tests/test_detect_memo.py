"""``hubkit.aspects.common.detect``: a judge answers once per (image, question, references) in a run, and a
reference-based judge gets the references; a two-argument judge keeps its plain call."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hubkit.aspects.common import detect
from hubkit.judges.registry import Judge, Verdict


def _image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))


class Counting(Judge):
    name = "counting"

    def __init__(self):
        self.asked = []

    def detect(self, images, concept, references=None, category=None):
        self.asked.append((len(images), concept, references is not None, category))
        return [Verdict("yes" if np.asarray(im).mean() > 127 else "no", 1.0) for im in images]


class TwoArguments(Judge):
    name = "two-arguments"

    def detect(self, images, concept):
        return [Verdict("no", 0.0) for _ in images]


def test_each_image_is_judged_once_per_question():
    judge, images = Counting(), [_image(i) for i in range(4)]
    first = detect(judge, images, "x")
    again = detect(judge, [images[2], _image(2), images[0], _image(9)], "x")  # _image(2) is the same picture
    assert again == [first[2], first[2], first[0], detect(judge, [_image(9)], "x")[0]]
    assert [n for n, *_ in judge.asked] == [4, 1]  # only the new picture was asked about, once
    detect(judge, images[:2], "y")  # another question is another answer
    assert judge.asked[-1] == (2, "y", False, None)


def test_references_are_passed_and_are_part_of_the_question():
    judge, images = Counting(), [_image(i) for i in range(2)]
    refs = [[_image(10), _image(11)], [_image(12), _image(13)]]
    detect(judge, images, "x", refs, "style")
    assert judge.asked == [(2, "x", True, "style")]
    detect(judge, images, "x", refs, "style")
    detect(judge, images, "x", [[_image(10)], [_image(12)]], "style")  # other references: asked again
    assert len(judge.asked) == 2


def test_a_two_argument_judge_keeps_working():
    assert [v.label for v in detect(TwoArguments(), [_image(0)], "x")] == ["no"]
