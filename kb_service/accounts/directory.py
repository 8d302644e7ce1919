"""Who is calling: a bearer key resolved into a person (named account), a service account (KB_API_KEYS) or nobody.

Each server process keeps what it looked up for `TTL` seconds (and, while the database cannot be read, for up to
`STALE_GRACE` seconds), so a search pays one SHA-256 and a dictionary lookup
(about a microsecond), and a disabled or rotated key stops working in every process within `TTL` seconds of the
change (the cache is never trusted longer; nothing needs to tell the other processes).

Trial mode (no authentication, every caller an agent) holds only while there is neither a KB_API_KEYS entry nor any
account row. Each process re-reads the account count every `TTL` seconds while it has seen none; once it has seen
one it never reads it again, because accounts are never deleted (only disabled): trial mode cannot come back. The
first account added while a trial server runs ends trial mode in every process within `TTL` seconds; until then a
caller is treated as the trial agent it already was a moment before. When the count cannot be read (loading, a
database error) the process does not assume trial mode: callers without a key are tenants.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

from kb_service.accounts.store import Account, AccountStore, key_hash
from kb_service.errors import first_line

log = logging.getLogger(__name__)

TTL = 2.0
# While the database cannot be read (a PostgreSQL restart, a failover), a key looked up within this many seconds keeps
# the answer it had: agents go on searching through a short outage. A key disabled during the outage keeps working
# until the database answers again or this long after its last successful lookup.
STALE_GRACE = 600.0
KNOWN_EVERY = 15.0  # how often a process re-reads every account (its fallback for keys it never looked up, below)
CACHE_SIZE = 4096  # keys remembered per process (invalid ones too, so a client retrying a bad key costs nothing)
CallerRoleName = Literal["public", "agent", "trainer", "admin"]
CallerKind = Literal["account", "service", "public", "trial"]


@dataclass(frozen=True)
class Identity:
    """The person (or service) behind a request. `name` is what history, feedback and practice record: the account
    name, `role:fingerprint` for a KB_API_KEYS key, `public` without a key, `trial` in trial mode."""

    name: str
    role: CallerRoleName
    kind: CallerKind

    @property
    def staff(self) -> bool:
        return self.role != "public"

    @property
    def trainer(self) -> bool:
        """Trainer rights: trainers and admins."""
        return self.role in ("trainer", "admin")

    @property
    def rights(self) -> Literal["public", "agent", "trainer"]:
        """The role whose rights the caller has: an admin has a trainer's (and manages accounts besides)."""
        return "trainer" if self.role == "admin" else self.role


PUBLIC = Identity("public", "public", "public")
TRIAL = Identity("trial", "agent", "trial")


class Refused(Exception):
    """A key that names nobody (401) or a disabled account (401), or accounts that cannot be read now (503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


INVALID = Refused(401, "API 密钥无效 / invalid API key")
DISABLED = Refused(401, "该账号已停用，请联系管理员 / this account is disabled")
UNAVAILABLE = Refused(503, "账号信息暂时无法读取，请稍后再试 / accounts cannot be read right now, retry shortly")
# Before loading has opened the account table (a replica starting): the same answer as every other request then.
LOADING = Refused(503, "服务正在加载模型和索引，请稍后再试 / service is loading, retry shortly")
WARN_EVERY = 30.0  # seconds between two warnings that accounts cannot be read (one per request flooded the log)


def service_name(role: str, key: str) -> str:
    """A KB_API_KEYS key's name: its role and a short fingerprint (never the key)."""
    return f"{role}:{hashlib.sha256(key.strip().encode()).hexdigest()[:6]}"


