"""The stores of accounts, training, hand-over cases and assisted calls behave the same on SQLite and PostgreSQL:
every test here runs on both (`db_url`, as in test_database.py), on tables made by the migrations."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from cli import users
from ingest.parser import parse_bytes
from kb_service.accounts.store import AccountExistsError, AccountStore
from kb_service.assist.context import CallContext
from kb_service.assist.sockets import LEASE_SECONDS, SocketLeases
from kb_service.assist.store import CallStore
from kb_service.db import migrate
from kb_service.db.engine import Database
from kb_service.db.logbook import Logbook
from kb_service.handover.metrics import service_report
from kb_service.handover.store import CaseStore, RequestTakenError
from kb_service.learning.store import LearnedStore
from kb_service.trainer.gap_resolutions import GapResolutions
from kb_service.training.assignments import AssignmentStore
from kb_service.training.changes import ChangeStore, changed_since
from kb_service.training.drills import Candidate, Drill
from kb_service.training.hub import withdraw, withdrawn
from kb_service.training.practice import PracticeError, PracticeStore
from kb_service.training.records import Records
from tests.helpers import FIXTURES


def open_db(db_url: str, tmp_path: Path) -> Database:
    return Database(db_url) if db_url else Database.sqlite(tmp_path / "service.sqlite3")


def test_accounts_add_look_up_disable_and_rotate(db_url: str, tmp_path: Path) -> None:
    log = Logbook(open_db(db_url, tmp_path))
    try:
        store = AccountStore(log)
        account, key = store.add("张三", "agent", by="cli")
        with pytest.raises(AccountExistsError):
            store.add("张三", "trainer", by="cli")
        assert store.by_key(key) == account and store.get("张三") == account and store.count() == 1
        assert store.by_key("kbu_wrong") is None
        disabled = store.disable("张三")
        assert not disabled.active and store.by_key(key).active is False  # type: ignore[union-attr]
        assert store.disable("张三").disabled_ts == disabled.disabled_ts  # disabling twice keeps the first time
        assert store.enable("张三").active and list(store.names(("agent",))) == [store.get("张三")]
        _, new = store.rotate("张三")
        assert store.by_key(key) is None and store.by_key(new).name == "张三"  # type: ignore[union-attr]
        assert store.set_role("张三", "trainer").role == "trainer"
    finally:
        log.close()


def test_a_practice_session_its_drills_and_records(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    log = Logbook(db)
    learned = LearnedStore(db)
    try:
        practice, records = PracticeStore(log), Records(log)
        drills = [Drill(Candidate(f"sop-{i}", "维修", f"问题 {i}", "example"), 2, {"kind": "next"}) for i in range(2)]
        session, rows = practice.create("张三", "维修", True, drills, pass_mark=0.8)
        assert practice.session(session.session_id) == session and session.exam is True
        assert session.pass_mark == 0.8  # the mark the exam is judged against, kept with it
        assert [(d.position, d.followup, d.correct) for d in rows] == [(i, {"kind": "next"}, None) for i in range(2)]
        with pytest.raises(PracticeError) as refused:
            practice.owned(session.session_id, rows[0].drill_id, "李四")
        assert refused.value.status == 403
        practice.answer_find(rows[0].drill_id, "sop-0", True, 1200)
        with pytest.raises(PracticeError):  # each stage is answered once
            practice.answer_find(rows[0].drill_id, "sop-0", False, 1)
        practice.answer_followup(rows[0].drill_id, False)
        practice.answer_find(rows[1].drill_id, "sop-9", False, 800)
        assert practice.recent_results("张三") == [False, True]
        assert practice.drill(rows[0].drill_id).followup_correct is False  # type: ignore[union-attr]
        assert practice.finish(session.session_id, 0.5) and not practice.finish(session.session_id, 1.0)
        assert practice.session(session.session_id).score == 0.5  # type: ignore[union-attr]
        assert sorted(r["correct"] for r in practice.answered(0)) == [0, 1]
        practice.create("张三", None, False, drills)  # a practice round is no exam attempt
        [(exam, its)] = practice.exams(0, time.time() + 1)
        assert exam.session_id == session.session_id and [d.drill_id for d in its] == [d.drill_id for d in rows]
        assert practice.exams(time.time() + 1, time.time() + 2) == []

        records.set_mark("维修", 0.8, 10, "trainer")
        assert records.set_mark("维修", 0.9, 12, "trainer").pass_mark == records.marks()["维修"].pass_mark == 0.9
        records.certify("张三", "维修", 0.85, session.session_id)
        records.certify("张三", "维修", 0.95, session.session_id)
        assert [(c.category, c.score) for c in records.certifications("张三")] == [("维修", 0.95)]
        assert records.set_mark("维修", 0.9, 12, "trainer", valid_days=30).valid_days == 30
        [cert] = records.certifications("张三")
        assert cert.expires(records.marks()["维修"]) == pytest.approx(cert.ts + 30 * 86400)
        assert records.valid_certifications("张三") == [cert]
        assert not cert.valid(records.marks()["维修"], now=cert.ts + 31 * 86400)
        records.set_mark("维修", 0.9, 12, "trainer", valid_days=30, every_stage=True, retake_minutes=45)
        kept = records.marks()["维修"]
        assert (kept.every_stage, kept.retake_minutes, kept.valid_days, kept.sop_ids) == (True, 45, 30, ())
        records.set_mark("维修", 0.9, 12, "trainer", sop_ids=["sop-b", "sop-a", "sop-b"])
        assert records.marks()["维修"].sop_ids == ("sop-b", "sop-a")  # the chosen SOPs, once each, in order
        assert records.delete_mark("维修") and not records.delete_mark("维修")
        assert records.valid_certifications("张三") == [] and records.certifications("张三") == [cert]
        records.episode("张三", "copy", 2**40, "sop-0", 3000)  # query ids may exceed 2**31
        records.vote(2**40, "张三", "sop-0", 1)
        records.vote(2**40, "张三", "sop-0", -1)  # a vote is recorded once
        assert [(e["query_id"], e["outcome"]) for e in records.episodes(0)] == [(2**40, "copy")]
        assert [v["vote"] for v in records.votes(0)] == [1]
        qids = [log.log_query(source="search", audience="agent", query=q, result_ids=["leak"], top_score=0.9)
                for q in ("漏水", "滴水")]  # fmt: skip
        log.flush()
        learned.add_event(query_id=qids[0], sop_id="leak", kind="open", who="张三")
        assert records.logged_searches(0, time.time() + 1) == {"leak": (2, 1)}
    finally:
        learned.close()
        log.close()


def test_assignments_are_done_by_what_the_records_say(db_url: str, tmp_path: Path) -> None:
    log = Logbook(open_db(db_url, tmp_path))
    try:
        store, practice, records = AssignmentStore(log), PracticeStore(log), Records(log)
        due = time.time() + 86400
        records.certify("张三", "维修", 0.9, "before")  # a pass from before the assignment does not do it
        made = store.assign(["张三", "李四", "张三"], "exam", category="维修", size=5, due_ts=due, note="复训", by="t")
        assert [(a.who, existed) for a, existed in made] == [("张三", False), ("李四", False)]
        exam = {a.who: a for a, _ in made}
        again = store.assign(["李四"], "exam", category="维修", size=5, due_ts=due + 60, note="延期", by="t")
        assert again[0][1] is True and again[0][0].assignment_id == exam["李四"].assignment_id  # no second row
        assert store.get(exam["李四"].assignment_id).due_ts == due + 60  # type: ignore[union-attr]
        [(task, _)] = store.assign(["李四"], "practice", category=None, sop_ids=["sop-1"], size=3, due_ts=due,
                                   note="", by="t")  # fmt: skip
        stands = store.progress(store.list())
        assert {stands[a.assignment_id].status for a in store.list()} == {"open"}
        assert store.progress(store.list(), now=due + 1)[task.assignment_id].status == "overdue"
        drills = [Drill(Candidate("sop-1", "维修", "问题", "example"), 1, {})]
        attempt, _ = practice.create("张三", "维修", True, drills, pass_mark=0.8)
        practice.finish(attempt.session_id, 0.95)
        records.certify("张三", "维修", 0.95, attempt.session_id)
        mine, _ = practice.create("李四", None, False, drills, assignment_id=task.assignment_id)
        assert practice.session(mine.session_id).assignment_id == task.assignment_id  # type: ignore[union-attr]
        assert store.progress([task])[task.assignment_id].status == "open"  # started, not finished
        practice.finish(mine.session_id, 0.5)
        stands = store.progress(store.list())
        assert stands[exam["张三"].assignment_id] == stands[exam["张三"].assignment_id].__class__(
            "done", stands[exam["张三"].assignment_id].done_ts, 1, 0.95
        )
        assert stands[exam["李四"].assignment_id].status == "open"
        assert (stands[task.assignment_id].status, stands[task.assignment_id].best_score) == ("done", 0.5)
        assert store.withdraw(task.assignment_id) and not store.withdraw(task.assignment_id)
        assert [a.assignment_id for a in store.list(people=["李四"])] == [exam["李四"].assignment_id]
        assert len(store.list(people=["李四"], withdrawn=True)) == 2 and store.list(people=[]) == []
    finally:
        log.close()


def test_a_change_and_its_acknowledgements(db_url: str, tmp_path: Path) -> None:
    log = Logbook(open_db(db_url, tmp_path))
    try:
        changes = ChangeStore(log)
        sop = parse_bytes("leak-ceiling.md", (FIXTURES / "leak-ceiling.md").read_bytes()).sop
        assert sop is not None
        change = changes.record(None, sop, author="trainer")
        assert change is not None and changes.record(None, sop, author="trainer") is not None  # again: no new row
        assert [c.change_id for c in changes.recent()] == [change.change_id]
        assert changes.get(change.change_id) == change
        assert [c.change_id for c in changes.unacknowledged("张三", 0)] == [change.change_id]
        assert changes.unacknowledged("trainer", 0) == []  # one's own change
        first = changes.acknowledge(change.change_id, "张三")
        assert changes.acknowledge(change.change_id, "张三") == first  # keeps the first time
        assert changes.pending_count("张三", 0) == 0
        assert changes.acks([change.change_id]) == {change.change_id: [("张三", first)]}
        assert changes.dated() == [(sop.meta.id, change.ts, "trainer")]
        catalog = {sop.meta.id: sop}
        passes = [("张三", sop.meta.category, change.ts - 1), ("李四", sop.meta.category, change.ts + 1)]
        assert changed_since(passes, changes.dated(), catalog) == {("张三", sop.meta.category): 1}
        # a rollback's card names what it took back: withdrawn for 李四, who never acknowledged it; 张三 had
        back = sop.model_copy(update={"meta": sop.meta.model_copy(update={"version": sop.meta.version + 1})})
        rollback = changes.record(sop, back.model_copy(update={"sections": []}), author="trainer", undoes=[1])
        assert rollback is not None and changes.get(rollback.change_id) == rollback and rollback.undoes == [1]
        assert change.version == 1 and changes.unacknowledged("李四", 0) == []
        assert [c.change_id for c in changes.unacknowledged("张三", 0)] == [rollback.change_id]
        assert withdraw(log, sop.meta.id, "天花板滴水", "trainer") and not withdraw(log, sop.meta.id, "天花板滴水", "x")
        assert withdrawn(log) == {(sop.meta.id, "天花板滴水")}
        assert withdraw(log, sop.meta.id, "天花板滴水", "trainer", back=True) and withdrawn(log) == set()
    finally:
        log.close()


def test_gap_marks_are_kept_undone_and_read_by_question(db_url: str, tmp_path: Path) -> None:
    log = Logbook(open_db(db_url, tmp_path))
    try:
        marks = GapResolutions(log)
        assert marks.mark(["门锁没电了", "门锁没电了", "密码锁没反应"], "trainer", "已补 FAQ", now=100.0) == 2
        assert marks.mark(["门锁没电了"], "小林", now=200.0) == 1
        got = marks.latest(["门锁没电了", "密码锁没反应", "别的"])
        assert set(got) == {"门锁没电了", "密码锁没反应"}
        assert (got["门锁没电了"].who, got["门锁没电了"].resolved_ts) == ("小林", 200.0)  # the latest mark
        assert got["密码锁没反应"].note == "已补 FAQ" and marks.latest([]) == {}
        assert marks.withdraw(["门锁没电了"], now=300.0) == 2 and set(marks.latest(["门锁没电了", "密码锁没反应"])) == {
            "密码锁没反应"
        }
    finally:
        log.close()


def test_a_case_its_messages_and_the_outbox_lease(db_url: str, tmp_path: Path) -> None:
    log = Logbook(open_db(db_url, tmp_path))
    try:
        store = CaseStore(log, retention_days=3)
        case, token = store.open_case(
            session_id="s1",
            question="天花板滴水",
            contact={"name": "王", "phone": "[手机号]"},
            priority="urgent",
            sop=("leak", "漏水"),
            conversation=[("tenant", "天花板滴水"), ("bot", "请稍等")],
            webhook_body={"event": "case.opened"},
        )
        assert store.token_matches(case.case_id, token) and not store.token_matches(case.case_id, "x")
        assert case.delivery.status == "pending" and [c.case_id for c in store.list_cases(("open",))] == [case.case_id]

        def say(n: int) -> None:
            store.add_message(case.case_id, "agent", f"回复 {n}")

        threads = [threading.Thread(target=say, args=(n,)) for n in range(4)]  # numbered under a lock
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [m.seq for m in store.messages(case.case_id)] == [1, 2, 3, 4, 5, 6]
        assert [m.seq for m in store.messages(case.case_id, after=5)] == [6]

        now = time.time()
        lease = store.lease("a", 30, now=now)
        assert lease is not None and lease.attempts == 1 and lease.case_id == case.case_id
        assert store.lease("b", 30, now=now + 1) is None  # held by a
        store.failed(lease, "a", "HTTP 500", retry_at=now + 5)
        assert store.lease("b", 30, now=now + 2) is None  # not due yet
        again = store.lease("b", 30, now=now + 6)
        assert again is not None and again.attempts == 2
        store.delivered(lease, "a")  # a's lease is over: changes nothing
        assert store.outbox_counts() == {"pending": 1}
        store.delivered(again, "b")
        assert store.outbox_counts() == {"delivered": 1} and store.get(case.case_id).delivery.status == "delivered"  # type: ignore[union-attr]

        assert store.set_status(case.case_id, "taken", taken_by="张三")
        assert store.set_status(case.case_id, "closed") and not store.set_status(case.case_id, "taken")
        closed = store.get(case.case_id)
        assert closed is not None and (closed.status, closed.taken_by) == ("closed", "张三") and closed.closed_at
        figures = service_report(log, now - 60, time.time() + 1, {"urgent": 300.0, "normal": 1800.0}, time.time())
        assert (figures.overall.cases, figures.overall.answered, figures.overall.closed) == (1, 1, 1)
        assert figures.overall.within_target == 1.0 and [a.name for a in figures.agents] == ["张三"]
        assert figures.waiting.cases == 0 and figures.chat_questions == 0
        assert store.add_message(case.case_id, "agent", "晚了") is None
        # With a webhook, what happens after the case opened is queued too, in the same transaction; the case's own
        # delivery stays its case.opened event's
        store.events = True
        later, _ = store.open_case(
            session_id="s2",
            question="空调不制冷",
            contact={},
            priority="normal",
            sop=None,
            conversation=[],
            webhook_body={"event": "case.opened"},
        )
        store.add_message(later.case_id, "tenant", "厨房着火了")
        assert store.make_urgent(later.case_id, ("fire", "火警"), "厨房着火了") and not store.make_urgent(later.case_id)
        assert store.take(later.case_id, "李") and store.set_status(later.case_id, "closed")
        raised = store.get(later.case_id)
        assert raised is not None and (raised.priority, raised.sop_id, raised.sop_title) == ("urgent", "fire", "火警")
        assert (raised.question, raised.urgent_question) == ("空调不制冷", "厨房着火了")  # what the queue shows
        listed = [c.case_id for c in store.list_cases(("closed",))]
        assert raised.delivery.status == "pending" and listed.count(later.case_id) == 1  # once, whatever its events
        assert store.outbox_counts() == {"delivered": 1, "pending": 5}
        plain, _ = store.open_case(
            session_id="s3", question="q", contact={}, priority="normal", sop=None, conversation=[], webhook_body=None
        )
        assert store.make_urgent(plain.case_id)  # no SOP matched: the case keeps its own
        assert store.get(plain.case_id).sop_id is None  # type: ignore[union-attr]
        assert store.get(plain.case_id).urgent_question is None  # type: ignore[union-attr]
        # A request sent again (its request_id) gets the case it opened, with a new token; NULL ids never collide
        asked = {"session_id": "s3", "question": "q", "contact": {}, "priority": "normal", "sop": None}
        first, token = store.open_case(**asked, conversation=[], webhook_body=None, request_id="r-1")
        again, other = store.open_case(**asked, conversation=[], webhook_body=None, request_id="r-1")
        assert again.case_id == first.case_id and not store.token_matches(first.case_id, token)
        assert store.token_matches(first.case_id, other)
        # ... from the caller who opened it only (`opened_by`); staff requests (None) are one caller
        mine, _ = store.open_case(**asked, conversation=[], webhook_body=None, request_id="r-2", opened_by="c1")
        assert store.open_case(**asked, conversation=[], webhook_body=None, request_id="r-2", opened_by="c1")[0] == mine
        with pytest.raises(RequestTakenError):
            store.open_case(**asked, conversation=[], webhook_body=None, request_id="r-2", opened_by="c2")
        with pytest.raises(RequestTakenError):
            store.open_case(**asked, conversation=[], webhook_body=None, request_id="r-1", opened_by="c2")
        store.purge_expired(now=time.time() + 4 * 86400)
        assert store.get(case.case_id) is None and store.get(first.case_id) is None
        assert store.messages(case.case_id) == [] and store.outbox_counts() == {}
    finally:
        log.close()


def test_a_closed_case_is_found_by_phone_room_name_number_or_words(db_url: str, tmp_path: Path) -> None:
    """A tenant calls again: the agent finds the closed case by what the tenant says (a trial found none by phone)."""
    log = Logbook(open_db(db_url, tmp_path))
    try:
        store = CaseStore(log, retention_days=3)
        tenants = (
            ("卫生间天花板漏水", {"name": "王五", "room": "3栋1101", "phone": "137 0013 7000"}),
            ("门禁卡丢了要补办", {"name": "李雷", "room": "5栋0802", "phone": "+86-139-1234-5678"}),
            ("100%退押金吗_急", {"name": "韩梅梅", "room": "2栋0303", "phone": "13600001111"}),
        )
        ids = []
        for question, contact in tenants:
            case, _ = store.open_case(
                session_id="s", question=question, contact=contact, priority="normal", sop=None, conversation=[],
                webhook_body=None,
            )  # fmt: skip
            store.set_status(case.case_id, "closed")
            ids.append(case.case_id)
        leak, card, deposit = ids

        def found(typed: str) -> list[str]:
            return sorted(c.case_id for c in store.list_cases(("closed",), typed=typed))

        assert found("") == sorted(ids)
        assert found("7000") == [leak] and found("尾号 7000") == [leak] and found("13700137000") == [leak]
        assert found("139-1234-5678") == [card] and found("手机：13912345678") == [card]
        assert found("1101") == [leak] and found("5栋0802") == [card] and found("李雷") == [card]
        # a room however it is written (a trial: 3-1502 and 1502室 did not find 3号楼1502)
        for room in ("3-1101", "3号楼1101", "1101室", "3栋 1101", "房号：3-1101"):
            assert found(room) == [leak], room
        assert found("5-0802") == [card] and found("0303") == [deposit] and found("2号楼0303室") == [deposit]
        assert found("天花板") == [leak] and found(f"编号 {deposit[:6].upper()}") == [deposit]
        assert found("%") == [deposit] and found("_") == [deposit]  # literal characters, not LIKE's wildcards
        assert found("漏水 门禁") == [] and found("13800000000") == []
        assert store.list_cases(("open", "taken"), typed="7000") == []  # closed ones only under closed
    finally:
        log.close()


def test_one_agent_holds_a_case_and_waiting_urgent_cases_come_first(db_url: str, tmp_path: Path) -> None:
    log = Logbook(open_db(db_url, tmp_path))
    try:
        store = CaseStore(log, retention_days=3)

        def opened(priority: str) -> str:
            made, _ = store.open_case(
                session_id="s",
                question="q",
                contact={},
                priority=priority,
                sop=None,
                conversation=[],
                webhook_body=None,
            )
            return made.case_id

        taken, waiting, normal = opened("urgent"), opened("urgent"), opened("normal")
        assert store.take(taken, "李") and not store.take(taken, "周")  # held by 李
        assert store.take(taken, "李") and store.take(taken, "周", force=True)
        assert store.get(taken).taken_by == "周"  # type: ignore[union-attr]
        queue = [c.case_id for c in store.list_cases(("open", "taken"))]
        assert queue == [waiting, taken, normal]  # urgent and waiting first, then taken, then normal
        store.set_status(waiting, "closed")
        assert not store.take(waiting, "李", force=True)  # a closed case stays closed
        for case_id in (normal, taken):
            time.sleep(0.01)
            store.set_status(case_id, "closed")
        assert [c.case_id for c in store.list_cases(("closed",))] == [taken, normal, waiting]  # history: latest first
    finally:
        log.close()


def test_assist_connections_are_capped_per_account_across_processes(db_url: str, tmp_path: Path) -> None:
    """A security review: one agent key opened live-assist connections without limit. Two processes count them in the
    same table: the cap holds over both, a closed connection frees its place, and a dead process's leases run out."""
    db = open_db(db_url, tmp_path)
    CallStore(db, ttl=60)  # the tables (migrations), as a server's start-up makes them
    a, b = SocketLeases(db, per_holder=2), SocketLeases(db, per_holder=2)  # two worker processes
    try:
        first, second = a.open("王芳"), b.open("王芳")
        assert first[0] and second[0] and first[1] != second[1]
        assert a.open("王芳") == (False, None) and b.open("王芳") == (False, None)  # over both processes
        assert b.open("李雷")[0] and a.held("王芳") == 2  # another account's count is its own
        a.close(first[1])
        third = b.open("王芳")
        assert third[0] and third[1] is not None
        # A live connection renews its lease; a process that died renews nothing and its leases stop counting
        later = time.time() + LEASE_SECONDS + 1
        b.renew(third[1], now=later - 5)
        assert a.held("王芳", now=later) == 1
        assert a.open("王芳", now=later)[0] and a.open("王芳", now=later) == (False, None)
        assert SocketLeases(db, per_holder=0).open("王芳") == (True, None)  # no cap: nothing counted
    finally:
        db.engine.dispose()


