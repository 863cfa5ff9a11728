import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Imported before any pytester run: an in-process run drops from sys.modules what it imported first, and torch or
# scipy imported a second time by a later test crashed the interpreter in garbage collection (a segfault that
# depended on test order).
import scipy.stats  # noqa: E402,F401
import torch  # noqa: E402,F401

pytest_plugins = ["pytester"]
