"""Lookups that stay the same for a whole batch of deliveries: filters, accounts, teams, names.

One ``Lookups`` lives for one ``ingest.process`` call (one batch, one transaction), so the
steps ask the store once per batch instead of once per message. Nothing here changes
while a batch is processed: administrators change these from other commands.
"""

from __future__ import annotations

import functools

from espomail.mail import msgid
from espomail.model import MailAccount
from espomail.policy import filters
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store import filters as filters_q
from espomail.store import folders as folders_q
from espomail.store import people as people_q
from espomail.store import records as records_q
from espomail.store import settings as settings_q
from espomail.store.db import Row, Store


def _memo(method):  # noqa: ANN001, ANN202
    """Cache a method's results on the instance (a Lookups lives for one batch): unlike
    functools.cache, the cache goes away with the instance."""

    @functools.wraps(method)
    def cached(self, *args):  # noqa: ANN001, ANN202
        key = (method.__name__, *args)
        if key not in self._memo:
            self._memo[key] = method(self, *args)
        return self._memo[key]

    return cached


class Lookups:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._memo: dict = {}
        self._users: dict[str, int | None] = {}
        self._records: dict[str, list[Row]] = {}
        self._email_ids: dict[str, int | None] = {}
        self._emails: dict[int, tuple[Row | None, frozenset[int]]] = {}

    # -- per-message lookups, asked for a whole batch at once ------------------------------
    def prefetch(self, parsed_list) -> None:  # noqa: ANN001 - ParsedEmail objects
        """Three queries for a batch instead of three per message: the users owning any
        address, the records owning the linking candidates, the emails referenced."""
        addresses, candidates, references = set(), set(), set()
        for parsed in parsed_list:
            everyone = [parsed.from_, *parsed.to, *parsed.cc, *parsed.bcc]
            addresses.update(a.lower for a in everyone if a)
            firsts = [parsed.from_, *parsed.reply_to[:1], *parsed.to[:1]]
            candidates.update(a.lower for a in firsts if a)
            references.update(r for r in [parsed.in_reply_to, *parsed.references] if r)
        self.users_for(addresses)
        self.records_for(candidates)
        self.prefetch_emails(self.email_ids_for(references).values())

    def users_for(self, addresses) -> dict[str, int]:  # noqa: ANN001
        """Lower-cased address -> the active user owning it."""
        wanted = {a.lower() for a in addresses}
        missing = [a for a in wanted if a not in self._users]
        if missing:
            found = people_q.users_by_addresses(self.store, missing)
            self._users.update({a: found.get(a) for a in missing})
        return {a: self._users[a] for a in wanted if self._users[a] is not None}

    def records_for(self, addresses) -> dict[str, list[Row]]:  # noqa: ANN001
        """Lower-cased address -> contacts, accounts and leads owning it (lowest id first)."""
        wanted = {a.lower() for a in addresses}
        missing = [a for a in wanted if a not in self._records]
        if missing:
            for address in missing:
                self._records[address] = []
            for row in records_q.records_by_addresses(self.store, missing):
                self._records[row["address_lower"]].append(row)
        return {a: self._records[a] for a in wanted}

    def email_ids_for(self, message_ids) -> dict[str, int]:  # noqa: ANN001
        """Message-ID -> the stored email that has it."""
        wanted = set(message_ids)
        missing = [m for m in wanted if m not in self._email_ids]
        if missing:
            found = emails_q.ids_by_message_ids(self.store, missing)
            self._email_ids.update({m: found.get(m) for m in missing})
        return {m: self._email_ids[m] for m in wanted if self._email_ids[m] is not None}

    def prefetch_emails(self, ids) -> None:  # noqa: ANN001
        """The rows and teams of the emails replied to (two queries for a batch, not two per reply)."""
        missing = sorted({i for i in ids if i not in self._emails})
        if missing:
            rows = emails_q.by_ids(self.store, "emails", missing)
            teams = emails_q.team_ids_by_email(self.store, missing)
            self._emails.update({i: (rows.get(i), frozenset(teams.get(i, ()))) for i in missing})

    def email(self, email_id: int) -> tuple[Row | None, frozenset[int]]:
        """An email's row and teams as stored when the batch began: what this batch changes is
        in its BatchWriter (pending_fields, pending_teams) until ``forget_emails``."""
        self.prefetch_emails([email_id])
        return self._emails[email_id]

    def forget_emails(self) -> None:
        """The batch wrote its rows (a flush in the middle of a batch): read them again."""
        self._emails.clear()

    @_memo
    def account(self, account_id: int) -> MailAccount | None:
        return accounts_q.account_by_id(self.store, account_id)

    @_memo
    def account_team_ids(self, account_id: int) -> frozenset[int]:
        return frozenset(accounts_q.team_ids(self.store, account_id))

    @_memo
    def active_team_users(self, team_ids: frozenset[int]) -> tuple[int, ...]:
        return tuple(people_q.active_team_users(self.store, sorted(team_ids)))

    @_memo
    def account_filters(self, account_id: int | None) -> tuple[Row, ...]:
        """Global filters, then the account's, each in the order they are tried."""
        rows = filters.in_order(filters_q.global_filters(self.store))
        if account_id is not None:
            rows += filters.in_order(filters_q.account_filters(self.store, account_id))
        return tuple(rows)

    @_memo
    def user_filters(self, user_id: int) -> tuple[Row, ...]:
        return tuple(filters.in_order(filters_q.user_filters(self.store, user_id)))

    @functools.cached_property
    def users_with_filters(self) -> frozenset[int]:
        return frozenset(filters_q.users_with_filters(self.store))

    @functools.cached_property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(accounts_q.all_addresses(self.store))

    @functools.cached_property
    def system_address(self) -> str | None:
        return settings_q.get(self.store, "outbound_address")

    @_memo
    def message_id_domains(self, configured: str | None) -> frozenset[str]:
        """Every domain our generated Message-IDs may carry (msgid.known_domains)."""
        return msgid.known_domains(self.own_addresses, configured, self.system_address)

    def message_id_domain(self, sender: str | None, configured: str | None) -> str:
        """The domain of a Message-ID generated for mail from ``sender``."""
        return msgid.domain_for(sender, configured, self.system_address)

    @_memo
    def username(self, user_id: int) -> str:
        return people_q.username(self.store, user_id) or str(user_id)

    def team_names(self, team_ids) -> list[str]:  # noqa: ANN001
        return sorted(self._team_name(t) for t in team_ids)

    @_memo
    def _team_name(self, team_id: int) -> str:
        return people_q.team_name(self.store, team_id) or str(team_id)

    @_memo
    def folder(self, folder_id: int) -> Row | None:
        return folders_q.folder(self.store, folder_id)

    @_memo
    def folder_team_ids(self, folder_id: int) -> tuple[int, ...]:
        return tuple(folders_q.folder_team_ids(self.store, folder_id))
