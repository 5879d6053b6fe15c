"""email-to-case: group accounts with create-case (SPEC 5).

Machine-made mail creates no case. Mail whose thread already belongs to a case, or whose
subject holds ``[#N]`` of an existing case, is linked to it (the case's assignee and teams
are added). Anything else creates a case: name = subject, description = text body, teams =
the target team, contact (else lead) from the From address, account from the contact,
the email's attachments; then it is distributed. Duplicates never create a case.
"""

from __future__ import annotations

from espomail.mail.loops import automated_reason
from espomail.model import AccountKind, CaseStatus
from espomail.pipeline.context import Context
from espomail.policy.cases import choose_assignee, number_in_subject
from espomail.policy.parents import crm_account_of
from espomail.store import cases as cases_q
from espomail.store import people as people_q
from espomail.store import records as records_q

NAME = "email-to-case"


def run(ctx: Context) -> None:
    account = ctx.account
    if not ctx.is_new or account is None or account.kind != AccountKind.GROUP or not account.create_case:
        return
    reason = automated_reason(ctx.parsed)
    if reason:
        ctx.decide(NAME, "no case", f"machine-made mail: {reason}")
        return
    if ctx.parent and ctx.parent[0] == "case":
        _link(ctx, cases_q.case_by_id(ctx.store, ctx.parent[1]), "the thread belongs to this case")
        return
    number = number_in_subject(ctx.parsed.subject)
    if number is not None:
        case = cases_q.case_by_number(ctx.store, number)
        if case is not None:
            ctx.parent = ("case", case["id"])
            ctx.crm_account_id = case["account_id"] or ctx.crm_account_id
            _link(ctx, case, f"the subject holds [#{number}]")
            return
    if not ctx.allows("case"):
        ctx.decide(NAME, "no case", "imported without --create-cases")
        return
    _create(ctx)


def _link(ctx: Context, case, why: str) -> None:  # noqa: ANN001
    ctx.case_id = case["id"]
    if case["assigned_user_id"]:
        ctx.add_user(case["assigned_user_id"], f"assignee of case {case['number']}")
    ctx.teams.update(cases_q.team_ids(ctx.store, case["id"]))
    detail = {"why": why}
    if ctx.settings.reopen_closed_cases and case["status"] == CaseStatus.CLOSED and not _from_a_user(ctx):
        status = CaseStatus.ASSIGNED if case["assigned_user_id"] else CaseStatus.NEW
        cases_q.update_case(ctx.store, case["id"], {"status": status})
        detail["reopened"] = f"Closed -> {status} (reopen_closed_cases)"
    ctx.decide(NAME, f"linked to case {case['number']}", detail)


def _from_a_user(ctx: Context) -> bool:
    sender = ctx.parsed.from_
    return bool(sender and people_q.users_by_addresses(ctx.store, [sender.address]))


def _create(ctx: Context) -> None:
    account, parsed = ctx.account, ctx.complete()
    contact_id = lead_id = None
    account_id = ctx.crm_account_id
    if parsed.from_ is not None:
        contacts = records_q.records_by_address(ctx.store, parsed.from_.address, "contact")
        if contacts:
            contact_id = contacts[0]["id"]
            account_id = contacts[0]["account_id"] or account_id
        elif account_id is None:
            leads = records_q.records_by_address(ctx.store, parsed.from_.address, "lead")
            lead_id = leads[0]["id"] if leads else None
    assignee, why = choose_assignee(ctx.store, account)
    description = (parsed.body_text or "").strip() or None
    number = cases_q.insert_case(
        ctx.store,
        {
            "name": parsed.subject[:255],
            "description": description,
            "status": CaseStatus.ASSIGNED if assignee else CaseStatus.NEW,
            "assigned_user_id": assignee,
            "account_id": account_id,
            "contact_id": contact_id,
            "lead_id": lead_id,
            "inbound_account_id": account.id,
        },
    )
    if account.target_team_id:
        cases_q.add_teams(ctx.store, number, [account.target_team_id])
        ctx.teams.add(account.target_team_id)
    cases_q.copy_attachments(ctx.store, number, ctx.email_id, parsed.attachments)
    ctx.parent = ("case", number)
    ctx.crm_account_id = crm_account_of(ctx.store, "case", number)
    ctx.case_id, ctx.case_created = number, True
    if assignee:
        ctx.assigned_user_id = assignee
        ctx.add_user(assignee, f"assignee of new case {number}")
    ctx.count("cases_created")
    assignee_name = people_q.user_by_id(ctx.store, assignee)["username"] if assignee else None
    ctx.decide(
        NAME,
        f"created case {number}",
        {
            "assigned": assignee_name,
            "distribution": why,
            "contact_id": contact_id,
            "lead_id": lead_id,
            "account_id": account_id,
        },
    )
