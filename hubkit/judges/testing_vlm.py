"""Tiny random-weight vision-language checkpoints in the real layouts the ``vlm`` judge loads (for tests).

``write_tiny_vlm(folder, family)`` saves, with ``save_pretrained``, a model of the real architecture
(``Qwen2_5_VLForConditionalGeneration`` or ``InternVLForConditionalGeneration``) built from its config class
with a few layers and a small hidden size, and a working processor: the real image processor class with small
sizes, a character-level tokenizer (tokenizers library) carrying the special tokens the processor and the chat
template need, and a chat template of the real checkpoint's shape. ``JUDGES.build("vlm", model=folder)`` loads
it exactly as it loads a real checkpoint folder. Nothing is downloaded; the answers are garbage.
"""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("qwen2_5_vl", "internvl")

#: Qwen2-VL/2.5-VL's chat template, reduced to images and text
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: the InternVL ``-hf`` checkpoints' chat template, reduced to images and text
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "{{ '<IMG_CONTEXT>\n' }}{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_COMMON = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_SPECIAL = {
    "qwen2_5_vl": _COMMON + ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "internvl": _COMMON + ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
}


def _tokenizer(family: str, **named):
    """A character-level tokenizer (printable ASCII + newline) with the family's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = _SPECIAL[family]
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(special + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(special)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", **named)
    return fast, vocab


def _text_config(vocab: dict, full: dict | None = None, **extra) -> dict:
    sizes = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    sizes.update(full or {})
    return dict(**sizes, bos_token_id=vocab["<|endoftext|>"], eos_token_id=vocab["<|im_end|>"],
                pad_token_id=vocab["<|endoftext|>"], **extra)


#: the published checkpoints' sizes (Qwen2.5-VL-7B-Instruct; InternVL2.5-8B: InternViT-300M + InternLM2.5-7B, whose
#: -hf conversion is a llama-type decoder), for benchmarks/gpu_check.py: same compute and memory, random weights
FULL_SIZE = {
    "qwen2_5_vl": {
        "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000),
        "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                       window_size=112, fullatt_block_indexes=[7, 15, 23, 31]),
        "mrope_section": [16, 24, 24],
    },
    "internvl": {
        "text": dict(vocab_size=92553, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768),
        "vision": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
        "tile": 448,
    },
}


def write_tiny_vlm(folder: Path, family: str = "qwen2_5_vl", seed: int = 0, *, full_size: bool = False,
                   device: str = "cpu", dtype: str = "float32") -> Path:
    """Save a tiny random ``family`` checkpoint (model + processor) to ``folder``; returns ``folder``.

    ``full_size``: the published checkpoint's layer sizes (``FULL_SIZE``; 7-8 B parameters, built on ``device`` in
    ``dtype``), for timing and memory on a GPU; the tokenizer stays the character-level one."""
    import torch

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    full = FULL_SIZE[family] if full_size else {}
    if family == "qwen2_5_vl":
        from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                                  Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

        tokenizer, vocab = _tokenizer(family)
        ids = {t: vocab[t] for t in _SPECIAL[family]}
        config = Qwen2_5_VLConfig(
            text_config=_text_config(vocab, full.get("text"), rope_scaling={
                "type": "mrope", "mrope_section": full.get("mrope_section", [1, 1, 2])}),
            vision_config={**dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                                  window_size=56, fullatt_block_indexes=[1]), **full.get("vision", {}),
                           **dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2)},
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
        model = _build(Qwen2_5_VLForConditionalGeneration, config, device, dtype)
        # tiny: at most 112x112 pixels (8x8 patches of 14, 16 tokens after the 2x2 merge); full: 512x512 images whole
        processor = Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=(512 * 512 if full else 112 * 112)),
            tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN_CHAT_TEMPLATE)
    else:
        from transformers import (GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration,
                                  InternVLProcessor, InternVLVideoProcessor)

        tokenizer, vocab = _tokenizer(family, extra_special_tokens={
            "start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>"})
        tile, patch = full.get("tile", 28), 14
        seq = (tile // patch) ** 2 // 4  # tokens per tile after the 0.5 pixel shuffle
        config = InternVLConfig(
            vision_config={**dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
                           **full.get("vision", {}), **dict(image_size=[tile, tile], patch_size=[patch, patch])},
            text_config={"model_type": "llama" if full else "qwen2", **_text_config(vocab, full.get("text"))},
            image_token_id=vocab["<IMG_CONTEXT>"], image_seq_length=seq, downsample_ratio=0.5)
        model = _build(InternVLForConditionalGeneration, config, device, dtype)
        processor = InternVLProcessor(
            image_processor=GotOcr2ImageProcessor(size={"height": tile, "width": tile}, crop_to_patches=True,
                                                  min_patches=1, max_patches=4),
            tokenizer=tokenizer, video_processor=InternVLVideoProcessor(size={"height": tile, "width": tile}),
            image_seq_length=seq, chat_template=INTERNVL_CHAT_TEMPLATE)
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _build(cls, config, device: str, dtype: str):
    """``cls(config)`` with random weights, initialised directly on ``device`` in ``dtype`` (a 7 B model built on
    the CPU in float32 would take minutes and 30 GB)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            return cls(config)
    finally:
        torch.set_default_dtype(previous)
