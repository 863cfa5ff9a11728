"""The micro world: 64×64 procedural scenes, their captions in six languages and HUB-layout prompt sets.

Quick tour::

    from hubkit_micro import sample_scene, render, caption, labels, CONCEPTS
    scene = sample_scene(np.random.default_rng(0), require=["Zorbo"])
    img = render(scene, seed=0)            # uint8 (64, 64, 3)
    text = caption(scene, "Spanish")       # "Zorbo a la izquierda y ..."
"""

from .captions import caption, captions_all, training_batch, training_example
from .render import RANDOM, Scene, SceneObject, canonical_scene, labels, object_boxes, render, sample_scene
from .world import (
    ALL_LABELS, CONCEPTS, IMAGE_SIZE, LANGUAGES, OBJECT_LABELS, STYLE_LABELS, Concept, kind, translate,
)

__all__ = [
    "ALL_LABELS", "CONCEPTS", "IMAGE_SIZE", "LANGUAGES", "OBJECT_LABELS", "STYLE_LABELS", "Concept", "kind",
    "translate", "RANDOM", "Scene", "SceneObject", "canonical_scene", "labels", "object_boxes", "render",
    "sample_scene", "caption", "captions_all", "training_batch", "training_example",
]
