"""Importing psycopg without ``importlib.metadata``.

psycopg and psycopg-binary each learn their own version at import from
``importlib.metadata.version``, which imports ``importlib.metadata`` (email, zipfile, csv ...)
and scans every directory of ``sys.path`` for distributions: about 15 ms of every command on
a PostgreSQL store (median of 40 interleaved imports; docs/performance.md). Here the two
``version`` modules are given before psycopg imports them, from the names of their
``*.dist-info`` directories beside the packages (one directory listing, no import). When a
version is not found that way (an unusual install), nothing is given and psycopg finds it
itself. Nothing else changes: psycopg imports and runs as it always does.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

# the packages whose ``version`` module reads the version of their distribution (the
# dist-info directory is named after the package: ``psycopg_binary-3.3.9.dist-info``)
_PACKAGES = ("psycopg", "psycopg_binary")


def preset_versions() -> None:
    """Give psycopg's version modules their ``__version__`` before psycopg is imported."""
    if "psycopg" in sys.modules:
        return
    for package in _PACKAGES:
        module_name = f"{package}.version"
        version = _installed_version(package)
        if version is not None and module_name not in sys.modules:
            module = types.ModuleType(module_name, "the distribution's version, read by espomail.store.psycopg_start")
            module.__version__ = version
            sys.modules[module_name] = module


def _installed_version(package: str) -> str | None:
    """The version in the name of the package's ``NAME-VERSION.dist-info`` beside it, if exactly one."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = os.path.dirname(os.path.abspath(next(iter(spec.submodule_search_locations))))
    prefix = f"{package}-"
    try:
        found = [n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".dist-info")]
    except OSError:
        return None
    if len(found) != 1:
        return None
    version = found[0][len(prefix) : -len(".dist-info")]
    return version if version and "-" not in version else None
