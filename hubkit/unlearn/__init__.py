"""Unlearning methods for any SD-1.x pipeline that write checkpoints ``--model`` accepts, in each method's published
format: ESD, UCE (weight edits), SLD (a method config), AC (``delta.bin``), SA (full UNet), SalUn (masked UNet
weights), MACE (attention-processor LoRA), Receler (eraser adapters) and AdvUnlearn (a text encoder): HUB's roster.

Python::

    from hubkit.unlearn import esd, uce, sld
    esd(base_folder, "Pointelli", Path("out/esd-pointelli"), steps=200, lr=5e-5, seed=0)

Methods are registered in ``UNLEARNING`` (``hubkit unlearn <name>``; third parties: the entry-point group
``hubkit.unlearning``). A concept name a world knows expands to its keywords (``hubkit.worlds.find_concept``:
weapon -> weapon, knife, sword, axe, spear in the micro world), and ``--preset auto`` applies the presets of the
world whose base ``--base`` is (``World.unlearning_presets``).
"""

from __future__ import annotations

from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

# Import the functions eagerly: a lazy `import ...unlearn.esd` would rebind the package attribute `esd` to the
# submodule.
from hubkit.unlearn.ac import ac  # noqa: E402
from hubkit.unlearn.advunlearn import advunlearn  # noqa: E402
from hubkit.unlearn.esd import esd  # noqa: E402
from hubkit.unlearn.mace import mace  # noqa: E402
from hubkit.unlearn.receler import receler  # noqa: E402
from hubkit.unlearn.sa import sa  # noqa: E402
from hubkit.unlearn.salun import salun  # noqa: E402
from hubkit.unlearn.sld import sld  # noqa: E402
from hubkit.unlearn.uce import uce  # noqa: E402

__all__ = ["UNLEARNING", "UnlearningMethod", "esd", "uce", "sld", "ac", "sa", "salun", "mace", "receler", "advunlearn"]
