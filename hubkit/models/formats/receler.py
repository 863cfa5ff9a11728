"""Format ``receler``: Receler's eraser adapters, wrapped around the cross-attention of the base UNet.

Layout (jasper0314-huang/Receler ``receler/erasers/utils.py`` ``save_eraser_to_diffusers_format``; HUB's
``models/receler/{target}.pt``, applied by HUB's ``models/__init__.py``): a pickled dict
``{prefix: adapter_state_dict}``. ``prefix`` names a UNet attention block by its first 4 name parts
(``down_blocks.0.attentions.1``; 3 for ``mid_block.attentions.0``); ``adapter_state_dict`` is an
``AdapterEraser``'s: ``down.weight`` ``(rank, dim)``, ``down.bias``, ``up.weight`` ``(dim, rank)``, ``up.bias``
(Linear → GELU → Linear, the up projection zero-initialised; rank 128 in HUB). Every ``BasicTransformerBlock``'s
``attn2`` becomes ``adapter(attn2(x)) + attn2(x)``.

The wrapper is an ``nn.Module`` (``attn2.attn.*`` holds the original attention, ``attn2.adapter.*`` the eraser),
so the UNet's state dict, and hence the model's fingerprint, includes the adapter.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.models.formats.common import hub_method_details
from hubkit.models.io import model_option
from hubkit.models.registry import FormatResult, NotThisFormat, register_format

ADAPTER_KEYS = ("down.weight", "down.bias", "up.weight", "up.bias")
_PREFIX = re.compile(r"^((down|up)_blocks\.\d+|mid_block)\.attentions\.\d+$")


class AdapterEraser(nn.Module):
    """Receler's eraser: Linear(dim → rank) → GELU → Linear(rank → dim)."""

    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.down = nn.Linear(dim, rank)
        self.act = nn.GELU()
        self.up = nn.Linear(rank, dim)

    def forward(self, hidden_states):
        return self.up(self.act(self.down(hidden_states)))


class AttentionWithEraser(nn.Module):
    """``attn`` followed by a residual eraser: ``adapter(attn(x)) + attn(x)``."""

    def __init__(self, attn: nn.Module, rank: int):
        super().__init__()
        self.attn = attn
        self.adapter = AdapterEraser(attn.to_out[0].weight.shape[1], rank)

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        out = self.attn(hidden_states, encoder_hidden_states=encoder_hidden_states, attention_mask=attention_mask,
                        **kwargs)
        return self.adapter(out) + out


def prefix_name(module_name: str) -> str:
    """The checkpoint key of the attention block holding ``module_name`` (Receler's ``diffuser_prefix_name``)."""
    parts = module_name.split(".")
    return ".".join(parts[:3] if parts[0] == "mid_block" else parts[:4])


def _eraser_dict(obj) -> dict | None:
    if not isinstance(obj, dict) or not obj:
        return None
    for k, v in obj.items():
        if not (isinstance(k, str) and _PREFIX.match(k) and isinstance(v, dict) and set(v) == set(ADAPTER_KEYS)
                and all(isinstance(t, torch.Tensor) for t in v.values())):
            return None
    return obj


@register_format("receler")
class Receler:
    def _read(self, path: Path) -> dict:
        if not path.is_file():
            raise NotThisFormat("not a file")
        if path.suffix.lower() not in io.PICKLE_SUFFIXES:
            raise NotThisFormat(f"not a PyTorch pickle ({', '.join(io.PICKLE_SUFFIXES)})")
        ins = io.inspect_file(path)
        if ins.components:  # a plain state dict: some other format's
            raise NotThisFormat("a plain state dict, not {prefix: adapter state dict}")
        ckpt = _eraser_dict(io.load_pickle(path, trust_checkpoint=io.TRUST_CHECKPOINT.get()))
        if ckpt is None:
            raise NotThisFormat("not {<attention block>: {down.weight, down.bias, up.weight, up.bias}}")
        return ckpt

    def detect(self, path: Path) -> bool:
        self._read(path)
        return True

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        from diffusers.models.attention import BasicTransformerBlock

        ckpt = self._read(path)
        blocks = [(name, m) for name, m in pipe.unet.named_modules() if isinstance(m, BasicTransformerBlock)]
        used: set[str] = set()
        plan = []
        for name, block in blocks:
            prefix = prefix_name(name)
            if prefix not in ckpt:
                raise CheckpointError(f"{model_option(path)}: no Receler adapter for {prefix!r} (the base UNet's "
                                      f"{name}.attn2); is --base-model the model these erasers were trained on?")
            attn = block.attn2
            dim = attn.to_out[0].weight.shape[1]
            state = ckpt[prefix]
            rank = state["down.weight"].shape[0]
            want = {"down.weight": (rank, dim), "down.bias": (rank,), "up.weight": (dim, rank), "up.bias": (dim,)}
            for key, shape in want.items():
                if tuple(state[key].shape) != shape:
                    raise CheckpointError(f"{model_option(path)}: Receler key {prefix}.{key} has shape "
                                          f"{tuple(state[key].shape)}, the base's {name}.attn2 needs {shape}; is "
                                          "--base-model the model these erasers were trained on?")
            used.add(prefix)
            plan.append((block, attn, state, rank))
        extra = sorted(set(ckpt) - used)
        if extra:
            more = f" (and {len(extra) - 1} others)" if len(extra) > 1 else ""
            raise CheckpointError(f"{model_option(path)}: Receler key {extra[0]}.down.weight{more} matches no "
                                  "BasicTransformerBlock of the base UNet; is --base-model the model these erasers "
                                  "were trained on?")
        ranks = set()
        for block, attn, state, rank in plan:
            wrapped = AttentionWithEraser(attn, rank).to(dtype=attn.to_out[0].weight.dtype,
                                                         device=attn.to_out[0].weight.device)
            with torch.no_grad():
                wrapped.adapter.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
            block.attn2 = wrapped
            ranks.add(rank)
        details = {"components": ["unet"], "adapters": len(plan), "rank": sorted(ranks)[0] if len(ranks) == 1
                   else sorted(ranks), **hub_method_details("receler", ctx.metadata)}
        return FormatResult(pipe, details)
