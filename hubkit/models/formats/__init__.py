"""The built-in checkpoint formats, in detection order.

1. ``diffusers-folder``  a folder with ``model_index.json`` (a whole pipeline, MACE-style; no base needed)
2. ``method-config``     a ``*.json`` with a top-level ``"hubkit_method"`` (an inference-time method such as SLD),
                         or a folder holding exactly one such JSON (``write_sld_config(folder)`` → ``sld.json``);
                         ``"model": "<path>"`` applies the method on top of another checkpoint
3. ``lora``              ``pytorch_lora_weights.safetensors`` (or a folder holding it), or any weights file whose
                         keys are LoRA keys (peft/diffusers ``lora_A``/``lora_B``, kohya ``lora_down``/``lora_up``);
                         fused into the weights by default (``lora_fuse=False`` keeps peft adapters)
4. ``single-file``       one ``.safetensors``/``.ckpt``/``.pt`` in the original LDM/CompVis layout
                         (``model.diffusion_model.*`` + ``first_stage_model.*`` + ``cond_stage_model.*``), read by
                         ``from_single_file(path, config=<--base-model folder>)``
5. ``unet-state-dict``   a UNet state dict: diffusers keys (HUB's ESD/UCE/SA/SalUn ``.pt``), optionally wrapped
                         (``state_dict``/``model_state_dict``/``unet_state_dict``/``unet`` entries, ``module.``/
                         ``unet.`` prefixes, AC's ``{"unet": ..., "text_encoder": ...}``; AC's published cross-attn
                         delta, ``{"unet": <exactly the attn2.to_k/to_v weights>}``, loads without a declaration and
                         is recorded as ``details["method_hint"] = "ac"``), or LDM keys
                         ``model.diffusion_model.*`` only; also a folder with ``unet.safetensors`` (+ optional
                         ``text_encoder.safetensors``; hubkit's own ESD/UCE output), a folder with ``delta.bin``
                         (AC's ``save_pretrained`` output and ``hubkit unlearn ac``'s) or a diffusers ``unet/`` folder
6. ``text-encoder``      CLIP text-model weights (AdvUnlearn): a folder with a CLIPTextModel ``config.json``, or a
                         state dict of CLIP text keys with or without the ``text_model.`` prefix
7. ``attn-procs-lora``   LoRA attention-processor weights as diffusers <= 0.24 ``save_attn_procs`` wrote them
                         (MACE's per-concept LoRAs): ``<module>.processor.to_k_lora.down.weight`` ...; converted to
                         peft keys and loaded like ``lora``
8. ``receler``           Receler's erasers (HUB's ``models/receler/{target}.pt``): a pickled ``{<attention block>:
                         {down.weight, down.bias, up.weight, up.bias}}``; each ``attn2`` is wrapped as
                         ``adapter(attn2(x)) + attn2(x)`` (``hubkit.models.formats.receler``)

Formats registered later (``register_format``, entry points ``hubkit.formats``) are tried after these.

Rules shared by all formats:

* pickles load only with ``torch.load(weights_only=True)``; one that needs more is refused unless
  ``trust_checkpoint=True`` (``--trust-checkpoint``);
* every state dict is checked key by key against the base: an unexpected key, a shape mismatch or a missing key is
  a CheckpointError naming the first one (and how many more). Missing keys are accepted only from checkpoints that
  declare they hold the changed parameters only: ``"keys": "changed"`` (or ``"partial": true``) in the safetensors
  metadata or a ``hubkit.json`` beside the file (``hubkit.json``, ``<stem>.hubkit.json``) / inside the folder;
* formats record HUB's sampler for a recognised or declared (``hubkit.json`` ``"method"``) method as
  ``details["hub_scheduler"]`` (LMS for ESD/UCE/SA/SalUn/Receler, DPM-Solver multistep for MACE, PNDM for
  SD/AC/SLD); the loaded model still uses the base's scheduler unless ``scheduler=`` is passed;
* diffusers folders are verified against their weight files too (transformers silently re-initialises missing
  text-encoder weights).

Each family of formats has its module: ``pipeline`` (diffusers-folder), ``method`` (method-config),
``single_file`` (single-file), ``lora`` (lora, attn-procs-lora), ``weights`` (unet-state-dict, text-encoder), ``receler``;
``common`` holds what they share.
Importing this package registers them all (``hubkit.models.registry.BUILTIN_ORDER`` fixes the order).
"""

from hubkit.models.formats.pipeline import DiffusersFolder, load_pipeline_folder
from hubkit.models.formats.method import MethodConfig
from hubkit.models.formats.lora import AttnProcsLora, Lora
from hubkit.models.formats.single_file import SingleFile
from hubkit.models.formats.weights import TextEncoder, UNetStateDict
from hubkit.models.formats.receler import Receler

__all__ = ["AttnProcsLora", "DiffusersFolder", "Lora", "MethodConfig", "Receler", "SingleFile", "TextEncoder",
           "UNetStateDict", "load_pipeline_folder"]
