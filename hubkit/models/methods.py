"""The registry of inference-time unlearning methods (SLD, ...), named by a JSON method config.

A method is a function ``fn(base_pipe, params) -> StableDiffusionPipeline`` (a subclass is fine)::

    from hubkit.models.methods import METHODS

    @METHODS.register("sld")
    def sld(base_pipe, params):
        return SLDPipeline(**base_pipe.components, **params)

``params`` is the config's ``"params"`` object; when the config has a top-level ``"concept"`` and ``params``
has none, ``params["concept"]`` is set to it. Third-party packages add methods through the entry-point
group ``hubkit.methods`` (see ``hubkit.registry``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubkit.registry import Registry

MethodFn = Callable[[Any, dict], Any]

METHODS: Registry[MethodFn] = Registry("inference-time method", group="hubkit.methods",
                                       builtins=("hubkit.models.sld",), where="hubkit.models.methods.METHODS")
