"""The steps by name, and the import pipeline as data: the order is the specification.

Each line says why the step sits where it does (SPEC 4).
"""

from __future__ import annotations

from collections.abc import Callable

from espomail.pipeline.context import Context
from espomail.pipeline.steps import finish_stopped, loop_guard, parse, save, thread, users_teams

IMPORT_PIPELINE: tuple[str, ...] = (
    "parse",  # cheap, never raises; every later step needs decoded values
    "loop-guard",  # our own system mail coming back is dropped before anything is written
    "thread",  # In-Reply-To/References among stored emails: the replied email and its teams
    "users-teams",  # who the email reaches: addresses, the account's users and teams
    "save",  # fields (new emails) and relations (every delivery) in one transaction
)

_MODULES = (parse, loop_guard, thread, users_teams, save, finish_stopped)
STEPS: dict[str, Callable[[Context], None]] = {module.NAME: module.run for module in _MODULES}
