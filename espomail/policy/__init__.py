"""Rules that the services and the import pipeline share (docs/architecture.md).

Access (the one permission table), filter order and matching, case numbers and
distribution, parent resolution, building an actor. These modules may read the store;
they import neither ``espomail.services``, ``espomail.pipeline`` nor ``espomail.cli``.
"""