class Directory:
    """Resolves keys for one process. `lookup` and `refresh_trial` read the database (call them off the event loop);
    `cached` and `trial` never do."""

    def __init__(self, env_keys: dict[str, str], ttl: float = TTL) -> None:
        self._env = {k: Identity(service_name(role, k), role, "service") for k, role in env_keys.items()}  # type: ignore[arg-type]
        self.ttl = ttl
        self.store: AccountStore | None = None
        self._cache: dict[str, tuple[float, Account | None]] = {}
        self._lock = threading.Lock()
        self._accounts_seen = False
        self._trial_checked: float | None = None
        self._warned_at = -WARN_EVERY
        self._failures = 0
        # Every account as last read: while the database cannot be read, a key this process never looked up is
        # answered from it (an operator's trial: a scrape with a staff key got 503 from the worker that had not seen
        # the key yet, exactly while the database was down; so would an agent's search on such a worker).
        self._known: tuple[float, dict[str, Account]] | None = None
        self._closed = threading.Event()

    def attach(self, store: AccountStore | None, every: float | None = None) -> None:
        """Use `store`; with `every`, re-read every account that often in a background thread too, so a key created
        just before an outage, and not used since, is known during it (an operator's re-check: one made a minute
        before was refused)."""
        self.store = store
        self._read_known()
        if store is not None and every is not None:
            threading.Thread(target=self._keep_known, args=(every,), name="kb-accounts", daemon=True).start()

    def _keep_known(self, every: float) -> None:
        while not self._closed.wait(every):
            self._read_known(every)

    def close(self) -> None:
        """Stop re-reading the accounts in the background."""
        self._closed.set()

    def _read_known(self, every: float = KNOWN_EVERY) -> None:
        """Re-read every account when the last read is older than `every` (quietly: a fallback only)."""
        known = self._known
        if self.store is None or (known is not None and time.monotonic() - known[0] < every):
            return
        try:
            self._known = (time.monotonic(), self.store.by_hash())
        except Exception as exc:
            log.debug("accounts could not be read for the fallback: %s", first_line(exc))

    # -- keys ---------------------------------------------------------------------------------------------------
    def env_caller(self, token: str) -> Identity | None:
        for key, caller in self._env.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                return caller
        return None

    def cached(self, token: str) -> Identity | Literal[False] | None:
        """The cached answer for a key: an Identity, None (refused: `lookup` raises why) or False (not cached)."""
        with self._lock:
            hit = self._cache.get(key_hash(token))
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return False
        account = hit[1]
        return _caller(account) if account is not None and account.active else None

    def lookup(self, token: str) -> Identity:
        """Read the account of a key from the database (and remember it for `ttl` seconds)."""
        if self.store is None:
            raise LOADING
        try:
            account = self.store.by_key(token)
        except Exception as exc:  # any database error: the key can be neither accepted nor refused from the database
            with self._lock:
                hit = self._cache.get(key_hash(token))
            if hit is not None and time.monotonic() - hit[0] <= STALE_GRACE:
                self._warn("accounts could not be read (%s): keys looked up before keep their answer", exc)
                return self._answer(hit[1])
            known = self._known
            if known is not None and time.monotonic() - known[0] <= STALE_GRACE and key_hash(token) in known[1]:
                self._warn("accounts could not be read (%s): keys answered as last read", exc)
                return self._answer(known[1][key_hash(token)])
            self._warn("accounts could not be read (%s): keys not known before get 503", exc)
            raise UNAVAILABLE from exc
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key_hash(token)] = (time.monotonic(), account)
        return self._answer(account)

    def _warn(self, message: str, exc: Exception) -> None:
        """Log that accounts cannot be read at most every WARN_EVERY seconds, with how many times it happened."""
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            if now - self._warned_at < WARN_EVERY:
                return
            failures, self._failures, self._warned_at = self._failures, 0, now
        log.warning(message + " (%d times since the last warning)", str(exc).splitlines()[0][:200], failures)

    def holds(self, name: str) -> bool:
        """Whether `name` may still use what it was given (a WebSocket ticket): False once its account is disabled.
        Names without an account (service keys, the trial agent) and a database that cannot be read say True: they
        are refused where keys are checked. Reads the database (call it off the event loop)."""
        if self.store is None:
            return True
        try:
            account = self.store.get(name)
        except Exception as exc:  # as for keys during an outage: what was allowed stays allowed
            log.warning("accounts could not be read: %s", first_line(exc))
            return True
        return account is None or account.active

    @staticmethod
    def _answer(account: Account | None) -> Identity:
        if account is None:
            raise INVALID
        if not account.active:
            raise DISABLED
        return _caller(account)

    def refused(self, token: str) -> Refused:
        """Why a cached refusal was refused."""
        with self._lock:
            hit = self._cache.get(key_hash(token))
        return DISABLED if hit is not None and hit[1] is not None else INVALID

    # -- trial mode ---------------------------------------------------------------------------------------------
    @property
    def trial(self) -> bool:
        """Trial mode as last read: no KB_API_KEYS, and the account count was read and was zero."""
        return not self._env and not self._accounts_seen and self._trial_checked is not None

    @property
    def auth_enabled(self) -> bool:
        return not self.trial

    def trial_stale(self) -> bool:
        if self._env or self._accounts_seen:
            return False
        checked = self._trial_checked
        return checked is None or time.monotonic() - checked > self.ttl

    def refresh_trial(self) -> bool:
        """Read whether any account exists (at most every `ttl` seconds are needed); returns `trial`."""
        if self._env or self._accounts_seen:
            return False
        if self.store is None:
            return False
        try:
            seen = self.store.count() > 0
        except Exception as exc:  # unknown: not trial
            log.warning("accounts could not be counted: %s", first_line(exc))
            self._trial_checked = None
            return False
        self._accounts_seen = seen
        self._trial_checked = time.monotonic()
        return self.trial


def _caller(account: Account) -> Identity:
    return Identity(account.name, account.role, "account")
