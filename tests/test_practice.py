"""Practice drills, exams and the training-needs report through the API: drills come from the knowledge base (never
giving away the SOP's title or id), answers are checked on the server and reveal the expected SOP only afterwards,
each stage is answered once, sessions belong to one person, exams certify per category, and trainers (only) get the
per-person report as JSON, CSV and SVG trends."""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.parser import parse_bytes, parse_file
from kb_service.db.logbook import Logbook
from kb_service.learning.store import LearnedStore
from kb_service.models import Sop
from kb_service.text.glossary import Glossary
from kb_service.training import suggest
from kb_service.training.drills import Drill, candidates, followup
from kb_service.training.hub import build_round, logged_phrasings, own_searches, probe_all
from kb_service.training.matching import LineIndex, faq_answer, is_branch, is_case, sequence
from kb_service.training.report import most_missed
from tests.helpers import AGENT, KEYS, SOPS, add_account, api_client, auth


class Env:
    def __init__(self, c: TestClient, db: Path) -> None:
        self.c = c
        self.db = db
        self.a1 = add_account(c, "agent-a", "agent")
        self.a2 = add_account(c, "agent-b", "agent")
        self.trainer = add_account(c, "trainer-t", "trainer")

    def expected(self, drill_id: str) -> str:
        """The right SOP, read from the database as only the server knows it (the API reveals it after answering)."""
        with sqlite3.connect(self.db) as conn:
            (sop_id,) = conn.execute("SELECT sop_id FROM practice_drills WHERE drill_id = ?", (drill_id,)).fetchone()
        return str(sop_id)

    def wrong(self, drill_id: str) -> str:
        """A real SOP that is not the drill's (an unknown id is refused)."""
        return "network-wifi" if self.expected(drill_id) != "network-wifi" else "repair-leak-ceiling"

    def stored_followup(self, drill_id: str) -> dict[str, Any]:
        """The second stage the server stored for a drill ({} when it has none)."""
        with sqlite3.connect(self.db) as conn:
            (raw,) = conn.execute("SELECT followup FROM practice_drills WHERE drill_id = ?", (drill_id,)).fetchone()
        return json.loads(raw) if raw else {}  # type: ignore[no-any-return]

    def start(self, key: str, **body: Any) -> dict[str, Any]:
        r = self.c.post("/v1/practice/sessions", json={"size": 4, **body}, headers=auth(key))
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def answer(self, key: str, session: str, **body: Any) -> Any:
        return self.c.post(f"/v1/practice/sessions/{session}/answers", json=body, headers=auth(key))


@pytest.fixture
def env(tmp_path: Path, sops_copy: Path) -> Iterator[Env]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield Env(c, tmp_path / "data" / "service.sqlite3")


def test_an_unknown_sop_id_is_refused_and_the_drill_stays_open(env: Env) -> None:
    """A trial's answer with a mistyped id was taken as wrong (200) and used up the drill."""
    s = env.start(env.a1, size=2)
    drill = s["drills"][0]["drill_id"]
    r = env.answer(env.a1, s["session_id"], drill_id=drill, sop_id="no-such-sop")
    assert r.status_code == 422 and "no-such-sop" in r.json()["error"]["message"]
    right = env.answer(env.a1, s["session_id"], drill_id=drill, sop_id=env.expected(drill))
    assert right.status_code == 200 and right.json()["correct"] is True  # still open, answered now


def test_drills_are_tenant_utterances_never_the_sops_title_or_id(env: Env) -> None:
    s = env.start(env.a1, size=8)
    assert len(s["drills"]) == 8 and s["session_id"]
    sops = {x["sop_id"]: x for x in env.c.get("/v1/sops", headers=auth(env.a1)).json()}
    difficulties = [d["difficulty"] for d in s["drills"]]
    assert difficulties == sorted(difficulties)  # difficulty rises through the round
    for d in s["drills"]:
        assert set(d) >= {"drill_id", "prompt"} and "sop_id" not in d
        sop = sops[env.expected(d["drill_id"])]
        assert sop["title"] not in d["prompt"] and sop["sop_id"] not in d["prompt"]
        full = env.c.get(f"/v1/sops/{sop['sop_id']}", headers=auth(env.a1)).json()
        faq = [q["question"] for sec in full["sections"] for q in sec["qa"]]
        assert d["prompt"] in full["meta"]["examples"] + faq


def test_an_answer_is_checked_on_the_server_then_the_second_stage_follows(env: Env) -> None:
    for _ in range(10):  # drills are drawn at random and a SOP with neither lines nor a real sequence has no stage
        s = env.start(env.a1, size=4)
        staged = [d for d in s["drills"][1:] if env.stored_followup(d["drill_id"])]
        if staged:
            break
    first, second = s["drills"][0], staged[0]
    wrong = env.answer(
        env.a1, s["session_id"], drill_id=first["drill_id"], sop_id=env.wrong(first["drill_id"]), ms=5000
    ).json()
    assert wrong["correct"] is False and wrong["expected_sop_id"] == env.expected(first["drill_id"])
    assert wrong["ms"] <= 5000 and wrong["session"]["answered"] == 1
    # what each SOP is for, from its 适用场景 (a trial: a wrong pick said only the right title)
    picked = env.c.get(f"/v1/sops/{env.wrong(first['drill_id'])}", headers=auth(env.a1)).json()
    assert wrong["answered_title"] == picked["title"] and wrong["answered_scene"] and wrong["expected_scene"]
    scenario = next(sec["text"] for sec in picked["sections"] if sec["kind"] == "scenario")
    assert wrong["answered_scene"].rstrip("…") in scenario and wrong["expected_scene"] != wrong["answered_scene"]
    reviewed = env.c.get(f"/v1/practice/sessions/{s['session_id']}", headers=auth(env.a1)).json()
    assert [r["answered_title"] for r in reviewed if r["answered"]] == [picked["title"]]  # the SOP picked, by title
    expected = env.expected(second["drill_id"])
    right = env.answer(env.a1, s["session_id"], drill_id=second["drill_id"], sop_id=expected).json()
    assert right["correct"] is True and right["expected_sop_id"] == expected
    sop = env.c.get(f"/v1/sops/{expected}", headers=auth(env.a1)).json()
    stage = right["next"]
    assert stage is not None and stage["kind"] in ("script", "order")
    if stage["kind"] == "script":
        scripts = {line for sec in sop["sections"] for line in sec["scripts"]}
        answers = {q["answer"] for sec in sop["sections"] for q in sec["qa"]}  # a FAQ question's written answer
        body = _stage_answer(env, second["drill_id"], right=True)
        assert stage["options"][body["choice"]] in (answers if stage["question"].startswith("租客这样问") else scripts)
        out = env.answer(env.a1, s["session_id"], drill_id=second["drill_id"], **body).json()
    else:
        steps = [st for sec in sop["sections"] for st in sec["steps"]]
        order = sorted(range(len(stage["steps"])), key=lambda i: steps.index(stage["steps"][i]))
        out = env.answer(env.a1, s["session_id"], drill_id=second["drill_id"], stage="order", order=order).json()
    assert out["correct"] is True
    again = env.answer(env.a1, s["session_id"], drill_id=second["drill_id"], stage=stage["kind"], choice=0, order=[0])
    assert again.status_code in (409, 422)
    review = env.c.get(f"/v1/practice/sessions/{s['session_id']}", headers=auth(env.a1)).json()
    at = s["drills"].index(second)
    assert [r["correct"] for r in review] == [False] + [True if i == at else None for i in range(1, 4)]
    unanswered = next(i for i in range(1, 4) if i != at)
    assert review[unanswered]["expected_sop_id"] is None  # not revealed before answering


def test_a_drill_without_a_second_stage_ends_at_the_sop(env: Env) -> None:
    for _ in range(20):
        s = env.start(env.a1, size=8)
        bare = [d for d in s["drills"] if not env.stored_followup(d["drill_id"])]
        if bare:
            break
    else:
        pytest.skip("every drawn drill had a second stage")
    drill = bare[0]
    out = env.answer(env.a1, s["session_id"], drill_id=drill["drill_id"], sop_id=env.expected(drill["drill_id"]))
    assert out.json()["correct"] is True and out.json()["next"] is None
    again = env.answer(env.a1, s["session_id"], drill_id=drill["drill_id"], stage="script", choice=0)
    assert again.status_code in (409, 422)


def test_bad_input_gets_a_clear_4xx(env: Env) -> None:
    s = env.start(env.a1, size=2)
    sid, drill = s["session_id"], s["drills"][0]["drill_id"]
    assert env.answer(env.a1, "nosuchsession", drill_id=drill, sop_id="x").status_code == 404
    assert env.answer(env.a1, sid, drill_id="nosuchdrill", sop_id="x").status_code == 404
    r = env.answer(env.a2, sid, drill_id=drill, sop_id="x")
    assert r.status_code == 403 and "别人" in r.json()["error"]["message"]
    other = env.start(env.a1, size=1)
    assert env.answer(env.a1, other["session_id"], drill_id=drill, sop_id="x").status_code == 422
    assert env.answer(env.a1, sid, drill_id=drill).status_code == 422  # no sop_id
    assert env.answer(env.a1, sid, drill_id=drill, stage="script", choice=0).status_code == 409  # find first
    assert env.answer(env.a1, sid, drill_id=drill, sop_id="x").status_code == 422  # no such SOP
    assert env.answer(env.a1, sid, drill_id=drill, sop_id=env.wrong(drill)).status_code == 200
    twice = env.answer(env.a1, sid, drill_id=drill, sop_id=env.wrong(drill))
    assert twice.status_code == 409 and "已经答过" in twice.json()["error"]["message"]
    assert env.c.post("/v1/practice/sessions", json={"size": 0}, headers=auth(env.a1)).status_code == 422
    assert env.c.post("/v1/practice/sessions", json={"category": "不存在"}, headers=auth(env.a1)).status_code == 422
    assert env.c.post("/v1/practice/sessions", json={"size": 2}).status_code == 401  # tenants do not practise
    env.c.post("/v1/users/agent-a/disable", json={}, headers=auth(add_account(env.c, "boss", "admin")))
    services = env.c.app.state.kb_state.services  # type: ignore[attr-defined]
    services.accounts.ttl = 0  # no waiting for this process's cache: test_accounts.py measures the delay
    r = env.answer(env.a1, sid, drill_id=s["drills"][1]["drill_id"], sop_id="x")
    assert r.status_code == 401 and "停用" in r.json()["error"]["message"]


def _stage_answer(env: Env, drill_id: str, right: bool) -> dict[str, Any]:
    """A second-stage answer, right or wrong on purpose (the right one read from the database; an exam's decoy after
    a wrong pick has none: its first option or its order as shown)."""
    stage = env.stored_followup(drill_id)
    if "decoy" in stage:
        decoy = stage["decoy"]
        shown = list(range(len(decoy.get("steps", []))))
        return {"stage": "script", "choice": 0} if decoy["kind"] == "script" else {"stage": "order", "order": shown}
    if stage["kind"] == "script":
        choice = stage["answer"] if right else (stage["answer"] + 1) % len(stage["options"])
        return {"stage": "script", "choice": choice}
    order = list(stage["answer"]) if right else list(reversed(stage["answer"]))
    return {"stage": "order", "order": order}


