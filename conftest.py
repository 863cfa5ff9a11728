"""Repository root: nothing here but offline guards; the plugin comes from the `pytest11` entry point
(`pip install -e .`), so the in-repo run and an installed run behave the same."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
