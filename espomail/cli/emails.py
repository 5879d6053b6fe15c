"""``espomail email``: list, show, explain, import, reprocess (and per-user actions)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from espomail import validate
from espomail.cli.app import get_app
from espomail.cli.output import (
    Paging,
    confirm,
    date,
    emit,
    json_option,
    key,
    message,
    paging_options,
    say,
    short,
    show_list,
    text,
)
from espomail.cli.types import ID, NonEmptyPath
from espomail.errors import InvalidInput
from espomail.services import emails

LIST_COLUMNS = [
    key("id"),
    date("date_sent", "date", priority=6),
    text("from", priority=5, weight=2),
    text("subject", priority=7, weight=3),
    short("parent", priority=3),
    text("accounts", priority=2),
    short("status", priority=4),
]


@click.group()
def email() -> None:
    """Emails: one per message, shared by every account and user that it reached.

    \b
    Examples:
      espomail email list --account support
      espomail email show 42
    """


@email.command("list")
@click.option(
    "--folder",
    metavar="F",
    help="inbox, sent, archive, trash, all, or a folder name (default with --as: inbox; else all).",
)
@click.option("--parent", metavar="TYPE:ID", help="Only emails linked to this record, e.g. case:12.")
@click.option("--account", metavar="A", help="Only emails fetched by this mail account.")
@click.option(
    "--state",
    default="processed",
    show_default=True,
    type=click.Choice(list(emails.STATES), case_sensitive=False),
    help="Processing state (administrators: failed).",
)
@click.option("--bodies", is_flag=True, help="Include body_text and body_html (null otherwise; slower).")
@paging_options
@json_option
def list_(folder, parent, account, state, bodies, paging: Paging) -> None:
    """List emails, newest first (with --as: only what that user may read).

    \b
    Examples:
      espomail --as alice email list --json
      espomail email list --parent account:3 --limit 20
      espomail email list --state failed
    """
    app = get_app()

    def rows(limit: int, offset: int) -> list[dict]:
        return emails.list_for(app.store, app.actor, folder, parent, account, state, limit, offset, bodies)

    show_list(rows, LIST_COLUMNS, paging)


@email.command("show")
@click.argument("email_id", metavar="ID", type=ID)
@click.option("--raw", is_flag=True, help="Print the exact stored source bytes.")
@json_option
def show(email_id: int, raw: bool) -> None:
    """Show one email (or its raw source with --raw).

    \b
    Examples:
      espomail email show 42
      espomail email show 42 --raw > message.eml
    """
    app = get_app()
    if raw:
        data = emails.raw(app.store, app.actor, email_id)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    emit(emails.show(app.store, app.actor, email_id))


@email.command("explain")
@click.argument("email_id", metavar="ID", type=ID)
@json_option
def explain(email_id: int) -> None:
    """Why an email was filtered, linked, given to these users, turned into a case.

    \b
    Example:
      espomail email explain 42
    """
    app = get_app()
    data = emails.explain(app.store, app.actor, email_id)
    if app.json:
        emit(data)
        return
    say(f"email {data['id']}: {data['subject']}  [{data['state']}]")
    if data["last_error"]:
        say(f"last error: {data['last_error']}")
    for delivery in data["deliveries"]:
        where = delivery["account"] or "import"
        say(f"delivery {delivery['id']} via {where} {delivery['folder'] or ''}: {delivery['state']}")
    for event in data["events"]:
        detail = event["detail"]
        if isinstance(detail, dict | list):
            import json

            detail = json.dumps(detail, ensure_ascii=False)
        say(f"  {event['step']:<14} {event['decision']:<14} {detail or ''}".rstrip())


@email.command("import")
@click.argument("path", metavar="FILE.eml|MBOX|MAILDIR", type=NonEmptyPath(path_type=Path))
@click.option("--account", metavar="A", help="Import as if fetched by this account (its teams, filters).")
@click.option("--send-auto-replies", is_flag=True, help="Send the account's auto-replies to recent mail (default: no).")
@click.option("--create-cases", is_flag=True, help="Open new cases as the account would (default: no).")
@json_option
def import_(path: Path, account: str | None, send_auto_replies: bool, create_cases: bool) -> None:
    """Import messages from a file, an mbox, a Maildir or a directory of .eml files.

    The same pipeline as fetch (de-duplication, filters, linking), for migrations from
    other systems; messages already stored are recognised. It sends nothing and opens no
    case unless asked (--send-auto-replies, --create-cases); mail older than
    side_effects_max_age_days gets no auto-reply or notification in any case. Files of a
    directory that do not look like mail are skipped and listed.

    \b
    Examples:
      espomail email import old-system.mbox --account support
      espomail email import ~/Maildir
      espomail email import today.mbox --account support --create-cases --send-auto-replies
    """
    from espomail.services import importing
    from espomail.services.ingest import SideEffects

    app = get_app()
    side_effects = SideEffects(auto_replies=send_auto_replies, cases=create_cases)
    result = importing.import_path(app.store, app.actor, app.settings, path, account, side_effects)
    emit(result)
    skipped = result["skipped"]
    if skipped and not app.json:
        names = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        message(f"skipped {len(skipped)} file(s) that do not look like mail: {names}")
    if result["failed"]:
        click.get_current_context().exit(1)


@email.command("reprocess")
@click.argument("email_id", metavar="ID", type=ID, required=False)
@click.option("--failed", is_flag=True, help="Retry every failed import.")
@json_option
def reprocess(email_id: int | None, failed: bool) -> None:
    """Run the import pipeline again for a failed email (or all with --failed).

    \b
    Examples:
      espomail email reprocess 42
      espomail email reprocess --failed
    """
    from espomail.services import importing

    app = get_app()
    result = importing.reprocess(app.store, app.actor, app.settings, email_id, failed)
    emit(result)
    if result["failed"]:
        click.get_current_context().exit(1)


STATE_DONE = {
    "read": "Marked email {id} read",
    "unread": "Marked email {id} unread",
    "trash": "Trashed email {id}",
    "restore": "Restored email {id}",
    "archive": "Archived email {id}",
}


def _done(result: dict, line: str) -> None:
    """A per-user action's result: the email as JSON with --json, else one line on stderr."""
    if get_app().json:
        emit(result)
    else:
        message(line)


