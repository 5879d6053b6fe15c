"""One module per step; each exposes ``NAME`` and ``run(ctx)``."""
