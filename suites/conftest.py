"""The suites need nothing beyond the hubkit plugin's fixtures (``hub``, ``concept``, ``verdict``...)."""