def _pass(env: Env, key: str, session: dict[str, Any], right: int, second_wrong: int = 0) -> dict[str, Any]:
    """Answer every stage: the first `right` drills' SOPs right, and the first `second_wrong` second stages wrong."""
    out: dict[str, Any] = {}
    wrong_left = second_wrong
    for i, d in enumerate(session["drills"]):
        sop_id = env.expected(d["drill_id"]) if i < right else env.wrong(d["drill_id"])
        out = env.answer(key, session["session_id"], drill_id=d["drill_id"], sop_id=sop_id).json()
        if out["next"]:
            body = _stage_answer(env, d["drill_id"], right=wrong_left <= 0)
            wrong_left -= 1
            out = env.answer(key, session["session_id"], drill_id=d["drill_id"], **body).json()
    return out


def test_an_exam_leaves_out_what_colleagues_were_asked_lately_where_the_bank_allows(env: Env) -> None:
    """A training manager's trial: any two new agents' exams of ten shared three or four questions, and the one who
    failed first had seen the answers in the review. What colleagues were asked in the last two weeks comes last."""
    mark = {"pass_mark": 0.75, "size": 4}
    assert env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer)).is_success
    for _ in range(2):  # a colleague's practice: answered, so its answers were shown to them
        _pass(env, env.a1, env.start(env.a1, category="报修", size=12), right=6)
    with sqlite3.connect(env.db) as conn:
        exposed = {p for (p,) in conn.execute("SELECT prompt FROM practice_drills WHERE answered_ts IS NOT NULL")}
    supply = env.c.get("/v1/practice/supply", headers=auth(env.trainer)).json()
    ready = next(r for r in supply if r["category"] == "报修")
    assert ready["exam_ready"] - len(exposed) >= 8, (ready, len(exposed))  # room for fresh questions
    asked = {d["prompt"] for d in env.start(env.a2, category="报修", exam=True)["drills"]}
    assert len(asked) == 4 and not asked & exposed, asked & exposed
    # ... nor what a colleague's exam started at the same moment asks, answered or not (a re-check: two exams started
    # together shared 9 of 10 questions)
    third = add_account(env.c, "agent-c", "agent")
    together = {d["prompt"] for d in env.start(third, category="报修", exam=True)["drills"]}
    assert len(together) == 4 and not together & (asked | exposed), together & (asked | exposed)


def test_exams_certify_per_category_and_person(env: Env) -> None:
    assert env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.75}, headers=auth(env.a1)).status_code == 403
    assert (
        env.c.put("/v1/practice/exams/不存在", json={"pass_mark": 0.75}, headers=auth(env.trainer)).status_code == 422
    )
    bad = env.c.put("/v1/practice/exams/报修", json={"pass_mark": 1.5, "size": 0}, headers=auth(env.trainer))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"] == ["pass_mark: 应不大于 1 / must be ≤ 1", "size: 应不小于 1 / must be ≥ 1"]
    too_many = env.c.put("/v1/practice/exams/网络", json={"pass_mark": 0.75, "size": 20}, headers=auth(env.trainer))
    assert too_many.status_code == 422 and "只够出" in too_many.json()["error"]["message"]  # agents could not start it
    r = env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.75, "size": 4}, headers=auth(env.trainer))
    assert r.status_code == 200 and r.json()["set_by"] == "trainer-t"
    exam = env.start(env.a1, size=1, category="报修", exam=True)
    assert len(exam["drills"]) == 4 and exam["pass_mark"] == 0.75  # the exam's size, not the request's
    sops = {x["sop_id"]: x["category"] for x in env.c.get("/v1/sops", headers=auth(env.a1)).json()}
    assert {sops[env.expected(d["drill_id"])] for d in exam["drills"]} == {"报修"}
    done = _pass(env, env.a1, exam, right=3)
    stages = done["session"]["second_total"]
    # In an exam the second stage of a SOP not found counts wrong, and the right SOP's is not asked (it would show
    # that SOP's lines): one from the SOP picked is, so that a second stage does not tell a right pick either
    kept = env.stored_followup(exam["drills"][3]["drill_id"])
    missed = int(bool(kept.get("kind")))
    assert not missed or kept["decoy"]["answer"] is None
    assert done["session"] == {
        "answered": 4,
        "correct": 3,
        "total": 4,
        "finished": True,
        "score": (3 + stages - missed) / (4 + stages),  # every stage one point
        "certified": True,
        "second_answered": stages,
        "second_correct": stages - missed,
        "second_total": stages,
    }
    failed = _pass(env, env.a2, env.start(env.a2, category="报修", exam=True), right=2, second_wrong=4)
    assert failed["session"]["certified"] is False
    mine = env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()
    assert mine[0]["category"] == "报修" and mine[0]["certified"] is True
    assert mine[0]["score"] == done["session"]["score"]
    assert env.c.get("/v1/practice/exams", headers=auth(env.a2)).json()[0]["certified"] is False
    no_exam = env.c.post("/v1/practice/sessions", json={"category": "账单", "exam": True}, headers=auth(env.a1))
    assert no_exam.status_code == 422
    certs = env.c.get("/v1/practice/certifications", headers=auth(env.trainer)).json()
    assert [(c["who"], c["category"]) for c in certs] == [("agent-a", "报修")]
    # The trainer sees the failed attempt too, with its score; nobody else may read another person's rounds.
    attempts = env.c.get("/v1/practice/report/sessions", params={"person": "agent-b"}, headers=auth(env.trainer))
    [attempt] = attempts.json()
    assert (attempt["exam"], attempt["category"], attempt["passed"]) == (True, "报修", False)
    assert attempt["score"] == failed["session"]["score"]
    # Every attempt is in the report and its CSV, failed ones too (a trial found no exams in the CSV)
    exams = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["exams"]
    assert [(x["who"], x["category"], x["passed"]) for x in exams] == [
        ("agent-a", "报修", True),
        ("agent-b", "报修", False),
    ]
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text[1:])))
    in_csv = {r[1]: r for r in rows if r[0] == "考试"}
    score = f"{round(failed['session']['score'] * 100)}%"  # a share as a percentage (a trial read 0.8)
    assert in_csv["agent-b"][3] == score and "报修｜未通过" in in_csv["agent-b"][10]
    assert "报修｜通过" in in_csv["agent-a"][10] and in_csv["agent-a"][2] == "4"
    assert (
        env.c.get("/v1/practice/report/sessions", params={"person": "agent-b"}, headers=auth(env.a1)).status_code == 403
    )
    assert [(m["passed"], m["certified"]) for m in env.c.get("/v1/practice/mine", headers=auth(env.a1)).json()[:1]] == [
        (True, True)
    ]


def test_an_exams_second_stage_does_not_tell_whether_the_pick_was_right(env: Env) -> None:
    """A training manager's trial: in an exam a second stage appeared after right picks only, so its appearance told
    the taker the pick was right. After a wrong pick a second stage is asked from the SOP picked (its lines or steps,
    never the right SOP's), and it counts wrong whatever is chosen."""
    mark = {"pass_mark": 0.75, "size": 4}
    assert env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer)).is_success
    exam = env.start(env.a1, category="报修", exam=True)
    staged = [d for d in exam["drills"] if env.stored_followup(d["drill_id"]).get("kind")]
    assert len(staged) >= 2
    first, second = staged[0], staged[1]
    right = env.answer(env.a1, exam["session_id"], drill_id=first["drill_id"], sop_id=env.expected(first["drill_id"]))
    picked = "repair-leak-ceiling" if env.expected(second["drill_id"]) != "repair-leak-ceiling" else "network-wifi"
    wrong = env.answer(env.a1, exam["session_id"], drill_id=second["drill_id"], sop_id=picked).json()
    assert right.json()["next"] and wrong["next"]  # both asked: nothing told
    assert wrong["expected_scene"] is None and wrong["answered_scene"] is None  # no scenes in an exam
    assert right.json()["correct"] is None and wrong["correct"] is None
    shown = wrong["next"].get("options") or wrong["next"]["steps"]

    def lines(sop_id: str) -> set[str]:
        sop = env.c.get(f"/v1/sops/{sop_id}", headers=auth(env.a1)).json()
        own = {x for sec in sop["sections"] for x in (*sec.get("scripts", []), *sec.get("steps", []))}
        return own | {q["answer"] for sec in sop["sections"] for q in sec.get("qa", [])}

    assert not set(shown) & lines(env.expected(second["drill_id"]))  # nothing of the right SOP
    # built as a real stage is: steps of the SOP picked, or its nearest line among lines of other SOPs
    assert len(set(shown) & lines(picked)) == (len(shown) if "steps" in wrong["next"] else 1)
    body = _stage_answer(env, second["drill_id"], right=True)
    assert env.answer(env.a1, exam["session_id"], drill_id=second["drill_id"], **body).json()["correct"] is None
    with sqlite3.connect(env.db) as conn:
        sql = "SELECT followup_correct, followup_choice FROM practice_drills WHERE drill_id = ?"
        assert conn.execute(sql, (second["drill_id"],)).fetchone() == (0, "null")  # wrong; no choice of the real one


def test_an_exam_keeps_its_pass_mark_certifications_expire_and_an_exam_can_be_withdrawn(env: Env) -> None:
    """Raising the pass mark does not fail an exam already started (or taken); a pass certifies for the exam's
    `valid_days`, then shows as expired (kept as history, asked to sit again); withdrawing an exam makes its passes
    count for nothing until it is set again."""
    put = {"pass_mark": 0.75, "size": 4, "valid_days": 30}
    assert env.c.put("/v1/practice/exams/报修", json=put, headers=auth(env.trainer)).json()["valid_days"] == 30
    early = _pass(env, env.a1, env.start(env.a1, category="报修", exam=True), right=3)["session"]
    assert early["certified"] is True and early["score"] < 1.0
    started = env.start(env.a2, category="报修", exam=True)
    raised = {"pass_mark": 1.0, "size": 4, "valid_days": 30}
    assert env.c.put("/v1/practice/exams/报修", json=raised, headers=auth(env.trainer)).status_code == 200
    late = _pass(env, env.a2, started, right=3, second_wrong=0)["session"]
    assert late["score"] < 1.0 and late["certified"] is True  # judged under the 0.75 it was started with
    [mine] = env.c.get("/v1/practice/mine", headers=auth(env.a1)).json()
    assert (mine["passed"], mine["pass_mark"]) == (True, 0.75)  # not re-judged against 1.0
    assert env.start(env.a1, category="报修", exam=True)["pass_mark"] == 1.0  # a new attempt sits the new mark

    [exam] = env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()
    assert exam["certified"] is True and exam["expired"] is False
    assert (exam["pass_mark"], exam["certified_mark"]) == (1.0, 0.75)  # the pass says which mark it met
    assert exam["expires_ts"] == pytest.approx(exam["certified_ts"] + 30 * 86400)
    with sqlite3.connect(env.db) as conn:  # a month and a day later for agent-a's pass
        conn.execute("UPDATE certifications SET ts = ts - 31 * 86400 WHERE who = 'agent-a'")
    [exam] = env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()
    assert (exam["certified"], exam["expired"], exam["score"]) == (False, True, early["score"])
    certs = {c["who"]: c for c in env.c.get("/v1/practice/certifications", headers=auth(env.trainer)).json()}
    assert (certs["agent-a"]["valid"], certs["agent-b"]["valid"]) == (False, True)
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    people = {p["name"]: p for p in report["people"]}
    assert (people["agent-a"]["certified"], people["agent-a"]["expired"]) == ([], ["报修"])
    assert (people["agent-b"]["certified"], people["agent-b"]["expired"]) == (["报修"], [])
    missed = env.expected(started["drills"][3]["drill_id"])  # the one drill agent-b answered wrong
    assert people["agent-b"]["missed_sops"] == {missed: 1}
    [category] = [c for c in report["categories"] if c["category"] == "报修"]
    assert category["certified"] == ["agent-b"]
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text)))
    header = rows[0]
    person_a = next(r for r in rows if r[:2] == ["人员", "agent-a"])
    assert person_a[header.index("已过期认证")] == "报修" and len(person_a) == len(header)
    person_b = next(r for r in rows if r[:2] == ["人员", "agent-b"])
    title = next(x["title"] for x in report["sops"] if x["sop_id"] == missed)
    assert person_b[header.index("常找错的SOP")] == f"{title}×1"  # by title, as the page names it (a trial read ids)

    assert env.c.delete("/v1/practice/exams/报修", headers=auth(env.a1)).status_code == 403
    assert env.c.delete("/v1/practice/exams/报修", headers=auth(env.trainer)).status_code == 204
    assert env.c.delete("/v1/practice/exams/报修", headers=auth(env.trainer)).status_code == 404
    assert env.c.get("/v1/practice/exams", headers=auth(env.a2)).json() == []
    certs = {c["who"]: c for c in env.c.get("/v1/practice/certifications", headers=auth(env.trainer)).json()}
    assert set(certs) == {"agent-a", "agent-b"} and not certs["agent-b"]["valid"]  # history kept, counts for nothing
    no_exam = env.c.post("/v1/practice/sessions", json={"category": "报修", "exam": True}, headers=auth(env.a2))
    assert no_exam.status_code == 422
    env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.9, "size": 4}, headers=auth(env.trainer))
    [exam] = env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()
    assert exam["certified"] is True and exam["expires_ts"] is None  # no expiry now: the old pass counts again