def test_assisted_calls_are_shared_versioned_and_expire(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    a, b = CallStore(db, ttl=60), CallStore(db, ttl=60)  # two worker processes
    try:
        assert a.secret == b.secret and len(a.secret) == 32  # one ticket secret for every process
        ctx, version = a.load("call-1")
        assert version == 0 and a.version("call-1") is None
        assert a.save(ctx, 0, {"type": "suggestions", "n": 1})
        assert not b.save(CallContext("call-1"), 0, None)  # b's stale view loses
        ctx_b, version_b = b.load("call-1")
        assert version_b == 1 and ctx_b.to_dict() == ctx.to_dict()
        assert b.save(ctx_b, 1, None) and not a.save(ctx, 1, None)
        watched = a.watch("call-1")
        assert watched is not None and watched[0] == 2 and watched[2] == {"type": "suggestions", "n": 1}  # kept
        a.publish(CallContext("call-2"), None)
        a.publish(CallContext("call-2"), {"n": 2})
        assert b.watch("call-2")[0] == 2 and b.watch("call-2")[2] == {"n": 2}  # type: ignore[index]
        a.publish(CallContext("call-4"), {"items": [{"title": "天花板漏水"}]})
        live = b.live(within=60)  # the calls going on, the latest first, read by any process
        assert [c["call_id"] for c in live] == ["call-4", "call-2", "call-1"] and live[0]["topic"] == "天花板漏水"
        assert live[1]["topic"] is None and b.live(within=-1) == []
        # a weak first suggestion names no topic and no emergency (a trial's chip read 停电 for a hallway light)
        a.publish(CallContext("call-5"), {"items": [{"title": "停电", "urgent": True}], "weak": True})
        a.publish(CallContext("call-6"), {"items": [{"title": "燃气泄漏", "urgent": True}], "weak": False})
        live = b.live(within=60)
        assert [c["call_id"] for c in live][:2] == ["call-6", "call-5"] and live[0]["urgent"], live
        assert (live[1]["weak"], live[1]["topic"], live[1]["urgent"]) == (True, None, False)
        assert live[2]["call_id"] == "call-4" and not live[2]["weak"]  # the emergency first, then the latest
        for call_id in ("call-4", "call-5", "call-6"):
            a.end(call_id)
        # An hour later: call-1 has expired (a new call of that id starts again), the sweep forgets both.
        assert a.save(CallContext("call-1"), 0, None) is False
        later = CallStore(db, ttl=-3600)
        try:
            assert later.load("call-1")[1] == 0 and later.save(CallContext("call-1"), 0, None)
            assert later.sweep() == 2 and later.watch("call-2") is None
        finally:
            later.close()
        assert a.end("call-1") is False  # swept already
        # Pins: the call's outcome, read by any process, kept after the call ends, forgotten with the calls.
        a.pin("call-3", "repair-leak-ceiling", "小王")
        b.pin("call-3", "access-lost-key", "小李")
        assert [(p["sop_id"], p["who"]) for p in a.pins("call-3")] == [
            ("repair-leak-ceiling", "小王"),
            ("access-lost-key", "小李"),
        ]
        assert a.pins("other") == []
        expired = CallStore(db, ttl=-3600)
        try:
            assert expired.pins("call-3") == []
            expired.sweep()
            assert a.pins("call-3") == []
        finally:
            expired.close()
    finally:
        a.close()
        b.close()


def test_tables_the_features_made_at_run_time_are_adopted_with_their_rows(tmp_path: Path) -> None:
    """A database at revision 0002 whose accounts table the release before 0003 made at run time."""
    path = tmp_path / "service.sqlite3"
    engine_db = Database.sqlite(path)
    config = migrate._config()
    engine = create_engine(engine_db.url, poolclass=NullPool)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    engine.dispose()
    with sqlite3.connect(path) as raw:
        raw.execute(
            "CREATE TABLE accounts (name TEXT PRIMARY KEY, role TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,"
            " created_ts REAL NOT NULL, updated_ts REAL NOT NULL, disabled_ts REAL, created_by TEXT NOT NULL)"
        )
        raw.execute("INSERT INTO accounts VALUES ('张三', 'agent', 'h', 1, 1, NULL, 'cli')")
    assert migrate.current(engine_db) == "0002"
    log = Logbook(path)
    try:
        assert migrate.current(log.db) == migrate.head()
        assert [a.name for a in AccountStore(log).list()] == ["张三"]
        assert log.rows("SELECT COUNT(*) AS n FROM assist_calls")[0]["n"] == 0
    finally:
        log.close()


def test_kb_users_writes_accounts_where_the_service_reads_them(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kb users add` and `kb serve`'s trial-mode check use KB_DATABASE_URL when it is set (no SQLite file then)."""
    monkeypatch.setenv("KB_DATABASE_URL", db_url)
    monkeypatch.setenv("KB_API_KEYS", "")
    assert not users.has_accounts(tmp_path)
    assert CliRunner().invoke(users.app, ["add", "张三", "--role", "agent", "--data-dir", str(tmp_path)]).exit_code == 0
    assert users.has_accounts(tmp_path)
    assert (tmp_path / "service.sqlite3").exists() is not bool(db_url)


def test_the_trial_mode_check_creates_nothing_in_a_database_without_the_service(pg_url: str, tmp_path: Path) -> None:
    """An operator's re-check: `kb serve` refused to start against the wrong database (`/postgres`), yet its check
    for accounts had put the service's 28 tables there first."""
    import sqlalchemy as sa

    from kb_service.settings import get_settings

    settings = get_settings(data_dir=tmp_path, database_url=pg_url)
    assert not users.has_accounts(settings)
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
