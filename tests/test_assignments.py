"""Training assignments through the API: a trainer asks named agents to pass an exam or finish a practice round on
chosen SOPs by a date; each agent sees only their own, and an assignment is done by what the records say (a pass of
the category after it was assigned, a finished round started from it)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import KEYS, api_client, auth
from tests.test_practice import Env, _pass, _stage_answer

DUE = time.time() + 3 * 86400


@pytest.fixture
def env(tmp_path: Path, sops_copy: Path) -> Iterator[Env]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield Env(c, tmp_path / "data" / "service.sqlite3")


def _assign(env: Env, **body: object) -> list[dict[str, object]]:
    r = env.c.post("/v1/practice/assignments", json={"due_ts": DUE, **body}, headers=auth(env.trainer))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _mine(env: Env, key: str) -> list[dict[str, object]]:
    r = env.c.get("/v1/practice/assignments", headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_an_exam_assignment_is_done_by_passing_the_exam_after_it_was_set(env: Env) -> None:
    people = env.c.get("/v1/practice/assignees", headers=auth(env.trainer)).json()
    assert [p["name"] for p in people] == ["agent-a", "agent-b", "trainer-t"]  # agents first
    no_exam = env.c.post(
        "/v1/practice/assignments",
        json={"kind": "exam", "category": "报修", "people": ["agent-a"], "due_ts": DUE},
        headers=auth(env.trainer),
    )
    assert no_exam.status_code == 422 and "已设置考试" in no_exam.json()["error"]["message"]
    env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 3}, headers=auth(env.trainer))
    made = _assign(env, kind="exam", category="报修", people=["agent-a", "agent-b"], note="本周复训")
    assert [(a["who"], a["status"], a["size"], a["note"]) for a in made] == [
        ("agent-a", "open", 3, "本周复训"),
        ("agent-b", "open", 3, "本周复训"),
    ]
    [mine] = _mine(env, env.a1)
    assert mine["who"] == "agent-a" and mine["category"] == "报修" and mine["assigned_by"] == "trainer-t"
    _pass(env, env.a1, env.start(env.a1, category="报修", exam=True), right=3)
    [mine] = _mine(env, env.a1)
    assert (mine["status"], mine["attempts"]) == ("done", 1) and mine["done_ts"] and mine["best_score"]
    [other] = _mine(env, env.a2)
    assert other["status"] == "open" and other["retired"] is False  # someone else's pass does nothing for agent-b
    # the exam withdrawn: the open task cannot be done any more, and says so (a re-check started it and failed)
    assert env.c.delete("/v1/practice/exams/报修", headers=auth(env.trainer)).status_code == 204
    assert [a["retired"] for a in _mine(env, env.a2)] == [True]
    env.c.put("/v1/practice/exams/报修", json={"pass_mark": 0.5, "size": 3}, headers=auth(env.trainer))
    assert [a["retired"] for a in _mine(env, env.a2)] == [False]
    assert [a["certified"] for a in made] == [False, False]
    # Assigning the exam again to someone certified asks for another pass: the trainer is told so
    [recheck] = _assign(env, kind="exam", category="报修", people=["agent-a"])
    assert recheck["certified"] is True and recheck["status"] == "open" and recheck["existed"] is False
    todo = env.c.get("/v1/practice/assignments", params={"status": "todo"}, headers=auth(env.trainer)).json()
    assert sorted(a["who"] for a in todo) == ["agent-a", "agent-b"]
    env.c.delete(f"/v1/practice/assignments/{recheck['assignment_id']}", headers=auth(env.trainer))
    # A second click with a later date extends the open task instead of adding one
    [again] = _assign(env, kind="exam", category="报修", people=["agent-b"], due_ts=DUE + 86400)
    assert again["existed"] is True and again["assignment_id"] == other["assignment_id"]
    assert [a["due_ts"] for a in _mine(env, env.a2)] == [DUE + 86400]
    # The report's people table and CSV say who still has tasks to do
    people = {p["name"]: p for p in env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()["people"]}
    assert (people["agent-a"]["assignments_open"], people["agent-b"]["assignments_open"]) == (0, 1)
    assert people["agent-b"]["assignments_overdue"] == 0
    rows = list(csv.reader(io.StringIO(env.c.get("/v1/practice/report.csv", headers=auth(env.trainer)).text[1:])))
    column = rows[0].index("未完成培训任务")
    assert {r[1]: r[column] for r in rows if r[0] == "人员"}["agent-b"] == "1"


def test_a_practice_assignment_is_a_round_on_its_sops_for_its_assignee_only(env: Env) -> None:
    chosen = ["repair-leak-ceiling", "repair-air-conditioner"]
    [task] = _assign(env, kind="practice", category="报修", sops=chosen, size=3, people=["agent-a"])
    assert [s["sop_id"] for s in task["sops"]] == chosen and all(s["title"] for s in task["sops"])  # type: ignore[attr-defined,index]
    refused = env.c.post("/v1/practice/sessions", json={"assignment_id": task["assignment_id"]}, headers=auth(env.a2))
    assert refused.status_code == 403
    round_ = env.start(env.a1, assignment_id=task["assignment_id"])
    assert len(round_["drills"]) == 3 and round_["exam"] is False and round_["category"] == "报修"
    assert {env.expected(d["drill_id"]) for d in round_["drills"]} <= set(chosen)
    assert _mine(env, env.a1)[0]["status"] == "open"  # started, not finished
    assert (round_["answered"], round_["resumed"]) == (0, False)
    _pass(env, env.a1, {**round_, "drills": round_["drills"][:1]}, right=1)
    # 开始练习 again continues the round where it stopped: no second round, no second attempt
    again = env.start(env.a1, assignment_id=task["assignment_id"])
    assert (again["session_id"], again["answered"], again["resumed"]) == (round_["session_id"], 1, True)
    assert _mine(env, env.a1)[0]["attempts"] == 1
    _pass(env, env.a1, {**round_, "drills": round_["drills"][1:]}, right=1)
    [done] = _mine(env, env.a1)
    assert done["status"] == "done" and done["attempts"] == 1 and done["best_score"] is not None
    # A round of the agent's own on the same SOPs is not the assignment's; withdrawn, the task is gone for the agent
    [later] = _assign(env, kind="practice", sops=chosen[:1], size=2, people=["agent-a"])
    _pass(env, env.a1, env.start(env.a1, category="报修"), right=4)
    assert next(a for a in _mine(env, env.a1) if a["assignment_id"] == later["assignment_id"])["status"] == "open"
    gone = env.c.delete(f"/v1/practice/assignments/{later['assignment_id']}", headers=auth(env.trainer))
    assert gone.status_code == 204
    assert [a["assignment_id"] for a in _mine(env, env.a1)] == [task["assignment_id"]]
    # ... and kept for the trainer, who can list what was withdrawn (an agent cannot)
    withdrawn = {"status": "withdrawn"}
    [kept] = env.c.get("/v1/practice/assignments", params=withdrawn, headers=auth(env.trainer)).json()
    assert kept["assignment_id"] == later["assignment_id"] and kept["status"] == "withdrawn" and kept["withdrawn_ts"]
    assert env.c.get("/v1/practice/assignments", params=withdrawn, headers=auth(env.a1)).status_code == 403
    again = env.c.post("/v1/practice/sessions", json={"assignment_id": later["assignment_id"]}, headers=auth(env.a1))
    assert again.status_code == 404


def test_a_round_left_at_a_second_stage_resumes_at_that_stage(env: Env) -> None:
    """A trial's agent took a call with a second stage on screen: 开始练习 again went on at the next drill, the
    stage was never asked again, and the task stayed 未完成 for good."""
    [task] = _assign(env, kind="practice", category="报修", size=3, people=["agent-a"])
    round_ = env.start(env.a1, assignment_id=task["assignment_id"])
    staged = None
    for d in round_["drills"]:  # answer until a drill with a second stage, and leave it there
        out = env.answer(env.a1, round_["session_id"], drill_id=d["drill_id"], sop_id=env.expected(d["drill_id"]))
        if out.json()["next"]:
            staged = (d, out.json()["next"])
            break
    assert staged is not None, "no drill of the round has a second stage"
    drill, stage = staged
    again = env.start(env.a1, assignment_id=task["assignment_id"])
    at = again["answered"]
    assert again["resumed"] and again["drills"][at]["drill_id"] == drill["drill_id"]
    assert again["drills"][at]["pending"] == stage  # the same stage, without its answer
    assert all(d["pending"] is None for d in again["drills"] if d["drill_id"] != drill["drill_id"])
    body = _stage_answer(env, drill["drill_id"], right=True)
    assert env.answer(env.a1, round_["session_id"], drill_id=drill["drill_id"], **body).status_code == 200
    rest = [d for d in again["drills"][at + 1 :]]
    _pass(env, env.a1, {**round_, "drills": rest}, right=len(rest))
    [done] = _mine(env, env.a1)
    assert done["status"] == "done"


def test_only_trainers_assign_and_agents_see_their_own(env: Env) -> None:
    body = {"kind": "practice", "people": ["agent-a"], "due_ts": DUE}
    assert env.c.post("/v1/practice/assignments", json=body, headers=auth(env.a1)).status_code == 403
    assert env.c.get("/v1/practice/assignees", headers=auth(env.a1)).status_code == 403
    _assign(env, kind="practice", people=["agent-a"])
    assert _mine(env, env.a2) == []
    peek = env.c.get("/v1/practice/assignments", params={"person": "agent-a"}, headers=auth(env.a2))
    assert peek.status_code == 403
    assert len(env.c.get("/v1/practice/assignments", params={"person": "agent-a"}, headers=auth(env.trainer)).json())
    assert env.c.delete("/v1/practice/assignments/nope", headers=auth(env.trainer)).status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"kind": "practice", "people": ["nobody"]}, "nobody"),
        ({"kind": "practice", "people": ["agent-a"], "due_ts": 1.0}, "截止时间"),
        ({"kind": "practice", "people": ["agent-a"], "category": "不存在"}, "没有分类"),
        ({"kind": "practice", "people": ["agent-a"], "sops": ["no-such-sop"]}, "no-such-sop"),
        ({"kind": "practice", "people": ["agent-a"], "category": "网络", "sops": ["repair-leak-ceiling"]}, "不属于"),
        ({"kind": "exam", "people": ["agent-a"]}, "已设置考试"),
        ({"kind": "practice", "people": []}, "people"),
    ],
)
def test_a_bad_assignment_gets_a_clear_422_and_creates_nothing(env: Env, body: dict[str, object], says: str) -> None:
    r = env.c.post("/v1/practice/assignments", json={"due_ts": DUE, **body}, headers=auth(env.trainer))
    assert r.status_code == 422 and says in r.text, r.text
    assert env.c.get("/v1/practice/assignments", headers=auth(env.trainer)).json() == []


def test_a_practice_task_on_sops_with_nothing_to_ask_is_refused(env: Env) -> None:
    """A re-check trial assigned a SOP without examples or FAQ: the agent's 开始练习 could never start it."""
    bare = "---\nid: repair-balcony-rack\ntitle: 升降晾衣架维修\ncategory: 报修\naudience: agent\n---\n"
    bare += "# 升降晾衣架维修\n\n## 处理步骤\n1. 问清是摇不动还是钢丝断了。\n2. 建维修工单。\n"
    put = env.c.put(
        "/v1/sops/repair-balcony-rack",
        content=bare.encode(),
        headers={**auth(env.trainer), "content-type": "text/markdown"},
    )
    assert put.status_code == 200, put.text
    body = {"kind": "practice", "sops": ["repair-balcony-rack"], "people": ["agent-a"], "due_ts": DUE}
    refused = env.c.post("/v1/practice/assignments", json=body, headers=auth(env.trainer))
    assert refused.status_code == 422 and "还没有练习问法" in refused.text
    body["sops"] = ["repair-balcony-rack", "repair-leak-ceiling"]  # one of them has utterances: the round can start
    assert env.c.post("/v1/practice/assignments", json=body, headers=auth(env.trainer)).status_code == 201


def test_a_practice_task_asking_more_questions_than_its_sops_hold_is_refused_with_the_most_it_can_ask(env: Env) -> None:
    """A re-check trial asked for 10 questions on one SOP and the round silently had fewer."""
    body = {"kind": "practice", "sops": ["repair-leak-ceiling"], "size": 20, "people": ["agent-a"], "due_ts": DUE}
    refused = env.c.post("/v1/practice/assignments", json=body, headers=auth(env.trainer))
    assert refused.status_code == 422 and "题数最多" in refused.text
    most = int(refused.json()["error"]["message"].split("题数最多 ")[1].split(" ")[0])
    assert 1 <= most < 20
    assert _assign(env, kind="practice", sops=["repair-leak-ceiling"], size=most, people=["agent-a"])[0]["size"] == most
    assert (
        _mine(env, env.a1)
        and not env.c.get("/v1/practice/assignments", params={"person": "agent-b"}, headers=auth(env.trainer)).json()
    )