def test_the_training_needs_report_is_per_person_and_for_trainers_only(env: Env) -> None:
    _pass(env, env.a1, env.start(env.a1, size=4), right=3)
    _pass(env, env.a2, env.start(env.a2, size=2), right=0)
    for outcome, ms in (("copy", 9000), ("copy", 11000), ("research", None), ("abandon", None)):
        body = {"outcome": outcome, "sop_id": "repair-drain-blocked", "ms": ms}
        assert env.c.post("/v1/practice/activity", json=body, headers=auth(env.a1)).status_code == 200
    found = env.c.post("/v1/search", json={"query": "马桶堵了"}, headers=auth(env.a2)).json()
    q, top = found["query_id"], found["results"][0]["sop_id"]
    opened = {"query_id": q, "sop_id": top, "type": "open"}
    assert env.c.post("/v1/events", json=opened, headers=auth(env.a2)).status_code == 200
    vote = {"query_id": q, "sop_id": "repair-drain-blocked", "vote": -1}
    assert env.c.post("/v1/feedback", json=vote, headers=auth(env.a2)).status_code == 200
    assert env.c.get("/v1/practice/report", headers=auth(env.a1)).status_code == 403
    assert env.c.get("/v1/practice/report", headers=auth(AGENT)).status_code == 403
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    people = {p["name"]: p for p in report["people"]}
    a, b = people["agent-a"], people["agent-b"]
    assert (a["drills"], a["correct"], a["accuracy"]) == (4, 3, 0.75)
    assert (b["drills"], b["accuracy"]) == (2, 0.0)
    assert a["searches"] == 4 and a["search_success"] == 0.5 and a["median_copy_ms"] == 10000
    assert b["votes"] == 1 and b["thumbs_down_rate"] == 1.0
    assert report["weeks"] and report["weeks"][-1]["drills"] == 6
    assert sum(s["drills"] for s in report["sops"]) == 6 and report["categories"]
    logged = next(s for s in report["sops"] if s["sop_id"] == top)  # from the query log and learning events
    assert logged["logged_searches"] == 1 and logged["logged_success"] == 1.0
    # A copy from a card below the first says the first did not serve (a trial saw it credited to the first)
    again = env.c.post("/v1/search", json={"query": "马桶堵了"}, headers=auth(env.a2)).json()
    below = {"query_id": again["query_id"], "sop_id": again["results"][1]["sop_id"], "type": "copy"}
    assert env.c.post("/v1/events", json=below, headers=auth(env.a2)).status_code == 200
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    logged = next(s for s in report["sops"] if s["sop_id"] == top)
    assert logged["logged_searches"] == 2 and logged["logged_success"] == 0.5
    svg = env.c.get("/v1/practice/report/trend.svg", headers=auth(env.trainer))
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<circle" in svg.text
    assert svg.text.startswith("<svg") and "练习正确率" in svg.text
    person = env.c.get("/v1/practice/report/trend.svg", params={"person": "agent-a"}, headers=auth(env.trainer))
    assert "agent-a" in person.text


def test_answers_too_fast_to_be_practised_on_the_page_are_flagged(env: Env) -> None:
    """A trial posted answers by script right after starting a round: the report showed a 0.0 s median unflagged."""
    s = env.start(env.a1, size=2)
    first, second = s["drills"]
    env.answer(env.a1, s["session_id"], drill_id=first["drill_id"], sop_id=env.expected(first["drill_id"]), ms=5000)
    time.sleep(1.2)  # the server caps a reported time by its own clock: this one took over a second
    env.answer(env.a1, s["session_id"], drill_id=second["drill_id"], sop_id=env.expected(second["drill_id"]), ms=3000)
    people = {p["name"]: p for p in env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["people"]}
    assert people["agent-a"]["drills"] == 2 and people["agent-a"]["too_fast"] == 1
    assert people["agent-b"]["too_fast"] == 0


def test_the_csv_export_neutralises_formula_cells(env: Env) -> None:
    evil = add_account(env.c, "-cmd", "agent")
    _pass(env, evil, env.start(evil, size=1), right=1)
    r = env.c.get("/v1/practice/report.csv", headers=auth(env.trainer))
    assert r.status_code == 200 and r.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    names = [row[1] for row in rows if row[0] == "人员"]
    assert "'-cmd" in names and "-cmd" not in names
    assert env.c.get("/v1/practice/report.csv", headers=auth(env.a1)).status_code == 403


def test_utterances_from_use_are_masked_and_never_give_the_sop_away() -> None:
    parsed = parse_file(SOPS / "repair" / "repair-drain-blocked.md").sop
    assert parsed is not None
    sop = parsed
    extra = {
        "repair-drain-blocked": [
            ("我家马桶又堵了，电话13812345678", "log"),
            (f"请问{sop.title}怎么办", "learned"),
            ("repair-drain-blocked 怎么处理", "log"),
            ("马桶堵了冲不下去", "learned"),  # the same as an example: once only
            ("卫生间地漏一直往上冒水", "log"),
            ("马桶堵了租客要求今天修好", "log"),  # an agent's note about the tenant, not what a tenant says
        ]
    }
    found = [c for c in candidates([sop], extra) if c.sop_id == sop.meta.id]
    prompts = [c.prompt for c in found]
    # personal data is never practice material, masked or not (session 36: a masked one read 「…电话[手机号]」)
    assert not any("马桶又堵了" in p or "13812345678" in p for p in prompts)
    assert not any(sop.title in p or sop.meta.id in p for p in prompts)
    assert prompts.count("马桶堵了冲不下去") == 1
    assert "马桶堵了租客要求今天修好" not in prompts and "卫生间地漏一直往上冒水" in prompts
    assert {c.source for c in found} >= {"example", "faq", "log"}


def test_the_exam_score_counts_both_stages(env: Env) -> None:
    """Every SOP found but one second stage wrong is not a perfect score, and a pass mark of 1.0 is then missed."""
    env.c.put("/v1/practice/exams/报修", json={"pass_mark": 1.0, "size": 4}, headers=auth(env.trainer))
    exam = env.start(env.a1, category="报修", exam=True)
    out = _pass(env, env.a1, exam, right=4, second_wrong=1)["session"]
    assert out["correct"] == 4 and out["second_total"] >= 1 and out["second_correct"] == out["second_total"] - 1
    assert out["score"] == (4 + out["second_total"] - 1) / (4 + out["second_total"]) < 1.0
    assert out["finished"] is True and out["certified"] is False
    assert env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()[0]["certified"] is False
    perfect = _pass(env, env.a2, env.start(env.a2, category="报修", exam=True), right=4)["session"]
    assert perfect["score"] == 1.0 and perfect["certified"] is True
    # Every SOP was found: the one whose steps were put in the wrong order is still the weakest (a trial found the
    # SOP table all 100 % while a person failed an exam on second stages)
    weakest = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["sops"][0]
    assert weakest["accuracy"] == 1.0 and weakest["followup_accuracy"] < 1.0


def test_a_faq_that_refers_the_tenant_on_accepts_the_sop_it_names(env: Env) -> None:
    """「合同还没到期但我想提前搬走怎么办？」 (moveout-process) is answered 「这属于提前退租…」: the SOP it names,
    lease-early-termination, is right too."""
    s = env.start(env.a1, size=20, category="退租押金")  # the category's every utterance (fewer than 20)
    prompt = "合同还没到期但我想提前搬走怎么办？"
    drill = next(d for d in s["drills"] if d["prompt"] == prompt)
    assert env.expected(drill["drill_id"]) == "moveout-process"
    out = env.answer(env.a1, s["session_id"], drill_id=drill["drill_id"], sop_id="lease-early-termination").json()
    assert out["correct"] is True and out["accepted_sop_ids"] == ["lease-early-termination"]
    other = next(d for d in s["drills"] if d["prompt"] != prompt and env.expected(d["drill_id"]) == "moveout-process")
    wrong = env.answer(env.a1, s["session_id"], drill_id=other["drill_id"], sop_id="lease-early-termination").json()
    assert wrong["correct"] is False and wrong["accepted_sop_ids"] == []


def _corpus() -> list[Sop]:
    return [r.sop for p in sorted(SOPS.rglob("*.md")) if (r := parse_file(p)).sop is not None]


def _stage(sops: list[Sop], sop_id: str, prompt: str, position: int, seed: int) -> dict[str, Any]:
    by = {s.meta.id: s for s in sops}
    cand = next(c for c in candidates([by[sop_id]], {}) if c.prompt == prompt)
    rest = [s for s in sops if s.meta.id != sop_id]
    return followup(Drill(cand, 0), position, by[sop_id], rest[:3], random.Random(seed), rest, LineIndex(sops))


def test_the_right_script_line_is_the_one_that_answers_the_prompt() -> None:
    """community-rules has five script lines; 「我可以在墙上打孔挂画吗？」 is answered by the 打孔挂画 one only,
    whatever the seed; the distractors do not answer it; a prompt no line clearly answers gets the steps or no
    second stage."""
    sops = _corpus()
    for seed in range(12):
        stage = _stage(sops, "community-rules", "我可以在墙上打孔挂画吗？", 0, seed)
        assert stage["kind"] == "script"
        right = stage["options"][stage["answer"]]
        assert right.startswith("房间里想打孔挂画是可以的")
        assert not any("打孔" in o for i, o in enumerate(stage["options"]) if i != stage["answer"])
        assert len(stage["options"]) == 4
    index = LineIndex(sops)
    moveout = next(s for s in sops if s.meta.id == "moveout-process")
    prompt = "合同还没到期但我想提前搬走怎么办？"
    assert (
        index.answering(prompt, faq_answer(prompt, moveout), [ln for s in moveout.sections for ln in s.scripts]) is None
    )
    # No script line answers it: the FAQ's own answer is chosen among answers to unlike questions, never an order
    for seed, position in ((1, 0), (2, 1), (3, 1)):
        stage = _stage(sops, "moveout-process", prompt, position, seed)
        assert stage["kind"] == "script" and stage["question"] == "租客这样问，应该怎么回答？", stage
        assert stage["options"][stage["answer"]] == faq_answer(prompt, moveout)
        assert len(set(stage["options"])) == len(stage["options"]) >= 2