def _state_command(action: str, doc: str):
    help_text = f"""{doc}

    \b
    Example:
      espomail --as alice email {action} 42
    """

    @email.command(action, help=help_text)
    @click.argument("email_id", metavar="ID", type=ID)
    @json_option
    def command(email_id: int) -> None:
        from espomail.services import email_actions

        app = get_app()
        result = email_actions.change_state(app.store, app.actor, email_id, action)
        _done(result, STATE_DONE[action].format(id=email_id) + f" for {app.actor.username}")

    return command


for _action, _doc in (
    ("read", "Mark an email read for you (needs --as)."),
    ("unread", "Mark an email unread for you (needs --as)."),
    ("trash", "Move an email to your trash; others keep it (needs --as)."),
    ("restore", "Bring an email back from your trash or archive (needs --as)."),
    ("archive", "Archive an email for you (needs --as)."),
):
    _state_command(_action, _doc)


@email.command("move")
@click.argument("email_id", metavar="ID", type=ID)
@click.option("--folder", required=True, metavar="F", help="One of your folders, or inbox.")
@json_option
def move(email_id: int, folder: str) -> None:
    """File an email in one of your folders (needs --as).

    \b
    Example:
      espomail --as alice email move 42 --folder Invoices
    """
    from espomail.services import email_actions

    app = get_app()
    result = email_actions.change_state(app.store, app.actor, email_id, "move", folder)
    _done(result, f"Moved email {email_id} to {folder} for {app.actor.username}")


@email.command("link")
@click.argument("email_id", metavar="ID", type=ID)
@click.option("--parent", required=True, metavar="TYPE:ID", help="The record, e.g. account:3 or case:12.")
@json_option
def link(email_id: int, parent: str) -> None:
    """Link an email to a CRM record by hand (needs the email edit level).

    \b
    Example:
      espomail email link 42 --parent opportunity:7
    """
    from espomail.services import email_actions

    app = get_app()
    emit(email_actions.link(app.store, app.actor, email_id, parent))


