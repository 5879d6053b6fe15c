"""The one way ``remove`` commands run: refuse a thing in use without --force, ask on a
terminal (``--yes`` elsewhere), remove, print the removed thing and notes (services/removals.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from espomail.cli.app import get_app
from espomail.cli.output import confirm, emit, message

if TYPE_CHECKING:
    from espomail.services.removals import Removal


def removal_options(func: Callable) -> Callable:
    """Add ``--force`` and ``--yes`` to a remove command."""
    func = click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")(
        func
    )
    return click.option("--force", is_flag=True, help="Remove it even while something uses it.")(func)


def run_removal(plan: Callable[[], Removal], remove: Callable[[], dict[str, Any]], force: bool, yes: bool) -> None:
    """Plan (permission, existence, uses: nothing written), refuse or confirm, then remove."""
    removal = plan()
    removal.refuse_unless(force)
    confirm(removal.question(), yes, f"removing {removal.what} cannot be undone; confirm with --yes")
    emit_with_notes(remove())


def emit_with_notes(result: dict[str, Any]) -> None:
    """The result, and on stderr what changed around it (``notes``, kept in --json output)."""
    notes = result.get("notes") or []
    if not get_app().json:
        result = {k: v for k, v in result.items() if k != "notes"}
    emit(result)
    for note in notes:
        message(f"Note: {note}")