def test_a_faq_question_whose_script_line_says_nothing_of_its_answer_asks_for_the_answer() -> None:
    """A training lead's trial: the line counted right for 遥控器丢了或者坏了怎么办？ asked about the remote's display,
    the one for 同住人登记收费吗？ booked an appointment: neither answered; the written answers were not offered."""
    sops = _corpus()
    for prompt in ("遥控器丢了或者坏了怎么办？", "同住人登记收费吗？"):
        sop = next(s for s in sops if faq_answer(prompt, s))
        stage = _stage(sops, sop.meta.id, prompt, 0, 7)
        assert stage["question"] == "租客这样问，应该怎么回答？", stage
        assert stage["options"][stage["answer"]] == faq_answer(prompt, sop)


def test_a_faq_question_is_never_asked_to_order_steps() -> None:
    """A FAQ question asks for one fact (a trial: 「灭蟑药对猫狗有影响吗？」 was followed by ordering pest-control
    booking steps): its second stage is a line or an answer that answers it, whatever the position."""
    sops = _corpus()
    faq = [(sop, c) for sop in sops for c in candidates([sop], {}) if c.source == "faq"]
    assert len(faq) > 20
    kinds = set()
    for i, (sop, c) in enumerate(faq):
        stage = _stage(sops, sop.meta.id, c.prompt, i % 2, i)
        kinds.add(stage.get("kind"))
        assert stage.get("kind") != "order", c.prompt
    assert "script" in kinds


def test_a_second_stage_asks_what_fits_the_tenants_words() -> None:
    """A training manager's trial: 「马桶水箱一直在流水」 was asked to order a leak's first steps without the cistern's,
    「钥匙落在屋里门关上了」 to order a labelled case (「非签约人（同住人、朋友、家属）要求开门：…」), and 「门禁卡丢了
    怎么补办」 marked 「…就可以补办」 wrong."""
    sops = _corpus()
    by = {s.meta.id: s for s in sops}
    index = LineIndex(sops)
    assert is_case("非签约人（同住人、朋友、家属）要求开门：同住人须已在系统登记并核验身份证。")
    assert not any("非签约人" in step for step in sequence(by["access-lost-key"], 5))
    faucet = by["repair-pipe-faucet"]
    cistern = sequence(faucet, 5, "马桶水箱一直在流水", index)
    assert any("马桶水箱" in step for step in cistern) and not any("马桶水箱" in s for s in sequence(faucet, 5))
    assert sequence(faucet, 5, "服务态度太差了", index) == sequence(faucet, 5)  # names no step: the first ones
    for seed in range(12):  # the script line that answers 怎么补办 is never a distractor
        stage = _stage(sops, "access-door-card", "门禁卡丢了怎么补办", 0, seed)
        assert stage["kind"] == "script"
        wrong = [o for i, o in enumerate(stage["options"]) if i != stage["answer"]]
        assert not any("补办" in o for o in wrong), wrong


def test_order_drills_come_only_from_real_sequences() -> None:
    """Steps labelled as parallel cases (「狗叫扰民：…」「充值问题：…」) never appear in an ordering drill; the steps
    shown are numbered items of one steps section in order, only items for one case left out between them."""
    sops = _corpus()
    for sop in sops:
        steps = sequence(sop, 5)
        if not steps:
            continue
        assert not any(is_case(s) for s in steps)
        section = next(s for s in sop.sections if s.kind == "steps" and steps[0] in s.steps)
        at = [section.steps.index(x) for x in steps]
        assert at == sorted(at)  # in the document's order, skipping only items for one case (…的，…)
        skipped = [x for x in section.steps[at[0] : at[-1] + 1] if x not in steps]
        assert all(is_branch(x) for x in skipped), skipped
    pets = next(s for s in sops if s.meta.id == "pet-complaint")
    bills = next(s for s in sops if s.meta.id == "payment-utilities")
    assert not any("狗叫扰民" in s or "宠物粪便" in s for s in sequence(pets, 5))
    assert sequence(bills, 5) == []  # 充值问题 / 余额不足停电 / 电费突然变高: cases, no sequence of three
    # no ordering starts with a step that goes on from the ones before it, left out as cases (a training manager's
    # trial: 「以上排查无效的，建工单…」 came with no 排查 to follow)
    hot = next(s for s in sops if s.meta.id == "repair-no-hot-water")
    assert not any(step.startswith("以上") for s in sops for step in sequence(s, 5)[:1])
    assert sequence(hot, 5) == []  # 燃气热水器：/ 电热水器：/ 水温不稳： are cases; what follows them, no sequence
    # A how-to heading over a numbered list of rules (a trial: 不接受现金 / 禁止入户充电 were to be put in order)
    rules = parse_bytes(
        "rules.md",
        "---\nid: rent-rules\ntitle: 交租说明\ncategory: 缴费\naudience: public\n---\n# 交租说明\n\n## 处理步骤\n"
        "1. 登录APP进入我的账单。\n2. 账单在交租日前7天推送。\n3. 不接受现金，也请勿转账给管家个人。\n"
        "4. 按消防规定，电动车禁止入户充电。\n5. 可补开当年的发票。\n".encode(),
    ).sop
    assert rules is not None and rules.sections[0].kind == "steps" and sequence(rules, 5) == []
    # Items for one case only are branches, not steps (a trial ordered 确认误报的… against 真实火警的…); an item that
    # goes on when the step before failed (排查无效的，建工单) is the next step
    branches = parse_bytes(
        "fire.md",
        "---\nid: fire\ntitle: 火警处置\ncategory: 紧急事件\naudience: agent\n---\n# 火警处置\n\n## 处理步骤\n"
        "1. 消控室接报后3分钟内到现场核实。\n2. 确认误报的，在楼栋群发布已核实为误报。\n"
        "3. 电话排查无效的，建维修工单。\n4. 真实火警的，事后提交事故报告。\n5. 24小时内回访租客。\n".encode(),
    ).sop
    assert branches is not None
    steps = ["消控室接报后3分钟内到现场核实。", "电话排查无效的，建维修工单。", "24小时内回访租客。"]
    assert sequence(branches, 5) == steps
    for prompt in [c.prompt for c in candidates([bills], {})][:3]:
        for position in (0, 1):
            assert _stage(sops, "payment-utilities", prompt, position, 3).get("kind") != "order"


def test_an_order_drill_about_one_of_several_appliances_shows_no_other_appliances_step() -> None:
    """A SOP whose title lists several appliances: the drill for 冰箱不制冷了 has no step that begins about the
    induction hob (a training manager's trial); the hob's own prompt keeps it. 「先做电话排查：…」 is a step with its
    details after the colon, not a labelled case."""
    sops = _corpus()
    appliance = next(s for s in sops if s.meta.id == "repair-appliance")
    index = LineIndex(sops)
    fridge = sequence(appliance, 5, "冰箱不制冷了", index)
    assert len(fridge) >= 3 and not any(step.startswith("电磁炉") for step in fridge)
    assert any(step.startswith("先做电话排查") for step in fridge) and not is_case(fridge[1])
    assert any(step.startswith("电磁炉") for step in sequence(appliance, 5, "电磁炉一直报警", index))
    # examples in brackets do not make a step another appliance's (维修中判断是否人为损坏（如洗衣机内混入硬币…）)
    assert any(step.startswith("维修中判断") for step in fridge)


def test_my_practice_history_is_mine_only(env: Env) -> None:
    done = _pass(env, env.a1, env.start(env.a1, size=2), right=1)
    env.start(env.a1, size=1)  # started, not answered
    _pass(env, env.a2, env.start(env.a2, size=3), right=3)
    mine = env.c.get("/v1/practice/mine", headers=auth(env.a1))
    assert mine.status_code == 200
    rounds = mine.json()
    assert [(r["total"], r["answered"], r["finished"]) for r in rounds] == [(1, 0, False), (2, 2, True)]
    assert rounds[1]["correct"] == 1 and rounds[1]["score"] == done["session"]["score"]
    theirs = env.c.get("/v1/practice/mine", headers=auth(env.a2)).json()
    assert [r["total"] for r in theirs] == [3] and theirs[0]["score"] == 1.0
    assert not {r["session_id"] for r in theirs} & {r["session_id"] for r in rounds}
    assert env.c.get("/v1/practice/mine").status_code == 401  # tenants have no practice
    assert env.c.get("/v1/practice/mine", params={"limit": 0}, headers=auth(env.a1)).status_code == 422


def test_the_csv_has_the_second_stage_accuracy_after_the_existing_columns(env: Env) -> None:
    _pass(
        env, env.a1, env.start(env.a1, size=4, category="报修"), right=4, second_wrong=1
    )  # 报修: 42/45 have a 2nd stage
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    expected = next(p for p in report["people"] if p["name"] == "agent-a")["followup_accuracy"]
    assert expected is not None and expected < 1.0
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text[1:])))
    head = rows[0]  # Chinese headings for the trainers who open it in a spreadsheet; positions as before
    old = "分组 名称 练习题数 找对率 找SOP用时中位数(毫秒) 检索次数 检索成功率 复制话术用时中位数(毫秒) 👎比例"
    assert head[:11] == [*old.split(), "待确认变更", "说明"]
    assert head[11] == "第二步正确率" and all(len(r) == len(head) for r in rows)
    # The SOP table's on-the-job columns and confusions in cells of their own (a trial missed them in the CSV)
    assert head[14:19] == ["过快作答数", "日志检索次数", "日志检索成功率", "👎次数", "误选为"]
    assert head[19:] == ["认证后的变更", "未完成培训任务", "逾期培训任务"]
    sops = {r[1]: r for r in rows if r[0] == "SOP"}
    for s in report["sops"]:
        assert sops[s["sop_id"]][15] == str(s["logged_searches"]) and sops[s["sop_id"]][17] == str(s["thumbs_down"])
    person = next(r for r in rows if r[:2] == ["人员", "agent-a"])
    assert person[11] == f"{round(expected * 100)}%"


def test_the_csv_names_a_sop_picked_by_mistake_by_title_whatever_its_category(env: Env) -> None:
    """A training manager's trial: 误选为 named SOPs of the round's category by title and others by id."""
    _pass(env, env.a1, env.start(env.a1, size=2, category="报修"), right=0)  # both picked as network-wifi
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text[1:])))
    confused = [r[18] for r in rows if r[0] == "SOP" and r[18]]
    wifi = env.c.get("/v1/sops/network-wifi", headers=auth(env.trainer)).json()["title"]
    assert confused and all(c.startswith(f"{wifi}×") for c in confused), confused
    assert not any("network-wifi" in c for c in confused)


FILTER_SOP = """---
id: ac-filter-cleaning
title: 空调滤网清洗预约
category: 报修
audience: public
tags: [空调滤网, 空调清洗]
examples:
  - 空调要多久清洗一次
  - 空调滤网多久洗一次
---
# 空调滤网清洗预约

## 处理步骤
1. 核实房号，在工单系统建立"空调滤网清洗"预约单。
2. 通知工程部安排师傅上门清洗滤网。
"""


