"""Trainers' publishing: validate, version, write to the SOP folder and re-index one document, as one transaction.

Every published version is kept in the service database; history, diff and rollback read it. A save carries the
version the trainer started from; if someone published since, the save is refused (409), never overwritten.
Publishing also runs the SOP's own example queries against the new index before it goes live.

A publish holds the writer lock (shared with ingest, across processes) from the version check to the end:
read the current version fresh → commit a *pending* version row (with the content's hash and the file it replaces)
→ build and verify the new index generation, unpublished → write the file → switch the published pointer (the commit
point) → mark the row live. A publish that fails or dies on the way is settled by `settle`: if the published
generation holds the pending content, it is completed (file written, row live); otherwise it is undone (file
restored, row removed). One interrupted by a kill is settled at the next start, ingest or publish (`recover`).
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ingest.frontmatter import with_version
from ingest.hand_edits import conflict, hand_edit
from ingest.impact import Impact, check_examples, checked_examples, compare, lost_sections, recent_questions
from ingest.parser import parse_bytes
from ingest.publish_warnings import category_left_empty, same_title
from ingest.settling import PublishStorageError, cut_off, read_bytes, recover, settle, unsettled, write_file
from ingest.staff_checks import left_public
from ingest.time_checks import stale_times
from ingest.version_checks import check_base, published_by, same_text
from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook, VersionRecord
from kb_service.db.versions import SYSTEM_AUTHOR
from kb_service.errors import KbError, NotFoundError, SopError, VersionConflictError, first_line
from kb_service.models import Issue, Sop

if TYPE_CHECKING:
    from ingest.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

_TITLE = re.compile(r"^title:\s*(.+)$", re.MULTILINE)  # a version's title, read without parsing the whole SOP
# Where a test's fault hook may stop a publish (the kill tests stop it at each one).
STEPS = ("recorded", "verified", "written", "switched")


class InvalidSopError(SopError):
    """A submitted document has errors; every issue is listed as `file:line: message`."""

    def __init__(self, issues: list[Issue]) -> None:
        first = issues[0]
        super().__init__(first.path, first.line, first.message)
        self.issues = issues

    def __str__(self) -> str:
        return "；".join(str(i) for i in self.issues)


class PublishResult(BaseModel):
    """What a publish, delete or rollback did (also the HTTP response body)."""

    sop_id: str
    version: int
    path: str
    action: str
    warnings: list[str]
    examples_checked: int
    seconds: float
    # recent questions whose first SOP this change moved (ingest/impact.py)
    impact: Impact = Field(default_factory=Impact)
    minor: bool = False  # published as a minor change: no change card (api/routes/sops.py decides)


class Publisher:
    def __init__(self, kb: KnowledgeBase, logbook: Logbook) -> None:
        self.kb = kb
        self.logbook = logbook
        self.sops_dir = kb.settings.sops_dir
        self.lock = kb.indexer.lock
        self.wait = kb.settings.publish_wait_seconds  # for the writer lock, at most: not a whole ingest
        self.fault: Callable[[str], None] | None = None  # tests fail or kill a publish at one of STEPS with it
        # Replicas sharing a PostgreSQL database: brings this one up to the others' publishes (ingest/replicas.py),
        # so that a publish builds on the newest content.
        self.follow: Callable[[], object] | None = None

    def current_version(self, sop_id: str) -> int:
        """The live version: the newest recorded one, or the folder's own when never published through here."""
        sop = self.kb.searcher.catalog.get(sop_id)
        return max(self.logbook.latest_version(sop_id), sop.meta.version if sop else 0)

    def _target_path(self, sop_id: str) -> tuple[Path, str]:
        """Where the SOP's file lives: its indexed path, else where its last version was (after a delete)."""
        indexed = self.kb.searcher.catalog.path_of(sop_id)
        records = self.logbook.versions(sop_id)
        rel = indexed or (records[-1].path if records else f"{sop_id}.md")
        return self.sops_dir / rel, rel

    def _beside_its_category(self, sop_id: str, category: str) -> tuple[Path, str]:
        """Where a new SOP's file goes: the folder most SOPs of its category are in (a new customer keeping 报修/,
        服务/, 应急/ found the workspace's new SOPs at the folder's root), else the root."""
        folders = Counter(
            str(Path(s.path).parent) for s in self.kb.searcher.catalog.every() if s.meta.category == category
        )
        folder = folders.most_common(1)[0][0] if folders else "."
        rel = f"{sop_id}.md" if folder in (".", "") else f"{folder}/{sop_id}.md"
        return self.sops_dir / rel, rel

    def source(self, sop_id: str) -> tuple[str, int]:
        """The Markdown a trainer edits and the version it is, read from the SOP folder."""
        if self.logbook.pending_versions():  # a publish is under way or was cut short: the file may not be live
            self.recover()
        self.kb.searcher.refresh()  # another process may have published since this one last looked
        if sop_id not in self.kb.searcher.catalog:
            raise self.kb.unknown(sop_id)
        # A version recorded live that this replica has not followed yet (it does within seconds): its own text, so
        # that text and number always belong together (an operator's trial: the newer number with the older text
        # let a save built on it pass the version check and wipe out the other trainer's publish)
        local = self.kb.searcher.catalog[sop_id].meta.version
        latest = self.logbook.latest_version(sop_id)
        if latest > local and (record := self.logbook.version(sop_id, latest)) is not None and record.content:
            return record.content, latest
        unseen, unrecorded = self._unseen_edit(sop_id), latest < local
        if unseen or unrecorded:
            with self._writing(f"记录 {sop_id} 的现有版本 / recording {sop_id}'s version"):
                if unseen:  # a colleague's edit to the file becomes a version before anyone builds on it
                    self._keep_hand_edit(sop_id)
                # The version a trainer opens is kept as history now: an edit made to the file after this (then put
                # live by `kb ingest`) differs from it, and a save built on it is refused (a re-check trial lost one)
                imported = [replace(r, state="live") for r in self._import_original(sop_id)]
                if imported:
                    self.logbook.add_versions(imported, expected_latest=self.logbook.latest_version(sop_id))
            latest, local = self.logbook.latest_version(sop_id), self.kb.searcher.catalog[sop_id].meta.version
        path, _ = self._target_path(sop_id)
        try:
            return path.read_text(encoding="utf-8"), max(latest, local)
        except (OSError, UnicodeDecodeError) as exc:
            raise NotFoundError(f"SOP 文件 {path.name} 无法读取 / cannot read the SOP file: {exc}") from exc

    def recover(self) -> list[str]:
        """Settle publishes a crash interrupted (also done at the start of every publish)."""
        try:
            with self.lock.hold("补完中断的发布 / settling interrupted publishes", self.wait):
                return recover(self.kb.store, self.sops_dir, self.logbook)
        except (OSError, *DB_ERRORS) as exc:
            raise unsettled(exc) from exc

    @contextmanager
    def _writing(self, purpose: str) -> Iterator[None]:
        """The writer lock (`KB_PUBLISH_WAIT_SECONDS` at most), interrupted publishes settled, the index read fresh."""
        with self.lock.hold(purpose, self.wait):
            try:
                recover(self.kb.store, self.sops_dir, self.logbook)
                if self.follow is not None:
                    self.follow()
                if (unreadable := self.kb.unreadable()) is not None:  # not built on (a trial: a 409 for "v0")
                    raise unreadable
                yield
            except (OSError, *DB_ERRORS) as exc:
                raise PublishStorageError(
                    f"保存失败：无法写入 SOP 文件夹、索引或服务数据库（{exc}），本次修改没有生效，请联系管理员 / "
                    f"could not write the SOP folder, the index or the service database ({exc}); nothing was changed"
                ) from exc

    def _hand_edit(self, sop_id: str) -> tuple[VersionRecord, Sop] | None:
        sop = self.kb.searcher.catalog.get(sop_id)
        if sop is None:
            return None
        current = self.current_version(sop_id)
        path, rel = self._target_path(sop_id)
        return hand_edit(sop, path, rel, self.logbook.version(sop_id, current), current)

    def _unseen_edit(self, sop_id: str) -> bool:
        try:
            return self._hand_edit(sop_id) is not None
        except VersionConflictError:
            return False  # an edit that broke the file: the source view shows it as it is, a save is refused

    def _keep_hand_edit(self, sop_id: str) -> int | None:
        """Keep an edit made to the file outside the workspace as the next version (ingest/hand_edits.py); its
        version, or None when there is none. Under the writer lock."""
        found = self._hand_edit(sop_id)
        if found is None:
            return None
        record, edited = found
        self._commit([record], [edited], [], None)
        log.warning("kept an edit made outside the workspace to %s as version %d", sop_id, record.version)
        return record.version

    def _import_original(self, sop_id: str) -> list[VersionRecord]:
        """The folder's version, to keep as history before the first change made through the API (committed and
        settled with the change: a change that never goes live leaves the history as it was). Its author is the
        system, not the trainer whose change needs it: the folder's content is nobody's publish."""
        sop = self.kb.searcher.catalog.get(sop_id)
        if sop is None or self.logbook.latest_version(sop_id) >= sop.meta.version:
            return []
        path, rel = self._target_path(sop_id)
        content = path.read_text(encoding="utf-8") if path.is_file() else ""
        if not content:
            return []
        # When the folder's file was written, as the history showed it before (not the time of the change recording it)
        written = path.stat().st_mtime
        return [VersionRecord(sop_id, sop.meta.version, written, "import", SYSTEM_AUTHOR, rel, content, "pending")]

    def put(
        self,
        sop_id: str,
        raw: bytes,
        *,
        base_version: int | None,
        author: str,
        force: bool = False,
        action: str = "publish",
        unchecked: tuple[str, ...] = (),  # examples the regression check leaves out (impact.checked_examples)
    ) -> PublishResult:
        started = time.perf_counter()
        with self._writing(f"发布 {sop_id}（{author}）/ publishing {sop_id}"):
            adopted = self._keep_hand_edit(sop_id)
            if adopted is not None and (refused := conflict(sop_id, base_version, adopted)) is not None:
                raise refused
            current = self.current_version(sop_id)
            exists = sop_id in self.kb.searcher.catalog
            check_base(sop_id, exists, base_version, current, lambda: published_by(self.logbook, sop_id, current))
            path, rel = self._target_path(sop_id)
            if exists and action == "publish" and same_text(read_bytes(path), raw, current):
                return PublishResult(  # an operator's trial published the same text twice and got two versions
                    sop_id=sop_id, version=current, path=rel, action="unchanged", warnings=[], examples_checked=0,
                    seconds=time.perf_counter() - started,
                )  # fmt: skip
            version = current + 1
            # Validate what the trainer wrote, so that line numbers match their file; then stamp the version.
            checked = parse_bytes(rel, raw, today=date.today())
            errors = [i for i in checked.issues if i.severity == "error"]
            if checked.sop is None or errors:
                raise InvalidSopError(errors or checked.issues)
            if not exists and not self.logbook.versions(sop_id):
                path, rel = self._beside_its_category(sop_id, checked.sop.meta.category)
            text = with_version(raw.decode("utf-8-sig").replace("\r\n", "\n"), version, date.today())
            result = parse_bytes(rel, text.encode("utf-8"), today=date.today())
            if result.sop is None:
                raise InvalidSopError(result.issues)
            sop = result.sop
            self._check_identity(sop_id, sop, rel, exists)
            imported = self._import_original(sop_id)
            record = VersionRecord(
                sop_id, version, time.time(), action, author, rel, text, "pending", sop.content_hash, read_bytes(path)
            )
            around = self._around(sop, rel, raw.decode("utf-8-sig"))  # against the version it replaces
            examples, impact = self._commit([*imported, record], [sop], [], checked_examples(sop, unchecked, force))
            return PublishResult(
                sop_id=sop_id,
                version=version,
                path=rel,
                action=action,
                warnings=[str(i) for i in [*checked.issues, *around]],
                examples_checked=examples,
                seconds=time.perf_counter() - started,
                impact=impact,
            )

    def _around(self, sop: Sop, rel: str, text: str) -> list[Issue]:
        """Warnings about the SOP beside the published ones: a title another has, a time taken out of the time
        limits that other lines still say, a sum of a section made staff-only that public lines still state
        (against the version it replaces)."""
        catalog = self.kb.searcher.catalog
        live = catalog.get(sop.meta.id)
        around = (*stale_times(live, sop, rel, text), *left_public(live, sop, rel, text))
        return [*same_title(catalog, sop, rel, text), *around]

    def _check_identity(self, sop_id: str, sop: Sop, rel: str, exists: bool) -> None:
        """The file names the SOP the address names, and a new SOP does not take another one's file."""
        if sop.meta.id != sop_id:
            msg = f"文件头 id “{sop.meta.id}” 与地址中的 {sop_id} 不一致"
            raise InvalidSopError([Issue(path=rel, line=2, severity="error", message=msg)])
        if not exists and self.kb.searcher.catalog.has_path(rel):
            raise InvalidSopError([Issue(path=rel, line=1, severity="error", message="已有其他 SOP 使用这个文件名")])

    def delete(self, sop_id: str, *, base_version: int | None, author: str) -> PublishResult:
        started = time.perf_counter()
        with self._writing(f"删除 {sop_id}（{author}）/ deleting {sop_id}"):
            if sop_id not in self.kb.searcher.catalog:
                raise NotFoundError(f"没有 id 为 {sop_id} 的 SOP / unknown SOP {sop_id}")
            adopted = self._keep_hand_edit(sop_id)
            if adopted is not None and (refused := conflict(sop_id, base_version, adopted)) is not None:
                raise refused
            current = self.current_version(sop_id)
            if base_version is not None and base_version != current:
                who = published_by(self.logbook, sop_id, current)
                raise VersionConflictError(
                    f"SOP {sop_id} 已更新到版本 {current}（在您打开之后{who}）/ version conflict"
                )
            path, rel = self._target_path(sop_id)
            warnings = category_left_empty(self.kb.searcher.catalog, sop_id)
            imported = self._import_original(sop_id)
            record = VersionRecord(
                sop_id, current + 1, time.time(), "delete", author, rel, "", "pending", "", read_bytes(path)
            )
            _, impact = self._commit([*imported, record], [], [sop_id], None)
            return PublishResult(
                sop_id=sop_id,
                version=current + 1,
                path=rel,
                action="delete",
                warnings=warnings,
                examples_checked=0,
                seconds=time.perf_counter() - started,
                impact=impact,
            )

    def rollback(self, sop_id: str, to_version: int, *, base_version: int | None, author: str) -> PublishResult:
        record = self.logbook.version(sop_id, to_version)
        if record is None or not record.content:
            raise NotFoundError(f"SOP {sop_id} 没有可回滚的版本 {to_version} / no version {to_version} to roll back to")
        return self.put(
            sop_id,
            record.content.encode("utf-8"),
            base_version=base_version,
            author=author,
            force=True,
            action="rollback",
        )

    def _commit(
        self, records: list[VersionRecord], upserts: list[Sop], removals: list[str], check: Sop | None
    ) -> tuple[int, Impact]:
        """Record the version as pending, then build, write, switch and mark it live; settle it on any failure.
        Returns how many examples were checked and what the change does to recent questions."""
        record = records[-1]
        self.logbook.add_versions(records, expected_latest=self.logbook.latest_version(record.sop_id))
        path = self.sops_dir / record.path
        self._step("recorded")

        def write_file_last() -> None:
            self._step("verified")
            if record.action == "delete":
                path.unlink(missing_ok=True)
            else:
                write_file(path, record.content.encode("utf-8"))
            self._step("written")

        examples = len(check.meta.examples) if check else 0
        impact: list[Impact] = []
        try:
            self._publish_index(upserts, removals, check, write_file_last, impact)
            self._step("switched")
            self.logbook.mark_live(record.sop_id, record.version)
        except Exception as exc:
            try:
                went_live = settle(record, self.kb.store, self.sops_dir, self.logbook)
            except (OSError, *DB_ERRORS) as again:
                # one line (the trial's log held several full tracebacks per publish cut by an outage)
                why = first_line(again)
                log.error("could not settle the failed publish of %s v%d: %s", record.sop_id, record.version, why)
                raise cut_off(exc, again) from exc
            finally:
                self.kb.searcher.refresh(force=True)
            if not went_live:
                raise
            # The failure came after the pointer switch: the version is live and recorded, so the publish stands.
            log.warning(
                "publish of %s v%d completed after an error: %s", record.sop_id, record.version, first_line(exc)
            )
        self.kb.searcher.refresh(force=True)
        return examples, impact[0] if impact else Impact()

    def _step(self, name: str) -> None:
        if self.fault is not None:
            self.fault(name)

    def deleted(self) -> list[tuple[VersionRecord, str]]:
        """The SOPs whose newest version deletes them, newest first, each with its title before the deletion (for a
        trainer to find and restore them: a trial's deleted SOP could no longer be found in the workspace)."""
        gone = [r for r in self.logbook.latest_live().values() if r.action == "delete"]
        out = []
        for r in sorted(gone, key=lambda r: -r.ts):
            before = next((v for v in reversed(self.logbook.versions(r.sop_id)) if v.action != "delete"), None)
            found = _TITLE.search(before.content) if before is not None else None
            out.append((r, found.group(1).strip() if found else r.sop_id))
        return out

    def history(self, sop_id: str) -> list[VersionRecord]:
        """Every recorded version, and the folder's own version until the first change through the API records it
        (so that a SOP only ever ingested shows its version 1 as `import`, as its source says)."""
        records = self.logbook.versions(sop_id)
        if not records and sop_id not in self.kb.searcher.catalog:
            raise self.kb.unknown(sop_id)
        folder = self._folder_version(sop_id)
        return [*records, folder] if folder is not None else records

    def version(self, sop_id: str, version: int) -> VersionRecord | None:
        found = self.logbook.version(sop_id, version)
        if found is None:
            folder = self._folder_version(sop_id)
            found = folder if folder is not None and folder.version == version else None
        return found

    def _folder_version(self, sop_id: str) -> VersionRecord | None:
        """The folder's version not yet recorded as history (nothing is written: `put` records it when needed)."""
        try:
            original = self._import_original(sop_id)
        except (OSError, UnicodeDecodeError, KbError):
            return None
        return replace(original[0], state="live") if original else None

    def diff(self, sop_id: str, a: int, b: int) -> str:
        ra, rb = self.version(sop_id, a), self.version(sop_id, b)
        if ra is None or rb is None:
            raise NotFoundError(f"SOP {sop_id} 没有版本 {a if ra is None else b}")
        return "".join(
            difflib.unified_diff(
                ra.content.splitlines(keepends=True),
                rb.content.splitlines(keepends=True),
                fromfile=f"v{a}",
                tofile=f"v{b}",
            )
        )

    def _publish_index(
        self,
        upserts: list[Sop],
        removals: list[str],
        check: Sop | None,
        before_switch: Callable[[], None],
        impact: list[Impact],
    ) -> None:
        """Build the new generation; check the examples, compare recent questions (into `impact`) and run
        `before_switch` on it unpublished; then publish."""
        titles = {s.meta.id: s.title for s in upserts}

        def title(sop_id: str) -> str | None:
            sop = self.kb.searcher.catalog.get(sop_id)
            return titles.get(sop_id) or (sop.title if sop else None)

        def verify(generation: str) -> None:
            if check is not None:
                check_examples(self.kb.searcher, check, generation)
            questions = recent_questions(self.logbook, list(titles))  # a removed SOP's learned pairs go with it
            lost = {s.meta.id: x for s in upserts if (x := lost_sections(self.kb.searcher.catalog.get(s.meta.id), s))}
            impact.append(compare(self.kb.searcher, self.kb.store.published(), generation, questions, title, lost=lost))
            before_switch()

        self.kb.indexer.apply(upserts, removals, verify=verify)
