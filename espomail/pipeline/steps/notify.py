"""notify: tell the right people, once (SPEC 4.10).

A new email with a parent gets an email-received stream note on the parent. Followers of
the parent and of its CRM account are notified of that note when their email read level
lets them see the email (admin; all; team and a shared team or among its users; own and
among its users). Every other newly reached user gets a plain email-received
notification, except: the sender, mail a filter trashed or marked read for them,
skip-notification filters and folders. A duplicate fetched by another account notifies
only the users it newly reached. Old mail (SPEC 11: its Date or server arrival time older
than ``side_effects_max_age_days``) notifies nobody; its stream note is still written.
"""

from __future__ import annotations

from espomail.pipeline.context import Context
from espomail.policy import access
from espomail.policy.actors import actor_by_id
from espomail.store import emails as emails_q
from espomail.store import notifications as q

NAME = "notify"
EXCERPT = 500


def run(ctx: Context) -> None:
    old = ctx.old_mail()
    followers = _stream(ctx, notify=old is None) if ctx.is_new and ctx.parent else {}
    if old:
        ctx.decide(NAME, "no notifications", old)
        return
    plain, skipped = [], {}
    for user_id, state in sorted(ctx.users.items()):
        reason = _skip_reason(ctx, user_id, state, followers)
        if reason:
            skipped[_name(ctx, user_id)] = reason
        else:
            plain.append(user_id)
    q.insert_notifications(
        ctx.store, [{"user_id": u, "type": "email-received", "email_id": ctx.email_id} for u in plain]
    )
    if plain or skipped:
        ctx.decide(NAME, "email-received", {"notified": [_name(ctx, u) for u in plain], "not notified": skipped})


def _stream(ctx: Context, notify: bool) -> dict[int, tuple[str, int]]:
    """The stream note on the parent, and (unless old mail) notifications to its followers who may read."""
    kind, record_id = ctx.parent
    note_id = q.insert_note(
        ctx.store, kind, record_id, "email-received", ctx.email_id, _excerpt(ctx), is_initial=ctx.case_created
    )
    if not notify:
        ctx.decide(NAME, "stream note", {"record": f"{kind}:{record_id}", "followers notified": []})
        return {}
    records = [(kind, record_id)]
    if ctx.crm_account_id and (kind, record_id) != ("account", ctx.crm_account_id):
        records.append(("account", ctx.crm_account_id))
    followers = q.followers_of(ctx.store, records)
    users = ctx.existing_users | set(ctx.users)
    facts = access.EmailFacts(frozenset(users), frozenset(ctx.teams | emails_q.team_ids_of(ctx.store, ctx.email_id)))
    sender = next((u for u, s in ctx.users.items() if s.is_sender), None)
    notified, refused = [], {}
    for user_id, record in followers.items():
        actor = actor_by_id(ctx.store, user_id)
        if actor is None or user_id == sender:
            continue
        if not access.allowed(actor, "email.read", facts):
            refused[actor.username] = f"read level {access.level(actor, 'email_read')} does not reach this email"
            continue
        notified.append((user_id, record, actor.username))
    q.insert_notifications(
        ctx.store,
        [
            {
                "user_id": user_id,
                "type": "stream-note",
                "email_id": ctx.email_id,
                "note_id": note_id,
                "record_type": record_type,
                "record_id": record_id,
            }
            for user_id, (record_type, record_id), _ in notified
        ],
    )
    ctx.decide(
        NAME,
        "stream note",
        {
            "record": f"{kind}:{record_id}",
            "followers notified": [n for _, _, n in notified],
            "followers not notified": refused,
        },
    )
    return followers


def _skip_reason(ctx: Context, user_id: int, state, followers: dict) -> str | None:  # noqa: ANN001
    if state.is_sender:
        return "the sender"
    if user_id in followers:
        return "follows the record: gets the stream note"
    if state.in_trash or state.is_read:
        return "a filter trashed it or marked it read"
    if state.skip_notification:
        return "skip-notification filter"
    if state.folder_id:
        folder = ctx.lookups.folder(state.folder_id)
        if folder is not None and folder["skip_notifications"]:
            return f"folder {folder['name']} skips notifications"
    return None


def _excerpt(ctx: Context) -> str:
    lines = [line for line in (ctx.complete().body_text or "").splitlines() if not line.startswith(">")]
    return "\n".join(lines).strip()[:EXCERPT]


def _name(ctx: Context, user_id: int) -> str:
    return ctx.lookups.username(user_id)