def test_an_exam_asks_only_utterances_whose_sop_the_search_puts_first(tmp_path: Path, sops_copy: Path) -> None:
    """A trainer's trial: her new filter-cleaning SOP answers 空调要多久清洗一次 too, the air-conditioning SOP's FAQ;
    the exam asked it expecting the air-conditioning SOP, which search put second, and marked the first result wrong.
    Practice keeps such items (telling near misses apart is what it trains)."""
    (sops_copy / "ac-filter-cleaning.md").write_text(FILTER_SOP, encoding="utf-8")
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        services = c.app.state.kb_state.services  # type: ignore[attr-defined]
        searcher, db = services.kb.searcher, services.logbook
        pool = candidates([s for s in searcher.catalog.every() if s.meta.category == "报修"], {})
        seconds = [(cand, p) for cand, p in probe_all(searcher, pool) if p.rank != 1]
        assert seconds, "the two SOPs share an utterance: one of them is not first for it"
        exam = build_round(searcher, db, size=len(pool), category="报修", level=0, exam=True, rng=random.Random(7))
        practice = build_round(searcher, db, size=len(pool), category="报修", level=0, rng=random.Random(7))
    left_out = {(cand.sop_id, cand.prompt) for cand, _ in seconds}
    assert exam and not left_out & {(d.candidate.sop_id, d.candidate.prompt) for d in exam}
    assert left_out & {(d.candidate.sop_id, d.candidate.prompt) for d in practice}


def test_a_tenants_chat_question_is_no_drill(tmp_path: Path) -> None:
    """The chat's document is the public search's: 能换个房间住吗 (answered from the renewal FAQ) became a drill keyed
    to 续租办理, and a trainee who found 内部换房办理 (staff-only) was marked wrong (a trainer's trial)."""
    log = Logbook(tmp_path / "db.sqlite3")
    log.log_query(
        source="chat",
        audience="public",
        query="能换个房间住吗",
        result_ids=["lease-renewal"],
        top_score=2.0,
        confidence=0.9,
        client="1.2.3.4",
    )
    log.flush()
    assert log.rows("SELECT COUNT(*) AS n FROM queries WHERE source = 'chat'", {})[0]["n"] == 1
    found = logged_phrasings(log).values()  # type: ignore[arg-type]  # reads with rows(), as the database does
    assert all("能换个房间住吗" not in text for pairs in found for text, _ in pairs)
    log.close()


BARE_SOP = """---
id: repair-balcony-rack
title: 升降晾衣架维修
category: 报修
audience: agent
---
# 升降晾衣架维修

## 处理步骤
1. 问清是摇不动、钢丝断了还是杆子歪了。
2. 建"晾衣架"维修工单，师傅 48 小时内上门。
"""


UNSTAGED_SOP = """---
id: repair-balcony-light
title: 阳台灯不亮报修
category: 报修
audience: agent
examples: [阳台的灯不亮了, 阳台灯坏了找谁修]
---
# 阳台灯不亮报修

## 适用场景
租客反映阳台顶灯不亮、闪烁或开关无反应。
"""


def test_the_drill_supply_per_category_shows_what_an_exam_can_hold(tmp_path: Path, sops_copy: Path) -> None:
    """A trainer's trial: exams failed with 「只够出 1 道题」 one category at a time, and SOPs with neither examples nor
    FAQ questions were never drilled without a word. The supply lists both before an exam is set, and the SOPs whose
    questions have no second stage (no script line, steps or answer), which an exam asks only after the others."""
    (sops_copy / "repair-balcony-rack.md").write_text(BARE_SOP, encoding="utf-8")
    (sops_copy / "repair-balcony-light.md").write_text(UNSTAGED_SOP, encoding="utf-8")
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        trainer = add_account(c, "trainer-s", "trainer")
        assert c.get("/v1/practice/supply", headers=auth(AGENT)).status_code == 403
        rows = {r["category"]: r for r in c.get("/v1/practice/supply", headers=auth(trainer)).json()}
        services = c.app.state.kb_state.services  # type: ignore[attr-defined]
        searcher = services.kb.searcher
        every = list(searcher.catalog.every())
        assert set(rows) == {s.meta.category for s in every}
        repair = rows["报修"]
        assert {"sop_id": "repair-balcony-rack", "title": "升降晾衣架维修"} in repair["bare"]
        light = {"sop_id": "repair-balcony-light", "title": "阳台灯不亮报修"}
        assert light in repair["unstaged"] and light not in repair["bare"]
        assert "repair-balcony-rack" not in {r["sop_id"] for r in repair["unstaged"]}
        pool = candidates([s for s in every if s.meta.category == "网络"], {})
        first = sum(p.rank == 1 for _, p in probe_all(searcher, pool))
        net = rows["网络"]
        assert (net["sops"], net["utterances"], net["exam_ready"], net["bare"]) == (
            sum(s.meta.category == "网络" for s in every),
            len(pool),
            first,
            [],
        )
        assert 0 < first < 20 and len(pool) <= 60  # the exam's own trial probes up to 60 utterances
        refused = c.put("/v1/practice/exams/网络", json={"pass_mark": 0.8, "size": first + 1}, headers=auth(trainer))
        assert refused.status_code == 422 and f"只够出 {first} 道题" in refused.json()["error"]["message"]
        fits = c.put("/v1/practice/exams/网络", json={"pass_mark": 0.8, "size": first}, headers=auth(trainer))
        assert fits.status_code == 200


def test_a_search_is_a_drill_only_for_the_first_result_the_agent_acted_on(tmp_path: Path) -> None:
    """A trial: an agent copied the first script line on the page, from the fifth card (跑水应急处置), for
    楼道的灯坏了; the search became a practice drill keyed to the burst-pipe procedure, and a colleague who found the
    lighting SOP was marked wrong."""
    log = Logbook(tmp_path / "db.sqlite3")
    ids = ["public-lighting", "repair-electric", "emergency-flooding"]
    staff: dict[str, Any] = {"source": "search", "audience": "agent", "top_score": 2.0}
    light = log.log_query(**staff, query="楼道的灯坏了好几天了", result_ids=ids)
    door = log.log_query(**staff, query="门卡刷不开门了", result_ids=["access"])
    log.flush()
    events = LearnedStore(log.db)
    events.add_event(query_id=light, sop_id="emergency-flooding", kind="copy", who="agent-a")
    events.add_event(query_id=door, sop_id="access", kind="open", who="agent-a")
    found = {sop: [t for t, _ in pairs] for sop, pairs in logged_phrasings(log).items()}  # type: ignore[arg-type]
    assert found.get("access") == ["门卡刷不开门了"]
    assert "emergency-flooding" not in found and "public-lighting" not in found
    log.close()


def test_a_masked_search_is_no_drill_and_a_persons_own_searches_are_known(tmp_path: Path) -> None:
    """A trainer's trial: 「租客[姓名]电话[手机号]说房间甲醛超标」 became an exam question, and the agent who had
    searched it was asked it in her own exam."""
    log = Logbook(tmp_path / "db.sqlite3")
    staff: dict[str, Any] = {"source": "search", "audience": "agent", "top_score": 2.0, "result_ids": ["access"]}
    named = log.log_query(**staff, query="租客王小明电话13812345678说门卡刷不开")
    plain = log.log_query(**staff, query="门卡刷不开门了")
    log.flush()
    events = LearnedStore(log.db)
    events.add_event(query_id=named, sop_id="access", kind="open", who="agent-a")
    events.add_event(query_id=plain, sop_id="access", kind="copy", who="agent-a")
    access = next(s for s in _corpus() if s.meta.id == "access-door-card")
    pairs = logged_phrasings(log).get("access", [])  # type: ignore[arg-type]
    prompts = {c.prompt for c in candidates([access], {"access-door-card": pairs})}
    assert "门卡刷不开门了" in prompts and not any("[" in p for p in prompts)
    mine = own_searches(log, "agent-a")  # type: ignore[arg-type]
    assert mine == {"租客[姓名]电话[手机号]说门卡刷不开", "门卡刷不开门了"}
    assert own_searches(log, "agent-b") == set()  # type: ignore[arg-type]
    log.close()


def test_a_retake_asks_other_utterances_while_the_category_has_them(env: Env) -> None:
    """A trial failed an exam, pressed 重考 and was asked two of the same questions, answers just shown."""
    mark = {"pass_mark": 1.0, "size": 5}
    assert env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer)).status_code == 200
    first = env.start(env.a1, category="报修", exam=True)
    _pass(env, env.a1, first, right=0)
    again = env.start(env.a1, category="报修", exam=True)
    asked = {d["prompt"] for d in first["drills"]}
    assert len(again["drills"]) == 5 and not asked & {d["prompt"] for d in again["drills"]}
    other = env.start(env.a2, category="报修", exam=True)  # another person's draw is not limited by it
    assert len(other["drills"]) == 5
    # A category with fewer utterances than two exams repeats what it must, the new ones first
    net = len([c for c in candidates([s for s in _corpus() if s.meta.category == "网络"], {})])
    mark = {"pass_mark": 1.0, "size": 4}
    assert env.c.put("/v1/practice/exams/网络", json=mark, headers=auth(env.trainer)).status_code == 200
    one = env.start(env.a1, category="网络", exam=True)
    _pass(env, env.a1, one, right=0)  # handed in (an unfinished one would be continued)
    two = env.start(env.a1, category="网络", exam=True)
    overlap = {d["prompt"] for d in one["drills"]} & {d["prompt"] for d in two["drills"]}
    assert len(two["drills"]) == 4 and len(overlap) <= max(0, 8 - net)


def test_a_failed_exam_is_retaken_only_after_the_categorys_wait(env: Env) -> None:
    """A trial passed by memory: 60 % → 40 % → 100 % within 12 minutes, the answers shown after each attempt."""
    mark = {"pass_mark": 1.0, "size": 2, "retake_minutes": 30}
    r = env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer))
    assert r.status_code == 200 and r.json()["retake_minutes"] == 30
    failed = env.start(env.a1, category="报修", exam=True)
    _pass(env, env.a1, failed, right=0)
    again = env.c.post("/v1/practice/sessions", json={"category": "报修", "exam": True}, headers=auth(env.a1))
    assert again.status_code == 429 and "30 分钟后可以重考" in again.json()["error"]["message"]
    assert 29 * 60 < int(again.headers["retry-after"]) <= 30 * 60
    assert env.start(env.a1, category="报修")["session_id"]  # practice is open meanwhile
    assert env.start(env.a2, category="报修", exam=True)["session_id"]  # another person is not held
    with sqlite3.connect(env.db) as conn:  # the wait has passed
        conn.execute("UPDATE practice_sessions SET ts = ts - 1801 WHERE session_id = ?", (failed["session_id"],))
    retake = env.start(env.a1, category="报修", exam=True)
    assert _pass(env, env.a1, retake, right=2)["session"]["certified"] is True
    assert env.start(env.a1, category="报修", exam=True)["session_id"]  # after a pass: no wait to renew
    mark["retake_minutes"] = 0
    assert env.c.put("/v1/practice/exams/网络", json=mark, headers=auth(env.trainer)).json()["retake_minutes"] == 0
    missed = env.start(env.a1, category="网络", exam=True)
    _pass(env, env.a1, missed, right=0)
    assert env.start(env.a1, category="网络", exam=True)["session_id"]  # no wait set: at once, as before


def test_an_exam_avoids_what_the_person_just_practised(env: Env) -> None:
    """A trial: two questions practised with their answers shown were asked in the exam two minutes later."""
    assert (
        env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 3}, headers=auth(env.trainer)).status_code
        == 200
    )
    practised = env.start(env.a1, category="报修", size=20)
    exam = env.start(env.a1, category="报修", exam=True)
    assert not {d["prompt"] for d in practised["drills"]} & {d["prompt"] for d in exam["drills"]}


