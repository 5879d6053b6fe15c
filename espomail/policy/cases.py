"""Case numbers in subjects and the distribution of new cases to a team (SPEC 5).

Candidates are the active members of the target team (only those in the target position
when one is set), ordered by user id.

- none: unassigned, status New;
- direct: the assign-to user, status Assigned;
- round-robin: the candidate after the one who got the newest case (highest number)
  among the candidates, wrapping around; the first candidate when none has a case;
- least-busy: the candidate with the fewest cases not Closed, Rejected or Duplicate;
  ties go to the lowest user id.
No candidate: unassigned, status New.
"""

from __future__ import annotations

import re

from espomail.model import Distribution, MailAccount
from espomail.store import cases as cases_q
from espomail.store.db import Store

SUBJECT_NUMBER = re.compile(r"\[#(\d{1,18})[^\]\d]*\]")  # 19 digits and more: not one of ours (2^63)


def number_in_subject(subject: str) -> int | None:
    """N of the first ``[#N]`` (or ``[#N something]``) in a subject."""
    found = SUBJECT_NUMBER.search(subject or "")
    return int(found.group(1)) if found else None


def with_number(subject: str, number: int) -> str:
    """``[#N] subject`` unless the subject carries ``[#N]`` already."""
    if number_in_subject(subject) == number:
        return subject
    return f"[#{number}] {subject}"


def choose_assignee(store: Store, account: MailAccount) -> tuple[int | None, str]:
    """(user id or None, why) for a new case of a group account."""
    method = account.distribution
    if method == Distribution.DIRECT:
        user_id = account.assign_user_id
        return user_id, "direct: the account's assign-to user" if user_id else "direct, but no assign-to user"
    if method not in (Distribution.ROUND_ROBIN, Distribution.LEAST_BUSY) or not account.target_team_id:
        return None, "no distribution"
    candidates = cases_q.team_candidates(store, account.target_team_id, account.target_position)
    if not candidates:
        return None, f"{method}: the target team has no active candidate"
    if method == Distribution.ROUND_ROBIN:
        return _round_robin(store, candidates)
    return _least_busy(store, candidates)


def _round_robin(store: Store, candidates: list[int]) -> tuple[int, str]:
    last = cases_q.last_assignee_among(store, candidates)
    if last is None:
        return candidates[0], "round-robin: no candidate has a case yet, the first by user id"
    following = candidates[(candidates.index(last) + 1) % len(candidates)]
    return following, f"round-robin: the candidate after user {last}, who got the newest case"


def _least_busy(store: Store, candidates: list[int]) -> tuple[int, str]:
    counts = cases_q.open_case_counts(store, candidates)
    chosen = min(candidates, key=lambda uid: (counts.get(uid, 0), uid))
    return chosen, f"least-busy: {counts.get(chosen, 0)} open cases (counts {[counts.get(c, 0) for c in candidates]})"
