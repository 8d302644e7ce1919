"""Named accounts: a person, their role and the hash of their API key, kept in the service database.

A key is 32 random bytes (256 bits) shown once when it is made; only its SHA-256 is stored. A slow password hash
(bcrypt, scrypt) protects guessable secrets; a key this random cannot be guessed, so a fast hash loses nothing and
lets a request find its account by an index lookup on the hash (no key is ever compared in a loop, and the database
never holds anything a caller could present).

Accounts are never deleted, only disabled: once the first account exists the service never falls back to trial mode
(see `Directory` in directory.py).

The table is made by the service database's migrations (kb_service/db/migrations); the SQL is portable (named
parameters, ON CONFLICT), so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kb_service.db.versions import SYSTEM_AUTHOR
from kb_service.errors import KbError, NotFoundError

AccountRole = Literal["agent", "trainer", "admin"]
ROLES: tuple[AccountRole, ...] = ("agent", "trainer", "admin")
KEY_PREFIX = "kbu_"
# A person's name as trainers will read it in reports: letters of any script, digits, and . _ - · (no ':' so that it
# never looks like a service account's "role:fingerprint").
NAME = re.compile(r"^[\w.\-·]{1,40}$")
# The author of folder imports in the version history (kb_service/db/versions.py): no new account may take it.
RESERVED = frozenset({SYSTEM_AUTHOR})


class Database(Protocol):
    """What the store needs of the service database (`Logbook`)."""

    def transaction(self) -> AbstractContextManager[Any]: ...

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Any]: ...


class AccountError(KbError):
    """A bad account name or role, or a name that is taken (the message says which)."""


class AccountExistsError(AccountError):
    pass


@dataclass(frozen=True)
class Account:
    name: str
    role: AccountRole
    created_ts: float
    updated_ts: float
    disabled_ts: float | None
    created_by: str

    @property
    def active(self) -> bool:
        return self.disabled_ts is None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _account(row: Mapping[str, Any]) -> Account:
    return Account(
        name=row["name"],
        role=row["role"],
        created_ts=row["created_ts"],
        updated_ts=row["updated_ts"],
        disabled_ts=row["disabled_ts"],
        created_by=row["created_by"],
    )


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME.match(name):
        raise AccountError(
            f"账号名“{name[:40]}”不合法：1–40 个字母、汉字、数字或 . _ - · / "
            "an account name is 1-40 letters, digits or . _ - ·"
        )
    return name


def check_role(role: str) -> AccountRole:
    if role not in ROLES:
        raise AccountError(f"角色只能是 agent、trainer 或 admin，收到 {role} / role must be agent, trainer or admin")
    return role


COLUMNS = "name, role, created_ts, updated_ts, disabled_ts, created_by"


class AccountStore:
    """The accounts table. Every write is its own transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, role: str, *, by: str) -> tuple[Account, str]:
        """A new account and its key (returned once, never stored)."""
        name, checked = check_name(name), check_role(role)
        if name.lower() in RESERVED:
            raise AccountError(f"账号名“{name}”是系统保留的，请换一个 / '{name}' is a reserved name")
        key, now = new_key(), time.time()
        with self.db.transaction() as c:
            cur = c.execute(
                "INSERT INTO accounts (name, role, key_hash, created_ts, updated_ts, disabled_ts, created_by)"
                " VALUES (:name, :role, :hash, :now, :now, NULL, :by) ON CONFLICT (name) DO NOTHING",
                {"name": name, "role": checked, "hash": key_hash(key), "now": now, "by": by},
            )
            if cur.rowcount == 0:
                raise AccountExistsError(f"账号 {name} 已存在 / account '{name}' exists")
        return Account(name, checked, now, now, None, by), key

    def get(self, name: str) -> Account | None:
        rows = self.db.rows(f"SELECT {COLUMNS} FROM accounts WHERE name = :name", {"name": name})
        return _account(rows[0]) if rows else None

    def list(self) -> list[Account]:
        return [_account(r) for r in self.db.rows(f"SELECT {COLUMNS} FROM accounts ORDER BY name")]

    def by_key(self, key: str) -> Account | None:
        rows = self.db.rows(f"SELECT {COLUMNS} FROM accounts WHERE key_hash = :hash", {"hash": key_hash(key)})
        return _account(rows[0]) if rows else None

    def by_hash(self) -> dict[str, Account]:
        """Every account by its key's hash (what a process falls back on while the database cannot be read)."""
        return {r["key_hash"]: _account(r) for r in self.db.rows(f"SELECT key_hash, {COLUMNS} FROM accounts")}

    def count(self) -> int:
        return int(self.db.rows("SELECT COUNT(*) AS n FROM accounts")[0]["n"])

    def _update(self, name: str, sql: str, params: dict[str, Any]) -> Account:
        with self.db.transaction() as c:
            cur = c.execute(sql, {"name": check_name(name), "now": time.time(), **params})
            if cur.rowcount == 0:
                raise NotFoundError(f"没有账号 {name} / unknown account '{name}'")
        account = self.get(name)
        if account is None:  # accounts are never deleted
            raise NotFoundError(f"没有账号 {name} / unknown account '{name}'")
        return account

    def disable(self, name: str) -> Account:
        return self._update(
            name,
            "UPDATE accounts SET disabled_ts = COALESCE(disabled_ts, :now), updated_ts = :now WHERE name = :name",
            {},
        )

    def enable(self, name: str) -> Account:
        return self._update(name, "UPDATE accounts SET disabled_ts = NULL, updated_ts = :now WHERE name = :name", {})

    def rotate(self, name: str) -> tuple[Account, str]:
        """A new key for the account; the old one stops working."""
        key = new_key()
        account = self._update(
            name, "UPDATE accounts SET key_hash = :hash, updated_ts = :now WHERE name = :name", {"hash": key_hash(key)}
        )
        return account, key

    def set_role(self, name: str, role: str) -> Account:
        return self._update(
            name, "UPDATE accounts SET role = :role, updated_ts = :now WHERE name = :name", {"role": check_role(role)}
        )

    def names(self, roles: Sequence[str] = ROLES, active_before: float | None = None) -> Iterator[Account]:
        """Active accounts of these roles (created before `active_before` when given)."""
        for a in self.list():
            if a.active and a.role in roles and (active_before is None or a.created_ts <= active_before):
                yield a
