"""Delivering hand-over cases to the company's system: a background thread per server process takes due events from
the outbox under a lease (so one process delivers a given event at a time), POSTs the stored JSON body signed with
HMAC-SHA256 (`X-KB-Signature: sha256=<hex>`), and records the outcome. A failed delivery is retried with exponential
backoff; a restart loses nothing, because the event stays in the database until it is delivered or given up."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from kb_service.db.engine import DB_ERRORS
from kb_service.db.outage import OutageLog
from kb_service.errors import first_line
from kb_service.handover.outbox import Lease, event_name
from kb_service.handover.store import CaseStore

log = logging.getLogger("kb.handover")

TIMEOUT = 10.0  # seconds one delivery may take
LEASE_SECONDS = 30.0  # longer than a delivery: a process that died mid-delivery releases its row after this
MAX_ATTEMPTS = 12  # about 17 hours of backoff in all, then the event is marked failed (visible to staff)
BACKOFF_BASE = 2.0
BACKOFF_MAX = 3600.0
PURGE_INTERVAL = 600.0  # seconds between two deletions of expired cases


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed but fails the attempt: urllib follows a POST's 301/302/303 as a GET without the
    body, and the GET's 200 counted as delivered (an integrator's trial: every case lost behind one redirect)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, base: float = BACKOFF_BASE) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2×base, 4×base … at most an hour."""
    return float(min(BACKOFF_MAX, base * 2 ** max(0, attempts - 1)))


@dataclass
class WebhookWorker:
    """`run_once()` delivers at most one due event (tests call it); `start()` runs it in a loop on a thread."""

    store: CaseStore
    url: str
    secret: str
    poll_seconds: float = 1.0
    backoff_base: float = BACKOFF_BASE
    max_attempts: int = MAX_ATTEMPTS
    owner: str = field(default_factory=lambda: secrets.token_hex(6))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _purged_at: float = 0.0
    _outage: OutageLog = field(default_factory=lambda: OutageLog(log, "hand-over worker"))

    def run_once(self) -> bool:
        """True when an event was attempted (delivered or not)."""
        lease = self.store.lease(self.owner, LEASE_SECONDS) if self.url else None
        if lease is None:
            return False
        error = self._post(lease)
        # a case's events told apart in the log (an integrator's trial read three identical lines)
        what = f"case {lease.case_id} {event_name(lease.body) or 'event'} (event {lease.event_id})"
        if error is None:
            self.store.delivered(lease, self.owner)
            log.info("%s delivered to the webhook (attempt %d)", what, lease.attempts)
        else:
            more = lease.attempts < self.max_attempts
            retry = time.time() + backoff(lease.attempts, self.backoff_base) if more else None
            self.store.failed(lease, self.owner, error, retry)
            if retry is None:  # the last attempt: nothing more happens until someone resends it
                log.error(
                    "%s webhook attempt %d failed: %s; given up after %d attempts "
                    "(resend: POST /v1/handover/webhook/retry)",
                    what,
                    lease.attempts,
                    error,
                    lease.attempts,
                )
            else:
                log.warning("%s webhook attempt %d failed: %s", what, lease.attempts, error)
        return True

    def _post(self, lease: Lease) -> str | None:
        body = lease.body.encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-KB-Signature": signature(self.secret, body),
                "X-KB-Event-Id": lease.event_id,
            },
        )
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:  # the configured address is not the receiver's: say where it points
                where = exc.headers.get("Location")
                if not where:
                    return f"HTTP {exc.code} redirect without a Location header: check the webhook URL"
                where = urllib.parse.urljoin(self.url, where)  # a relative Location, as the receiver meant it
                return f"HTTP {exc.code} redirect to {where}: set the webhook URL to it"[:300]
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {first_line(exc)}"[:300]
        return None if 200 <= status < 300 else f"HTTP {status}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._purged_at > PURGE_INTERVAL:
                    self._purged_at = time.monotonic()
                    purged = self.store.purge_expired()
                    if purged:
                        log.info("deleted %d hand-over cases past their retention", purged)
                busy = self.run_once()
                self._outage.back()
            except DB_ERRORS as exc:  # the database away for a while: said then, and every 30 s (no traceback)
                self._outage.lost(exc, "; deliveries wait for it")
                busy = False
            except Exception:  # anything else: keep trying, never end the thread
                log.exception("hand-over worker")
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="handover-webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT + 1)