def test_an_exam_on_chosen_sops_asks_only_theirs_and_certifies_the_category(env: Env) -> None:
    """A training lead's trial: to examine the leak procedure just changed, the whole 报修 category had to be set."""
    chosen = ["repair-leak-ceiling", "repair-air-conditioner"]
    put = env.c.put(
        "/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 3, "sops": chosen}, headers=auth(env.trainer)
    )
    assert put.status_code == 200 and put.json()["sops"] == chosen, put.text
    assert [e["sops"] for e in env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()] == [chosen]
    exam = env.start(env.a1, category="报修", exam=True)
    assert len(exam["drills"]) == 3 and {env.expected(d["drill_id"]) for d in exam["drills"]} <= set(chosen)
    assert _pass(env, env.a1, exam, right=3)["session"]["certified"] is True  # a certificate of the category
    outside = {"pass_mark": 0.5, "size": 3, "sops": ["network-wifi"]}
    refused = env.c.put("/v1/practice/exams/报修", json=outside, headers=auth(env.trainer))
    assert refused.status_code == 422 and "不属于分类“报修”" in refused.json()["error"]["message"]
    few = env.c.put(
        "/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 20, "sops": chosen[:1]}, headers=auth(env.trainer)
    )
    assert few.status_code == 422 and "所选的 1 份 SOP现有的问法只够出" in few.json()["error"]["message"]
    whole = env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 3}, headers=auth(env.trainer))
    assert whole.json()["sops"] == []  # set again without SOPs: the whole category


def test_an_exam_is_continued_the_same_day_and_handed_in_when_left_longer(env: Env) -> None:
    """A trial reloaded the page mid-exam: the next 参加考试 handed the exam in at 0 % and locked the retake (the
    refused start had handed it in too). An earlier trial left an exam going badly for a fresh one: it stayed 未完成
    for good. Now the same day's 参加考试 continues the exam where it stopped; one left longer is handed in."""
    mark = {"pass_mark": 0.5, "size": 2, "retake_minutes": 30}
    assert env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer)).status_code == 200
    left = env.start(env.a1, category="报修", exam=True)
    assert env.start(env.a1, category="报修", exam=True)["session_id"] == left["session_id"]  # a double click
    first = left["drills"][0]
    env.answer(
        env.a1, left["session_id"], drill_id=first["drill_id"], sop_id=env.wrong(first["drill_id"])
    )  # an answer, a reload
    again = env.c.post("/v1/practice/sessions", json={"category": "报修", "exam": True}, headers=auth(env.a1))
    assert again.status_code == 201, again.text
    body = again.json()
    assert body["session_id"] == left["session_id"] and body["resumed"] is True
    # ... at the second stage the wrong pick was given, if it was given one, else at the next question
    assert body["answered"] == (0 if body["drills"][0]["pending"] else 1)
    assert [d["drill_id"] for d in body["drills"]] == [d["drill_id"] for d in left["drills"]]
    assert env.start(env.a1, category="网络", exam=False)["resumed"] is False  # practice is not an exam
    with sqlite3.connect(env.db) as conn:
        assert conn.execute(
            "SELECT finished_ts FROM practice_sessions WHERE session_id = ?", (left["session_id"],)
        ).fetchone() == (None,)
        conn.execute("UPDATE practice_sessions SET ts = ts - 86401 WHERE session_id = ?", (left["session_id"],))
    fresh = env.start(env.a1, category="报修", exam=True)  # a day later: a new attempt, the old one handed in
    assert fresh["session_id"] != left["session_id"] and fresh["resumed"] is False
    with sqlite3.connect(env.db) as conn:
        finished, score = conn.execute(
            "SELECT finished_ts, score FROM practice_sessions WHERE session_id = ?", (left["session_id"],)
        ).fetchone()
    assert finished is not None and score == 0.0  # handed in as it stood: one wrong answer, nothing earned
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    mine = [x for x in report["exams"] if x["who"] == "agent-a" and x["category"] == "报修"]
    assert [(x["finished"], x["passed"]) for x in mine] == [(True, False), (False, None)]  # 未通过, not 未完成 for good
    # Its review shows what was asked and not answered too, with the answer (a trainer's trial: expected_sop_id null)
    review = env.c.get(f"/v1/practice/sessions/{left['session_id']}", headers=auth(env.a1)).json()
    unanswered = [r for r in review if not r["answered"]]
    assert unanswered and all(r["expected_sop_id"] and r["expected_title"] for r in unanswered)
    assert all(r["right_line"] or r["right_order"] for r in unanswered)  # an exam asks staged utterances first
    _pass(env, env.a1, fresh, right=0)
    refused = env.c.post("/v1/practice/sessions", json={"category": "报修", "exam": True}, headers=auth(env.a1))
    assert refused.status_code == 429 and "30 分钟后可以重考" in refused.json()["error"]["message"]


def test_an_exam_left_at_its_last_second_stage_is_continued_not_handed_in(env: Env) -> None:
    """A training lead's trial: an agent answered every SOP of an exam and left the last second stage open; 参加考试,
    as the page told him, handed the attempt in (the open stage wrong), certified him at 67 % without a result screen
    and started another attempt. A stage left open is continued like a question left open."""
    mark = {"pass_mark": 0.5, "size": 2}
    assert env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer)).status_code == 200
    left = env.start(env.a1, category="报修", exam=True)
    *before, last = left["drills"]
    _pass(env, env.a1, {**left, "drills": before}, right=len(before))
    out = env.answer(env.a1, left["session_id"], drill_id=last["drill_id"], sop_id=env.expected(last["drill_id"]))
    assert out.json()["next"], "the sample exam's questions have a second stage"  # left open: the page reloaded
    again = env.c.post("/v1/practice/sessions", json={"category": "报修", "exam": True}, headers=auth(env.a1)).json()
    assert again["session_id"] == left["session_id"] and again["resumed"] is True
    assert again["answered"] == len(before) and again["drills"][-1]["pending"]  # back at that second stage
    assert env.c.get("/v1/practice/certifications", headers=auth(env.trainer)).json() == []


def test_an_exam_asks_utterances_with_a_second_stage_first(tmp_path: Path, sops_copy: Path) -> None:
    """A trial's complaints exam drew three noise complaints without a second stage: what agents say and do was never
    examined. Where the category has enough utterances with one, every exam question has a second stage."""
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        services = c.app.state.kb_state.services  # type: ignore[attr-defined]
        searcher, db = services.kb.searcher, services.logbook
        for seed in range(4):
            practice = build_round(searcher, db, size=5, category="投诉升级", level=0, rng=random.Random(seed))
            exam = build_round(searcher, db, size=5, category="投诉升级", level=0, exam=True, rng=random.Random(seed))
            assert len(exam) == 5 and all(d.followup for d in exam)
            assert len(practice) == 5  # practice draws as before, near the trainee's level


def _publish(env: Env, sop_id: str, old: str, new: str) -> None:
    src = env.c.get(f"/v1/sops/{sop_id}/source", headers=auth(env.trainer)).json()
    assert old in src["content"]
    r = env.c.put(
        f"/v1/sops/{sop_id}",
        content=src["content"].replace(old, new).encode(),
        params={"base_version": src["version"], "force": True},
        headers={**auth(env.trainer), "content-type": "text/markdown"},
    )
    assert r.status_code == 200, r.text


def test_a_certification_older_than_a_change_to_its_categorys_procedures_asks_for_a_retake(env: Env) -> None:
    """A trial: a SOP's time limit changed after an agent's pass, and nothing told the trainer or the agent that the
    certificate examined the old procedure. It stays valid and says how many changes came after it."""
    mark = {"pass_mark": 0.5, "size": 4}
    assert env.c.put("/v1/practice/exams/报修", json=mark, headers=auth(env.trainer)).status_code == 200
    assert _pass(env, env.a1, env.start(env.a1, category="报修", exam=True), right=4)["session"]["certified"]

    def mine() -> dict[str, Any]:
        [exam] = env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()
        return exam  # type: ignore[no-any-return]

    def in_report() -> dict[str, int]:
        people = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["people"]
        return next(p["changed_since"] for p in people if p["name"] == "agent-a")  # type: ignore[no-any-return]

    assert (mine()["changed_since"], in_report()) == (0, {})
    _publish(env, "network-wifi", "30分钟内远程响应", "20分钟内远程响应")  # another category: not examined
    assert (mine()["changed_since"], in_report()) == (0, {})
    _publish(env, "repair-drain-blocked", "接报后 5 分钟内建单。", "接报后 3 分钟内建单。")
    assert mine()["certified"] is True and mine()["changed_since"] == 1 and in_report() == {"报修": 1}
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text)))
    column = rows[0].index("认证后的变更")
    assert next(r[column] for r in rows if r[:2] == ["人员", "agent-a"]) == "报修×1"
    assert _pass(env, env.a1, env.start(env.a1, category="报修", exam=True), right=4)["session"]["certified"]
    assert (mine()["changed_since"], in_report()) == (0, {})  # passed again on the procedure as it is now


def test_a_search_agents_acted_on_is_no_drill_once_another_sop_answers_it_first(env: Env) -> None:
    """A trainer's trial split a SOP: the searches agents had acted on stayed drills keyed to the old SOP, and a
    trainee who picked the new one, now the search's first, was marked wrong. An utterance from use is asked only
    while the search puts its SOP first."""
    words = "楼道里的灯一直不亮"
    r = env.c.post("/v1/search", json={"query": words, "top_k": 3}, headers=auth(env.a1))
    top, query_id = r.json()["results"][0]["sop_id"], r.json()["query_id"]
    opened = {"query_id": query_id, "sop_id": top, "type": "open"}
    assert env.c.post("/v1/events", json=opened, headers=auth(env.a1)).status_code in (200, 201, 202)
    services = env.c.app.state.kb_state.services  # type: ignore[attr-defined]
    category = services.kb.searcher.catalog[top].meta.category

    def drilled() -> set[tuple[str, str]]:
        chosen = build_round(services.kb.searcher, services.logbook, size=60, category=category, level=0)
        return {(d.candidate.sop_id, d.candidate.prompt) for d in chosen}

    assert (top, words) in drilled()
    new_sop = (
        f"---\nid: corridor-lights\ntitle: 楼道灯不亮报修\ncategory: {category}\naudience: agent\n"
        f"examples:\n  - {words}\n  - 楼道灯坏了\n---\n# 楼道灯不亮报修\n\n## 处理步骤\n"
        "1. 询问是哪一层楼道的灯不亮，是一盏还是整层。\n2. 建公共区域报修工单，电工24小时内更换灯泡。\n"
        "3. 更换后回访租客，确认楼道灯已经亮了。\n"
    )
    put = env.c.put(
        "/v1/sops/corridor-lights",
        content=new_sop.encode(),
        headers={**auth(env.trainer), "content-type": "text/markdown"},
    )
    assert put.status_code == 200, put.text
    first = env.c.post("/v1/search", json={"query": words, "top_k": 3}, headers=auth(env.a1)).json()["results"][0]
    assert first["sop_id"] == "corridor-lights"
    after = drilled()
    assert (top, words) not in after and ("corridor-lights", words) in after