@email.command("update")
@click.argument("email_id", metavar="ID", type=ID)
@click.option("--assignee", metavar="U", help="The assigned user ('' for nobody).")
@click.option("--assign", metavar="U", hidden=True, help="Old spelling of --assignee.")
@click.option("--add-team", multiple=True, metavar="T", help="Add a team.")
@click.option("--remove-team", multiple=True, metavar="T", help="Remove a team.")
@json_option
def update(
    email_id: int, assignee: str | None, assign: str | None, add_team: tuple[str, ...], remove_team: tuple[str, ...]
) -> None:
    """Change the assigned user or teams of an email (needs the email edit level).

    \b
    Example:
      espomail email update 42 --assignee bob --add-team sales
    """
    from espomail.services import email_actions

    app = get_app()
    who = assignee if assignee is not None else assign
    emit(email_actions.update(app.store, app.actor, email_id, who, add_team, remove_team))


@email.command("delete")
@click.argument("email_id", metavar="ID", type=ID)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def delete(email_id: int, yes: bool) -> None:
    """Delete an email for EVERYONE (with its attachments). Users should trash instead.

    Asks for confirmation on a terminal; needs --yes otherwise.

    \b
    Example:
      espomail email delete 42 --yes
    """
    app = get_app()
    confirm(
        f"Delete email {email_id} for every user?", yes, "deleting removes the email for every user; confirm with --yes"
    )
    from espomail.services import email_actions

    _done(email_actions.delete(app.store, app.actor, email_id), f"Deleted email {email_id} for every user")


@email.command("send")
@click.option("--from", "sender", required=True, metavar="ADDR", help="Your address, or a shared group address.")
@click.option("--to", "to", multiple=True, required=True, metavar="ADDR", help="A recipient (repeatable).")
@click.option("--cc", multiple=True, metavar="ADDR", help="A copy recipient (repeatable).")
@click.option("--subject", required=True, help="The subject ([#N] is added for a case parent).")
@click.option("--body", help="The body text.")
@click.option("--body-file", type=NonEmptyPath(path_type=Path), help="Read the body from a file ('-': stdin).")
@click.option("--html", is_flag=True, help="The body is HTML.")
@click.option("--parent", metavar="TYPE:ID", help="Link to a record; with case:N replies return to the group mailbox.")
@click.option("--reply-to-email", type=ID, metavar="ID", help="Reply to this email (In-Reply-To, References).")
@click.option("--attach", multiple=True, type=NonEmptyPath(path_type=Path), help="Attach a file (repeatable).")
@json_option
def send(sender, to, cc, subject, body, body_file, html, parent, reply_to_email, attach) -> None:
    """Send an email through the right SMTP and store it (status Sent).

    \b
    Example:
      espomail --as alice email send --from support@example.com --to jane@acme.example \\
          --subject "Your printer" --body "It is fixed." --parent case:12
    """
    from espomail.services import sending

    validate.single_line(subject, "--subject")  # before anything else: a bad subject is bad input (exit 2)
    if (body is None) == (body_file is None):
        raise InvalidInput("give exactly one of --body and --body-file")
    if body_file is not None:
        body = sys.stdin.read() if str(body_file) == "-" else _read_text(body_file)
    app = get_app()
    draft = sending.Draft(sender, list(to), list(cc), subject, body, html, parent, reply_to_email, attach)
    emit(sending.send(app.store, app.actor, app.settings, draft))


@email.command("resend")
@click.argument("email_id", metavar="ID", type=int)
@json_option
def resend(email_id: int) -> None:
    """Send a Failed outgoing email again, now (the same message, the same Message-ID).

    An outgoing email (an auto-reply, an 'email send') is tried up to send_retries times
    by later fetches, then stays Failed; this starts a new series of attempts, the first at
    once. Administrators, or the user who sent it (with email create).

    \b
    Example:
      espomail email resend 42
    """
    from espomail.services import outbox, sending

    app = get_app()
    attempt = outbox.resend(app.store, app.actor, app.settings, email_id)
    if attempt.outcome != outbox.Outcome.SENT:
        raise sending.SendFailed(sending.failure_message(attempt, app.settings))
    result = sending.sent_result(app.store, app.actor, attempt)
    line = f"Sent email {email_id} to {', '.join(result['to'] + result['cc'])}"
    _done(result, line + (f" ({result['refused']})" if result.get("refused") else ""))


def _read_text(path: Path) -> str:
    from espomail.errors import NotFound

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no file {path} (given to --body-file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


COMMANDS = [email]
