"""hubkit: the engine of the concept-unlearning evaluation suite (works without pytest)."""

__version__ = "0.1.0"