def test_an_exam_whose_category_lost_its_last_sop_certifies_nobody_and_can_be_withdrawn(env: Env) -> None:
    """A trainer's trial deleted the only SOP of 社区活动: the delete said nothing, agents still saw 参加考试 (which
    failed), and an exam already going certified its agent on the retired procedure."""
    mark = {"pass_mark": 0.5, "size": 4}
    assert env.c.put("/v1/practice/exams/社区活动", json=mark, headers=auth(env.trainer)).is_success
    session = env.start(env.a1, category="社区活动", exam=True)
    drills = session["drills"]
    assert len(drills) >= 3
    _pass(env, env.a1, {**session, "drills": drills[:-1]}, right=len(drills) - 1)
    # a task on the category, set before: shown as retired after, to be withdrawn (it stayed 未完成 for good)
    task = {"people": ["agent-a"], "kind": "practice", "category": "社区活动", "size": 3, "due_ts": time.time() + 86400}
    made = env.c.post("/v1/practice/assignments", json=task, headers=auth(env.trainer))
    assert made.status_code == 201, made.text
    assert [t["retired"] for t in env.c.get("/v1/practice/assignments", headers=auth(env.a1)).json()] == [False]
    gone = env.c.delete("/v1/sops/community-activities", params={"base_version": 1}, headers=auth(env.trainer))
    assert gone.status_code == 200, gone.text
    assert any("社区活动" in w and "考试" in w for w in gone.json()["warnings"])
    last = drills[-1]["drill_id"]  # a wrong pick: a pass at (n-1)/n all the same
    out = env.answer(env.a1, session["session_id"], drill_id=last, sop_id=env.wrong(last)).json()
    if out["next"]:
        out = env.answer(env.a1, session["session_id"], drill_id=last, **_stage_answer(env, last, right=True)).json()
    assert out["session"]["finished"] and out["session"]["score"] >= 0.5
    assert out["session"]["certified"] is False
    exams = {x["category"]: x for x in env.c.get("/v1/practice/exams", headers=auth(env.a1)).json()}
    assert exams["社区活动"]["retired"] is True and exams["社区活动"]["certified"] is False
    assert [t["retired"] for t in env.c.get("/v1/practice/assignments", headers=auth(env.a1)).json()] == [True]
    # ... and the records say so rather than 通过 (a trial read the attempt as passed in 我的练习记录 and the report)
    mine = env.c.get("/v1/practice/mine", headers=auth(env.a1)).json()[0]
    assert mine["session_id"] == session["session_id"] and (mine["passed"], mine["certified"]) == (True, False)
    attempt = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["exams"][-1]
    assert (attempt["who"], attempt["passed"], attempt["certified"]) == ("agent-a", True, False)
    assert "达到及格线，未计认证" in env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text
    other = env.c.delete("/v1/sops/repair-drain-blocked", params={"base_version": 1}, headers=auth(env.trainer))
    assert other.status_code == 200 and other.json()["warnings"] == []  # 报修 keeps other SOPs


def test_a_phrasing_agents_taught_is_no_drill_while_the_content_says_another_sop(env: Env) -> None:
    """A re-check split a SOP: a phrasing agents had confirmed for the old one kept agent search there, and practice
    kept it keyed there too, so the new SOP was marked wrong. Drills are probed by the documents' content."""
    words = "健身房几点开门"
    r = env.c.post("/v1/search", json={"query": words, "top_k": 3}, headers=auth(env.a1)).json()
    vote = {"query_id": r["query_id"], "sop_id": "parcel-service", "vote": 1}
    assert env.c.post("/v1/feedback", json=vote, headers=auth(env.a1)).status_code in (200, 201)
    services = env.c.app.state.kb_state.services  # type: ignore[attr-defined]
    deadline = time.time() + 10
    while time.time() < deadline:  # the learned pair takes agent search there (within seconds)
        first = env.c.post("/v1/search", json={"query": words, "top_k": 3}, headers=auth(env.a1)).json()
        if first["results"][0]["sop_id"] == "parcel-service":
            break
        time.sleep(0.5)
    assert first["results"][0]["sop_id"] == "parcel-service"
    category = services.kb.searcher.catalog["parcel-service"].meta.category
    assert words in [t for t, s in logged_phrasings(services.logbook).get("parcel-service", []) if s == "learned"]
    chosen = build_round(services.kb.searcher, services.logbook, size=60, category=category, level=0)
    assert ("parcel-service", words) not in {(d.candidate.sop_id, d.candidate.prompt) for d in chosen}


def test_a_trainer_sees_a_sops_practice_utterances_and_withdraws_one_from_use(env: Env) -> None:
    """A trial: a search an agent acted on became a drill keyed to the wrong SOP, and the trainer could neither see
    nor remove it. A SOP's utterances list where each comes from; one from use can be withdrawn and brought back."""
    r = env.c.post("/v1/search", json={"query": "楼道里的灯一直不亮", "top_k": 3}, headers=auth(env.a1))
    top, query_id = r.json()["results"][0]["sop_id"], r.json()["query_id"]
    opened = {"query_id": query_id, "sop_id": top, "type": "open"}
    assert env.c.post("/v1/events", json=opened, headers=auth(env.a1)).status_code in (200, 201, 202)
    url = f"/v1/sops/{top}/drills"
    assert env.c.get(url, headers=auth(env.a1)).status_code == 403
    pool = {u["prompt"]: u for u in env.c.get(url, headers=auth(env.trainer)).json()}
    assert pool["楼道里的灯一直不亮"] == {"prompt": "楼道里的灯一直不亮", "source": "log", "withdrawn": False}
    example = next(p for p, u in pool.items() if u["source"] == "example")

    def asked(prompt: str) -> bool:  # among the utterances rounds and exams draw from
        services = env.c.app.state.kb_state.services  # type: ignore[attr-defined]
        return prompt in [t for t, _ in logged_phrasings(services.logbook).get(top, [])]

    assert asked("楼道里的灯一直不亮")
    withdraw = f"{url}/withdrawn"
    out = env.c.post(withdraw, json={"prompt": "楼道里的灯一直不亮"}, headers=auth(env.trainer))
    assert out.status_code == 200 and {u["prompt"]: u["withdrawn"] for u in out.json()}["楼道里的灯一直不亮"] is True
    assert not asked("楼道里的灯一直不亮")
    refused = env.c.post(withdraw, json={"prompt": example}, headers=auth(env.trainer))
    assert refused.status_code == 422 and "编辑 SOP" in refused.json()["error"]["message"]
    assert env.c.post(withdraw, json={"prompt": "没有这句"}, headers=auth(env.trainer)).status_code == 404
    assert env.c.get("/v1/sops/no-such-sop/drills", headers=auth(env.trainer)).status_code == 404
    back = env.c.request("DELETE", withdraw, params={"prompt": "楼道里的灯一直不亮"}, headers=auth(env.trainer))
    assert back.status_code == 200 and asked("楼道里的灯一直不亮")


def test_an_exam_can_require_every_second_stage_right(env: Env) -> None:
    """Asked for in a trainer's trial: in an emergency exam a score at the mark can hide a wrong step order. Under the
    every-stage rule one wrong second stage fails it whatever the score; an exam is judged by the rule it started
    under."""
    rule = {"pass_mark": 0.5, "size": 4, "every_stage": True}
    set_ = env.c.put("/v1/practice/exams/报修", json=rule, headers=auth(env.trainer))
    assert set_.status_code == 200 and set_.json()["every_stage"] is True
    started = env.start(env.a1, category="报修", exam=True)
    assert started["every_stage"] is True
    failed = _pass(env, env.a1, started, right=4, second_wrong=1)["session"]
    assert failed["score"] >= 0.5 and failed["second_correct"] < failed["second_total"]
    assert failed["certified"] is False
    # the report and its CSV say which rule failed it (a trial read 「得分 80%，及格线 80%，未通过」)
    [attempt] = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["exams"]
    assert (attempt["passed"], attempt["every_stage"]) == (False, True)
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text[1:])))
    assert "报修｜未通过（第二步须全对）" in next(r for r in rows if r[0] == "考试")[10]
    [mine] = env.c.get("/v1/practice/mine", headers=auth(env.a1)).json()
    assert (mine["passed"], mine["every_stage"]) == (False, True)
    later = env.start(env.a2, category="报修", exam=True)  # started under the rule, judged by it after a change
    plain = {"pass_mark": 0.5, "size": 4}
    assert env.c.put("/v1/practice/exams/报修", json=plain, headers=auth(env.trainer)).json()["every_stage"] is False
    assert _pass(env, env.a2, later, right=4, second_wrong=1)["session"]["certified"] is False
    again = _pass(env, env.a1, env.start(env.a1, category="报修", exam=True), right=4, second_wrong=1)
    assert again["session"]["certified"] is True  # the score alone now
    assert _pass(env, env.a2, env.start(env.a2, category="报修", exam=True), right=4)["session"]["certified"]


def test_an_exam_asks_the_examples_the_console_suggests_last(tmp_path: Path, sops_copy: Path) -> None:
    """A trial: three of an exam's questions were among the console home page's suggested searches (each SOP's first
    example, GET /v1/sops `example`), which agents see every day."""
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        services = c.app.state.kb_state.services  # type: ignore[attr-defined]
        searcher, db = services.kb.searcher, services.logbook
        shown = {s["example"] for s in c.get("/v1/sops", headers=auth(AGENT)).json() if s["example"]}
        for seed in range(4):  # 报修 has enough other utterances with a second stage (a small category may not)
            exam = build_round(searcher, db, size=5, category="报修", level=0, exam=True, rng=random.Random(seed))
            practice = build_round(searcher, db, size=40, category="报修", level=0, rng=random.Random(seed))
            assert len(exam) == 5 and all(d.followup for d in exam)
            assert not {d.candidate.prompt for d in exam} & shown
            assert {d.candidate.prompt for d in practice} & shown  # practice asks them as before


def test_an_exam_says_neither_right_nor_the_answer_before_it_is_handed_in(env: Env) -> None:
    """A trial passed a retake on the answers each wrong one had shown: during an exam an answer is recorded, and its
    verdict and the right SOP, line or order come with the last stage (the trainer sees them at once)."""
    env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 3}, headers=auth(env.trainer))
    exam = env.start(env.a1, category="报修", exam=True)
    sid, drills = exam["session_id"], exam["drills"]
    first = env.answer(env.a1, sid, drill_id=drills[0]["drill_id"], sop_id=env.wrong(drills[0]["drill_id"])).json()
    assert first["correct"] is None and first["expected_sop_id"] is None and first["expected_title"] is None
    assert first["session"]["correct"] is None and first["session"]["answered"] == 1
    # The right SOP's lines or steps are not shown after a wrong pick (a trial ordered them for a point); a second
    # stage from the SOP picked is, as after a right pick (none at all told the taker the pick was wrong)
    staged = bool(env.stored_followup(drills[0]["drill_id"]).get("kind"))
    if first["next"]:
        assert staged and set(first["next"]) <= {"kind", "question", "options", "steps"}
        body = _stage_answer(env, drills[0]["drill_id"], right=True)
        first = env.answer(env.a1, sid, drill_id=drills[0]["drill_id"], **body).json()
        assert first["correct"] is None and first["expected_choice"] is None and first["expected_order"] is None
    assert first["session"]["second_answered"] == int(staged)
    second = env.answer(env.a1, sid, drill_id=drills[1]["drill_id"], sop_id=env.expected(drills[1]["drill_id"]))
    if second.json()["next"]:
        body = _stage_answer(env, drills[1]["drill_id"], right=False)
        stage = env.answer(env.a1, sid, drill_id=drills[1]["drill_id"], **body).json()
        assert stage["correct"] is None and stage["expected_choice"] is None and stage["expected_order"] is None
    review = env.c.get(f"/v1/practice/sessions/{sid}", headers=auth(env.a1)).json()
    assert review[0]["answered"] is True and review[0]["correct"] is None and review[0]["expected_sop_id"] is None
    seen = env.c.get(f"/v1/practice/sessions/{sid}", headers=auth(env.trainer)).json()
    assert seen[0]["correct"] is False and seen[0]["expected_sop_id"] == env.expected(drills[0]["drill_id"])
    [mine] = env.c.get("/v1/practice/mine", headers=auth(env.a1)).json()
    assert mine["correct"] is None and mine["answered"] == 2 and not mine["finished"]
    person = env.c.get("/v1/practice/report/sessions", params={"person": "agent-a"}, headers=auth(env.trainer))
    assert person.json()[0]["correct"] == 1
    last = _pass(env, env.a1, {"session_id": sid, "drills": drills[2:]}, right=1)
    assert last["session"]["finished"] is True and last["session"]["correct"] == 2 and last["correct"] is True
    handed_in = env.c.get(f"/v1/practice/sessions/{sid}", headers=auth(env.a1)).json()
    assert [r["correct"] for r in handed_in] == [False, True, True]
    assert handed_in[0]["followup_correct"] is (False if staged else None)
    if second.json()["next"]:  # answered wrong on purpose: the review says what was right (a trial)
        stage = env.stored_followup(drills[1]["drill_id"])
        right = handed_in[1]["right_line"] or handed_in[1]["right_order"]
        assert right == (
            stage["options"][stage["answer"]]
            if stage["kind"] == "script"
            else [stage["steps"][i] for i in stage["answer"]]
        )
        # ... beside what was chosen (a training lead's trial saw only ✗, nothing to coach from)
        chosen = handed_in[1]["chosen_line"] or handed_in[1]["chosen_order"]
        if stage["kind"] == "script":
            assert chosen == stage["options"][body["choice"]] != right
        else:
            assert chosen == [stage["steps"][i] for i in body["order"]] != right
    assert handed_in[2]["right_line"] is None and handed_in[2]["right_order"] is None  # right: nothing to add
    assert handed_in[0]["expected_sop_id"] == env.expected(drills[0]["drill_id"])
    practice = env.start(env.a2, size=1)  # a practice round still answers at once
    drill = practice["drills"][0]["drill_id"]
    out = env.answer(env.a2, practice["session_id"], drill_id=drill, sop_id=env.wrong(drill)).json()
    assert out["correct"] is False and out["expected_sop_id"] == env.expected(practice["drills"][0]["drill_id"])


