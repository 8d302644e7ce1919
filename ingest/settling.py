"""Settling interrupted publishes: a pending version is completed or undone by what the published index holds, and
files are replaced in one step. Used by publishing (after a failed step), ingest and start-up (`recover`)."""

from __future__ import annotations

import logging
from pathlib import Path

from ingest.parser import content_hash
from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook, VersionRecord
from kb_service.errors import IndexCorruptError, KbError, first_line
from kb_service.search.catalog import overview_filter
from kb_service.store.base import VectorStore
from kb_service.store.files import write_file

log = logging.getLogger(__name__)


class PublishStorageError(KbError):
    """The SOP folder, the index or the service database could not be written (read-only, disk full, ...)."""


class PublishUnsettledError(PublishStorageError):
    """A publish cut off by the service database going away, which was not back to settle it either: it is completed
    or undone when the database is back (HTTP 503 with Retry-After)."""


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _indexed_hash(store: VectorStore, sop_id: str) -> tuple[bool, str | None]:
    """Whether an index is published, and the content hash it holds for the SOP (None: not in it)."""
    generation = store.published()
    if generation is None:
        return False, None
    try:
        hit = next(store.scroll(generation, overview_filter([sop_id]), light=True), None)
    except IndexCorruptError:
        # A damaged generation (an operator's trial: its payload file cut short) still says what it published by
        # its recorded overviews, checked alone; without them the publish cannot be settled and ingest refuses
        recorded = getattr(store, "checked_overviews", None)
        if recorded is None:
            raise
        hit = next((h for h in recorded(generation) if h.payload.get("sop_id") == sop_id), None)
    return True, (str(hit.payload["content_hash"]) if hit else None)


def settle(record: VersionRecord, store: VectorStore, sops_dir: Path, logbook: Logbook) -> bool:
    """Complete or undo one pending version by what the published index holds; True when it went live.

    The pointer switch is the commit point, so the index decides; the file follows it. Call with the writer lock."""
    path = sops_dir / record.path
    published, indexed = _indexed_hash(store, record.sop_id)
    deleting = record.action == "delete"
    went_live = (published and indexed is None) if deleting else indexed == record.content_hash
    current = read_bytes(path)
    if went_live:
        if deleting:
            path.unlink(missing_ok=True)
        elif current is None or content_hash(current) != record.content_hash:
            write_file(path, record.content.encode("utf-8"))
        logbook.mark_live(record.sop_id, record.version)
        return True
    # Whether the file had already changed: then put back what was there (nothing, for a new SOP).
    replaced = current is None if deleting else current is not None and content_hash(current) == record.content_hash
    if replaced:
        if record.previous is None:
            path.unlink(missing_ok=True)
        else:
            write_file(path, record.previous)
    logbook.discard_pending(record.sop_id, record.version)
    return False


def unsettled(exc: Exception) -> PublishStorageError:
    """The error for an interrupted publish that could not be settled now (it is retried at the next chance)."""
    return PublishStorageError(
        f"无法完成或撤销中断的发布（{exc}）。请检查 SOP 文件夹和服务数据库是否可写后重试；"
        "在此之前不会重新索引，以免撤销已发布的版本 / "
        f"could not settle an interrupted publish ({exc}); fix the SOP folder or the service database and "
        "retry (nothing is re-indexed until then, so that no published version is reverted)"
    )


def cut_off(exc: Exception, again: Exception) -> PublishStorageError:
    """The error for a publish that failed (`exc`) and could not be settled (`again`) either; the trainer is told
    what happens next, not the driver's connection text (an operator's trial: 500 with it four times)."""
    if isinstance(again, DB_ERRORS):
        return PublishUnsettledError(
            "服务数据库暂时不可用，发布中途中断，结果尚未确定：数据库恢复后会自动完成或撤销"
            "（多副本时几秒内，否则在下次发布、服务启动或 kb ingest 时），请稍后在版本历史中查看 / "
            "the publish was cut off by the service database going away; it is completed or undone once the "
            "database is back (within seconds with replicas, else at the next publish, start or `kb ingest`): "
            "check the SOP's history then"
        )
    return PublishStorageError(
        f"发布中途失败（{first_line(exc)}），且未能自动收尾（{first_line(again)}）；"
        "下次发布、服务启动或 kb ingest 时会自动完成或撤销 / "
        f"the publish failed ({first_line(exc)}) and could not be settled ({first_line(again)}); it is completed "
        "or undone at the next publish, start or `kb ingest`"
    )


def recover(store: VectorStore, sops_dir: Path, logbook: Logbook) -> list[str]:
    """Settle every publish a crash interrupted; one line per version. Call with the writer lock."""
    done: list[str] = []
    newest: dict[str, VersionRecord] = {}
    for record in logbook.pending_versions():  # a SOP's import row is settled with the change that follows it
        newest[record.sop_id] = record
    for record in newest.values():
        went_live = settle(record, store, sops_dir, logbook)
        outcome = "已完成 / completed" if went_live else "已撤销 / rolled back"
        line = f"{record.sop_id} v{record.version} ({record.action}) {outcome}"
        log.warning("interrupted publish settled: %s", line)
        done.append(line)
    return done
