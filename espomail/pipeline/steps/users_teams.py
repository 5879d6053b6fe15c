"""users-teams: who the email reaches and which teams it belongs to (SPEC 4.6).

Users: the owners of any address in From/To/Cc/Bcc; the account's users (the owner of a
personal account, in the folder its folder map or personal folder names; every active
member of a group account's teams when add-all-team-users is on; the members of its group
folder's teams); the assigned user. Teams: the account's
teams, its target team, its group folder's teams, and (thread step) the replied email's.
For a duplicate only what is new is added.
"""

from __future__ import annotations

from espomail.model import AccountKind, MailAccount
from espomail.pipeline.context import Context
from espomail.store import emails as emails_q

NAME = "users-teams"


def run(ctx: Context) -> None:
    if not ctx.is_new:
        ctx.existing_users = emails_q.user_ids_of(ctx.store, ctx.email_id)
    _by_address(ctx)
    if ctx.account is not None:
        _from_account(ctx)
    if ctx.assigned_user_id:
        ctx.add_user(ctx.assigned_user_id, "assigned user")
    reached = {ctx.lookups.username(uid): state.reason for uid, state in ctx.users.items()}
    ctx.decide(NAME, "users", reached or "no new users")
    if ctx.teams:
        ctx.decide(NAME, "teams", ctx.lookups.team_names(ctx.teams))


def _by_address(ctx: Context) -> None:
    parsed = ctx.parsed
    roles = [("From", [parsed.from_] if parsed.from_ else [])]
    roles += [("To", parsed.to), ("Cc", parsed.cc), ("Bcc", parsed.bcc)]
    owners = ctx.lookups.users_for(a.address for _, addrs in roles for a in addrs)
    for header, addresses in roles:
        for address in addresses:
            user_id = owners.get(address.lower)
            if user_id is not None:
                is_sender = header == "From"
                ctx.add_user(user_id, f"address {address.address} in {header}", is_sender=is_sender, is_read=is_sender)


def _from_account(ctx: Context) -> None:
    account = ctx.account
    if account.kind == AccountKind.PERSONAL:
        _owner(ctx, account)
        return
    team_ids = ctx.lookups.account_team_ids(account.id)
    ctx.teams.update(team_ids)
    if account.target_team_id:
        ctx.teams.add(account.target_team_id)
    if account.add_team_users:
        for user_id in ctx.lookups.active_team_users(team_ids):
            ctx.add_user(user_id, f"member of a team of group account {account.name}")
    # A move-to-group-folder filter (account-filter step) wins over the account's folder.
    folder_id = ctx.group_folder_id or account.group_folder_id
    if folder_id and (ctx.is_new or not ctx.email["group_folder_id"]):
        _group_folder(ctx, folder_id)
    if account.assign_user_id and ctx.is_new and not ctx.assigned_user_id:
        ctx.assigned_user_id = account.assign_user_id


def _group_folder(ctx: Context, folder_id: int) -> None:
    ctx.group_folder_id = folder_id
    folder_teams = ctx.lookups.folder_team_ids(folder_id)
    ctx.teams.update(folder_teams)
    for user_id in ctx.lookups.active_team_users(frozenset(folder_teams)):
        ctx.add_user(user_id, "member of a team of the group folder")


def _owner(ctx: Context, account: MailAccount) -> None:
    """The owner of a personal account gets its mail in the folder the account maps it to,
    also when their address reached them first (the usual case: the owner's address is in To).
    An owner the email reached before this delivery keeps their state (it is theirs)."""
    folder_id = _personal_folder(ctx)
    if ctx.add_user(account.owner_id, f"owner of personal account {account.name}", folder_id=folder_id):
        return
    state = ctx.users.get(account.owner_id)
    if state is not None and folder_id and state.folder_id is None:
        state.folder_id = folder_id
        folder = ctx.lookups.folder(folder_id)
        shown = folder["name"] if folder is not None else folder_id
        ctx.decide(NAME, "folder", {"user": ctx.lookups.username(account.owner_id), "folder": shown})


def _personal_folder(ctx: Context) -> int | None:
    """The owner's folder for this delivery: the folder map's for its IMAP folder, else the
    account's personal folder (None: the inbox)."""
    imap_folder = ctx.delivery["folder"] if ctx.delivery else None
    return ctx.account.folder_map.get(imap_folder) or ctx.account.personal_folder_id