RACK_SOP = """---
id: repair-clothes-rack
title: 升降晾衣架维修
category: 报修
audience: agent
tags: [晾衣架, 晾衣杆]
---
# 升降晾衣架维修

## 处理步骤
1. 核实房号，在工单系统建立维修单。
2. 通知工程部48小时内上门维修。
"""


def test_a_sop_without_utterances_gets_tenant_phrasings_a_trainer_confirms_into_its_examples(env: Env) -> None:
    """A trial: on a terse knowledge base without `examples`, whole categories had nothing to practise. A SOP with few
    utterances gets suggested tenant phrasings (the colloquial lexicon's for what its title names); those a trainer
    ticks become examples in one published version, and so drills. Nothing is asked before a trainer confirms it."""
    put = env.c.put(
        "/v1/sops/repair-clothes-rack",
        content=RACK_SOP.encode(),
        headers={**auth(env.trainer), "content-type": "text/markdown"},
    )
    assert put.status_code in (200, 201), put.text
    url = "/v1/sops/repair-clothes-rack"
    assert env.c.get(f"{url}/drills", headers=auth(env.trainer)).json() == []
    assert env.c.get(f"{url}/drills/suggested", headers=auth(env.a1)).status_code == 403
    got = env.c.get(f"{url}/drills/suggested", headers=auth(env.trainer)).json()["phrasings"]
    assert len(got) >= 2, got
    assert not any("晾衣架" in p or "升降晾衣架维修" in p for p in got)  # the tenant's words, never the title's
    chosen = got[:2]
    added = env.c.post(f"{url}/examples", json={"phrasings": chosen}, headers=auth(env.trainer))
    assert added.status_code == 200, added.text
    assert added.json()["version"] == put.json()["version"] + 1
    pool = env.c.get(f"{url}/drills", headers=auth(env.trainer)).json()
    assert [(u["prompt"], u["source"]) for u in pool] == [(p, "example") for p in chosen]
    again = env.c.get(f"{url}/drills/suggested", headers=auth(env.trainer)).json()["phrasings"]
    assert not set(chosen) & set(again)
    assert env.c.post(f"{url}/examples", json={"phrasings": chosen}, headers=auth(env.trainer)).status_code == 409
    assert env.c.post(f"{url}/examples", json={"phrasings": []}, headers=auth(env.trainer)).status_code == 422
    assert env.c.post(f"{url}/examples", json={"phrasings": ["x"]}, headers=auth(env.a1)).status_code == 403
    unknown = env.c.post("/v1/sops/no-such-sop/examples", json={"phrasings": ["x"]}, headers=auth(env.trainer))
    assert unknown.status_code == 404
    assert env.c.get("/v1/sops/no-such-sop/drills/suggested", headers=auth(env.trainer)).status_code == 404
    catalog = env.c.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    assert {c.prompt for c in candidates([catalog.get("repair-clothes-rack")], {})} == set(chosen)


def _sop(sop_id: str, title: str, category: str = "报修", body: str = "") -> Sop:
    text = f"---\nid: {sop_id}\ntitle: {title}\ncategory: {category}\naudience: agent\n---\n# {title}\n\n{body}"
    sop = parse_bytes(f"{sop_id}.md", text.encode()).sop
    assert sop is not None
    return sop


def test_suggested_phrasings_leave_out_other_emergencies_slips_and_things_that_are_no_sentence() -> None:
    """A trial ticked through suggestions and found 「热水器有煤气味」 offered for the water heater (the gas leak's),
    「储水式热水器」 (no sentence), slips the lexicon lists on purpose (天花板楼水, 凉衣架) and Cantonese (坏咗)."""
    heater = _sop("heater", "热水器故障报修", body="## 处理步骤\n1. 核实热水器型号。\n")
    gas = _sop("gas", "燃气泄漏应急处置", "紧急事件", "## 处理步骤\n1. 关闭燃气表前阀。\n")
    rack = _sop("rack", "晾衣架维修", body="## 处理步骤\n1. 晾衣架报修。\n")
    glossary = Glossary(
        phrases=[
            (("热水器有煤气味", "储水式热水器", "热水气坏掉了", "洗澡水是凉的"), ("热水器",)),
            (("有股煤气味道", "燃气报警器在响"), ("燃气泄漏",)),
            (("凉衣架坏掉了", "晾衫架坏咗", "挂衣服的杆子摇不下来"), ("晾衣架",)),
        ]
    )
    everything = [heater, gas, rack]
    danger = suggest.danger_signals()
    # one phrasing per entry: the first that passes
    assert suggest.suggestions(heater, everything, glossary, [], danger) == ["洗澡水是凉的"]
    assert suggest.suggestions(gas, everything, glossary, [], danger, urgent=True) == ["有股煤气味道"]
    assert suggest.suggestions(gas, everything, glossary, [], danger, urgent=False) == []  # danger: emergencies only
    assert suggest.suggestions(rack, everything, glossary, [], danger) == ["挂衣服的杆子摇不下来"]


def test_the_weakest_sop_counts_what_happened_on_the_job_too() -> None:
    """A trainer's trial: 墙面发霉, never found on the job (no practice yet), sat below SOPs found every time."""
    from kb_service.training.report import SopFigures, _weakness

    def figures(sop_id: str, **kw: Any) -> SopFigures:
        base: dict[str, Any] = {"title": sop_id, "category": "报修", "drills": 0, "accuracy": None, "median_ms": None}
        base |= {"confused_with": {}, "searches": 0, "search_success": None, "logged_searches": 0}
        return SopFigures(sop_id=sop_id, **(base | {"logged_success": None, "thumbs_down": 0} | kw))

    practised = figures("found-always", drills=6, accuracy=1.0, followup_accuracy=1.0)
    mould = figures("mould", searches=3, search_success=0.0)
    voted = figures("voted-down", logged_searches=4, logged_success=1.0, thumbs_down=2)
    fine = figures("fine", logged_searches=4, logged_success=1.0)
    unknown = figures("no-figures")
    ranked = sorted([practised, fine, unknown, voted, mould], key=_weakness)
    assert [s.sop_id for s in ranked] == ["mould", "voted-down", "found-always", "fine", "no-figures"]


def test_a_round_does_not_ask_to_order_the_same_steps_twice_when_a_script_line_can_be_asked() -> None:
    """A trainer's trial: one practice round asked the same 甲醛 step ordering twice."""
    import random

    from kb_service.training.drills import Drill, followup
    from kb_service.training.matching import LineIndex

    everything = _corpus()
    index = LineIndex(everything)
    by_id = {s.meta.id: s for s in everything}
    both = 0
    for c in candidates(everything, {}):
        if c.answer:  # a FAQ question: never an ordering
            continue
        sop, rest = by_id[c.sop_id], [s for s in everything if s.meta.id != c.sop_id]
        first = followup(Drill(c, 1), 1, sop, [], random.Random(1), rest, index)
        again = followup(Drill(c, 1), 1, sop, [], random.Random(1), rest, index, ordered=True)
        scripted = followup(Drill(c, 1), 0, sop, [], random.Random(1), rest, index).get("kind") == "script"
        if first.get("kind") == "order" and scripted:
            assert again.get("kind") == "script", c.prompt
            both += 1
        else:  # nothing else to ask instead: as before
            assert again.get("kind") == first.get("kind"), c.prompt
    assert both >= 5  # utterances with a script line to ask instead


def test_a_persons_most_missed_sops_list_the_latest_miss_first_among_equal_counts() -> None:
    """Five SOPs are listed; among SOPs missed equally often the latest miss comes first, so a round just done shows
    (a CI run lost it behind five older single misses, listed in the order they were first missed)."""
    old = [{"sop_id": f"old-{i}", "correct": False, "answered_ts": 100.0 + i} for i in range(6)]
    twice = [{"sop_id": "twice", "correct": False, "answered_ts": ts} for ts in (50.0, 60.0)]
    found = [{"sop_id": "found", "correct": True, "answered_ts": 300.0}]
    latest = [{"sop_id": "latest", "correct": False, "answered_ts": 200.0}]
    assert list(most_missed([*twice, *old, *found, *latest])) == ["twice", "latest", "old-5", "old-4", "old-3"]
    assert most_missed([*twice, *found])["twice"] == 2


def test_the_csv_rounds_shares_as_the_pages_do() -> None:
    """A trial read 63% on the training tab and 62% in report.csv for 5 of 8 second stages (round half to even)."""
    from kb_service.training.report_csv import _pct

    assert [_pct(5 / 8), _pct(1 / 8), _pct(0.8), _pct(0.0), _pct(None)] == ["63%", "13%", "80%", "0%", ""]


def test_a_round_asks_a_restated_prompt_of_the_same_sop_only_when_nothing_else_is_left() -> None:
    """A trial's exam of six asked 发票抬头开错了怎么重开 and 发票抬头开错了能重开吗？ both: a prompt that restates one
    already picked for its SOP comes last, after the SOP's other prompts."""
    from kb_service.training.drills import Candidate, Probe, choose

    def item(sop_id: str, prompt: str) -> tuple[Candidate, Probe]:
        return Candidate(sop_id, "账单", prompt, "example"), Probe(rank=1, near=[], others=[])

    pool = [
        item("invoice", "发票抬头开错了怎么重开"),
        item("invoice", "发票抬头开错了能重开吗？"),
        item("invoice", "电子发票多久能开出来"),
        item("rent", "房租在哪里交"),
    ]
    for seed in range(8):  # whatever order the pool is shuffled into
        asked = [d.candidate.prompt for d in choose(pool, 3, 0, random.Random(seed))]
        assert "电子发票多久能开出来" in asked and "房租在哪里交" in asked
        assert ("发票抬头开错了怎么重开" in asked) != ("发票抬头开错了能重开吗？" in asked)
        assert len(choose(pool, 4, 0, random.Random(seed))) == 4  # restatements still fill a round nothing else can
