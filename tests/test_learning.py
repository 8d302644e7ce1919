"""Learning from use, through the API of a live `kb serve` with two worker processes and the real model: a 👍 teaches
agent search a phrasing (and similar ones) within seconds in every worker; tenants' votes teach nothing; a 👎 or a
trainer removes a pair; staff-only SOPs stay out of public search and chat; pairs survive a restart, a SOP edit and a
re-ingest, and are dropped with their SOP; opens and copies count after repetition; trainers list, remove and
promote learned phrasings; bad input gets a clear 4xx."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ingest.learning import add_example
from ingest.publishing import with_version
from kb_service.store import files
from tests.helpers import ROOT, SOPS, connections_per_worker, free_port, healthy, wait_for, workers_of

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads connections from Linux /proc")
AGENT, TRAINER = "agent-key-learn-1", "trainer-key-learn-1"
COLLEAGUE = "agent-key-learn-2"  # another agent's key
SECONDS = 5.0  # "within a few seconds": each process polls the change counter every second


class Api:
    """One keep-alive connection (so one worker process) to the service."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: object = None, key: str | None = AGENT) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None

    def search(self, query: str, key: str | None = AGENT, **extra: object) -> dict[str, Any]:
        status, body = self.call("POST", "/v1/search", {"query": query, "top_k": 10, **extra}, key)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def top(self, query: str, key: str | None = AGENT, **extra: object) -> list[str]:
        return [h["sop_id"] for h in self.search(query, key, **extra)["results"]]

    def vote(self, query_id: int, sop_id: str, vote: int, key: str | None = AGENT) -> tuple[int, Any]:
        return self.call("POST", "/v1/feedback", {"query_id": query_id, "sop_id": sop_id, "vote": vote}, key)

    def teach(self, query: str, sop_id: str, vote: int = 1, key: str | None = AGENT) -> dict[str, Any]:
        status, body = self.vote(self.search(query, key)["query_id"], sop_id, vote, key)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


class Live:
    """`kb serve --workers 2` over a private copy of the indexed sample corpus; can be restarted on the same data."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {
            **os.environ,
            "KB_DATA_DIR": str(work / "data"),
            "KB_SOPS_DIR": str(work / "sops"),
            "KB_API_KEYS": f"agent:{AGENT},agent:{COLLEAGUE},trainer:{TRAINER}",
            "KB_CHAT_RATE_LIMIT": "1000",
        }
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conns: list[Api] = []

    def start(self) -> None:
        with (self.work / "serve.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port), "--workers", "2"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = wait_for(lambda: len(workers_of(self.pid)) == 2 and healthy(self.port), 300)
        assert started, self.output()
        assert wait_for(lambda: self._both_healthy(), 120), self.output()

    def _both_healthy(self) -> bool:
        """Two connections held at once land on the two workers; both answer 200."""
        a, b = self.api(), self.api()
        try:
            return all(c.call("GET", "/healthz")[0] == 200 for c in (a, b))
        finally:
            a.close()
            b.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        for c in self.conns:
            c.close()
        self.conns.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

    def api(self) -> Api:
        c = Api(self.port)
        self.conns.append(c)
        return c

    def two_workers(self) -> tuple[Api, Api]:
        """Two connections served by different worker processes: new connections go to the worker holding fewer,
        so a few are opened (and kept) until one lands on each."""
        held: dict[int, Api] = {}
        deadline = time.time() + 120  # a worker gets connections once its health check passes (slow on a busy machine)
        while time.time() < deadline:
            before = connections_per_worker(self.pid, self.port)
            c = self.api()
            assert c.call("GET", "/healthz")[0] == 200
            after = connections_per_worker(self.pid, self.port)
            worker = next((w for w in after if after[w] > before.get(w, 0)), None)
            if worker is not None:
                held.setdefault(worker, c)
            if len(held) == 2:
                a, b = held.values()
                return a, b
            time.sleep(0.5)
        raise AssertionError(f"no connection reached both workers: {connections_per_worker(self.pid, self.port)}")

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.work / "data" / "service.sqlite3")

    def output(self) -> str:
        return (self.work / "serve.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def live(use_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("learning")
    files.copy_tree(use_data, work / "data", ignore=shutil.ignore_patterns("*.lock", "service.sqlite3*"))
    shutil.copytree(SOPS, work / "sops")
    svc = Live(work)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def until(check: Callable[[], bool], seconds: float = SECONDS) -> float:
    """Seconds until `check()` holds; fails after `seconds`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.1)
    return time.monotonic() - started


# -- a 👍 teaches every worker, and similar phrasings benefit ---------------------------------------------------------
# A tenant's barking dog: the search puts the noise procedure first, agents pick the pet complaint procedure.
TAUGHT, SIMILAR, TARGET = "对门邻居家的猫晚上老是嚎", "对门邻居家的猫半夜老是嚎", "pet-complaint"


def test_a_vote_in_one_worker_teaches_the_phrasing_and_similar_ones_in_the_other_within_seconds(live: Live) -> None:
    voter, searcher = live.two_workers()
    assert searcher.top(TAUGHT)[0] != TARGET and searcher.top(SIMILAR)[0] != TARGET  # not already first
    body = voter.teach(TAUGHT, TARGET)
    assert body["learned"] == "learned"
    took = until(lambda: searcher.top(TAUGHT)[0] == TARGET)
    assert took < SECONDS
    assert searcher.top(SIMILAR)[0] == TARGET  # not the same text: similar phrasings benefit too
    # The hit test shows that the learned channel decided the ranking, with the phrasing and its similarity.
    hit = searcher.search(SIMILAR, key=TRAINER, explain=True)["results"][0]
    learned = hit["explain"]["learned"]
    assert learned["phrasing"] == TAUGHT and learned["decided_top"] is True
    assert 0.8 <= learned["similarity"] < 1 and learned["exact"] is False
    exact = searcher.search(TAUGHT + "！", key=TRAINER, explain=True)["results"][0]["explain"]["learned"]
    assert exact["exact"] is True and exact["similarity"] == 1.0
    # Words an agent confirmed are no weak match (a trial's 👍 put the SOP first under 「匹配较弱」)
    taught = searcher.search(TAUGHT)
    assert taught["learned_first"] is True and taught["weak"] is False
    assert searcher.search("对门邻居家的狗一直叫")["learned_first"] is False


def test_unrelated_queries_are_not_lifted_by_a_learned_phrasing(live: Live) -> None:
    api = live.api()
    api.teach("阳台晾衣架的绳子断了", "repair-door-window")
    time.sleep(2 * 1.0 + 0.5)
    assert api.top("地下车库我的车位被别人停了")[0] == "parking"
    assert api.top("半夜楼下有人一直唱歌")[0] == "noise-complaint"


# -- who may teach -----------------------------------------------------------------------------------------------
def test_a_learned_phrasing_never_takes_another_sop_above_an_emergency_procedure(live: Live) -> None:
    """A security review: one agent's 👍 for the pet policy on 闻到煤气味怎么办 put it above the gas-leak procedure for
    every agent. The lift now stops just below an emergency procedure the channels put first."""
    api = live.api()
    query = "闻到煤气味了怎么办啊"
    assert api.top(query)[0] == "emergency-gas-leak"
    taught = api.teach(query, "pet-policy")
    # and the agent is told so (a trial's 👍 said the SOP would come first for these words)
    assert taught["learned"] == "learned" and taught["behind_emergency"] is True
    until(lambda: "pet-policy" in api.top(query)[:2])  # the lift is there, in every worker
    assert api.top(query)[0] == "emergency-gas-leak"
    assert api.teach(query, "pet-policy", vote=-1)  # and goes with a 👎
    # Words without a danger signal are taught as any others, even where an emergency procedure came first
    calm = "楼道里总有一股怪味"
    assert api.top(calm)[0] == "emergency-gas-leak"
    assert api.teach(calm, "neighbor-dispute")["behind_emergency"] is False
    until(lambda: api.top(calm)[0] == "neighbor-dispute")
    # an emergency procedure taught for danger words is first itself
    assert api.teach("煤气味特别重头有点晕", "emergency-gas-leak")["behind_emergency"] is False


def test_staff_teach_the_words_of_their_own_searches_only(live: Live) -> None:
    """A trainer's trial: an agent's 👍 on a colleague's search (its query id) taught a SOP the colleague's words."""
    api = live.api()
    words, sop = "厕所下水道咕噜咕噜往上冒泡", "repair-drain-blocked"
    theirs = api.search(words)["query_id"]
    for key in (COLLEAGUE, TRAINER):
        status, body = api.vote(theirs, sop, 1, key=key)
        assert status == 403 and "自己的检索" in json.dumps(body, ensure_ascii=False), body
        body = {"query_id": theirs, "sop_id": sop, "type": "copy"}
        assert api.call("POST", "/v1/events", body, key=key)[0] == 403
    assert not [p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == words]
    assert api.vote(theirs, sop, 1)[1]["learned"] == "learned"  # the asker's own 👍
    mine = api.search(words, key=COLLEAGUE)["query_id"]
    assert api.vote(mine, sop, 1, key=COLLEAGUE)[1]["learned"] == "confirmed"  # a colleague's own search of them


def test_a_tenants_vote_never_changes_agent_search(live: Live) -> None:
    api = live.api()
    query = "半夜楼下有人一直唱歌"
    before = api.top(query)
    public = api.search(query, key=None)  # no key: a tenant, public content only
    status, body = api.vote(public["query_id"], "community-rules", 1, key=None)
    assert status == 200 and body["learned"] is None
    time.sleep(2.5)
    assert api.top(query) == before
    assert api.call("GET", "/v1/sops/community-rules/learned", key=TRAINER)[1] == []
    # Nor may a tenant vote on a staff search.
    status, body = api.vote(api.search(query)["query_id"], "community-rules", 1, key=None)
    assert status == 403 and "租客" in body["error"]["message"]
    # A tenant's words teach nothing through staff either: a trial's agent 👍'd a tenant's search by its query_id, and
    # opened a SOP after it (events); both taught agent search the tenant's phrasing
    assert api.vote(public["query_id"], "community-rules", 1)[1]["learned"] is None
    for _ in range(3):
        status, body = api.call(
            "POST", "/v1/events", {"query_id": public["query_id"], "sop_id": "community-rules", "type": "open"}
        )
        assert status == 200 and body["learned"] is None, body
    assert api.call("GET", "/v1/sops/community-rules/learned", key=TRAINER)[1] == []


def test_a_thumbs_down_removes_the_learned_pair(live: Live) -> None:
    a, b = live.two_workers()
    query = "空调外机在滴水滴到楼下"
    assert b.top(query)[0] == "repair-air-conditioner"
    assert a.teach(query, "repair-leak-ceiling")["learned"] == "learned"
    until(lambda: b.top(query)[0] == "repair-leak-ceiling")
    assert a.teach(query + "！", "repair-leak-ceiling", vote=-1)["learned"] == "rejected"  # the same phrasing
    until(lambda: b.top(query)[0] == "repair-air-conditioner")
    pairs = a.call("GET", "/v1/sops/repair-leak-ceiling/learned", key=TRAINER)[1]
    assert all(p["phrasing"] != query for p in pairs)


def test_a_learned_staff_only_sop_never_reaches_public_search_or_chat(live: Live) -> None:
    api = live.api()
    query, staff_only = "家里有股臭味不知道哪来的", "neighbor-dispute"
    sop = api.call("GET", f"/v1/sops/{staff_only}")[1]
    assert sop["meta"]["audience"] == "agent"
    api.teach(query, staff_only)
    until(lambda: api.top(query)[0] == staff_only)
    for q in (query, query + "？"):
        assert staff_only not in api.top(q, key=None)  # tenant search
        assert staff_only not in api.top(q, key=AGENT, audience="public")  # staff searching the public view
        status, answer = api.call("POST", "/v1/chat", {"question": q}, key=None)
        assert status == 200 and staff_only not in json.dumps(answer, ensure_ascii=False)
    # A tenant cannot learn of it through feedback either.
    status, _ = api.vote(api.search(query, key=None)["query_id"], staff_only, 1, key=None)
    assert status == 404


def test_what_agents_taught_never_decides_a_tenants_answer_or_hand_over(live: Live) -> None:
    """A security review: one agent's 👍 for a staff-only SOP on 房租可以分期吗 made the chat hand the tenant over (with
    that SOP's hand-over questions) instead of giving the public answer it gave before."""
    api = live.api()
    question, staff_only = "房租可以分期吗", "lease-early-termination"  # staff-only, with hand-over questions
    before = api.call("POST", "/v1/chat", {"question": question}, key=None)[1]
    assert before["handoff"] is False and before["sources"]
    api.teach(question, staff_only)
    until(lambda: api.top(question)[0] == staff_only)
    after = api.call("POST", "/v1/chat", {"question": question}, key=None)[1]
    kept = ("answer", "handoff", "sources", "priority", "handover_fields")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}


# -- opens and copies ----------------------------------------------------------------------------------------------
def test_opens_and_copies_teach_after_repetition_from_two_searches(live: Live) -> None:
    api = live.api()
    query, sop = "门口的快递被人拿走了", "access-visitor"
    assert api.top(query)[0] != sop

    def event(query_id: int, kind: str) -> dict[str, Any]:
        status, body = api.call("POST", "/v1/events", {"query_id": query_id, "sop_id": sop, "type": kind})
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    first = api.search(query)["query_id"]
    assert event(first, "open")["learned"] is None
    assert event(first, "copy")["learned"] is None
    assert event(first, "copy")["learned"] is None  # three events, but from one search only
    second = api.search(query)["query_id"]  # a second search with the same phrasing
    body = event(second, "open")
    assert body["learned"] == "learned" and body["similar_events"] == 4 and body["similar_searches"] == 2
    until(lambda: api.top(query)[0] == sop)
    pair = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == query)
    assert pair["source"] == "events"


def test_opens_and_copies_never_teach_again_what_a_trainer_removed_nor_a_variant_of_it(live: Live) -> None:
    """A trial: a trainer deleted 晾衣架坏了降不下来 (taught by opens); agents' opens of 晾衣架坏了降不下来了, counting
    the opens from before the delete too, taught it back within a minute. Only a new 👍 teaches it again."""
    api = live.api()
    query, variant, sop = "晾衣架坏了降不下来", "晾衣架坏了降不下来了", "repair-wall-mold"  # no other test teaches it

    def opened(text: str) -> dict[str, Any]:
        status, body = api.call(
            "POST", "/v1/events", {"query_id": api.search(text)["query_id"], "sop_id": sop, "type": "open"}
        )
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    opened(query)
    opened(variant)
    assert opened(query)["learned"] == "learned"
    pair = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == query)
    assert api.call("DELETE", f"/v1/learned/{pair['id']}", key=TRAINER)[0] == 200
    for text in (variant, query, variant, "晾衣架坏了降不下来啊"):
        assert opened(text)["learned"] in (None, "rejected")
    assert not api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1]
    assert api.teach(variant, sop)["learned"] == "learned"  # an agent's 👍 still does


def test_a_search_left_for_other_words_learns_from_what_was_used_after_it(live: Live) -> None:
    """A training manager's trial: a confident wrong first result taught nothing. When the agent leaves a search
    unused and asks again in other words, what they open or copy then counts for the first words too (the console
    sends `previous_query_id`); a search being typed, an old one, or one that had that SOP first already do not."""
    api = live.api()
    missed, found, sop = "卫生间那个排风的扇子不转了", "开关按了没反应", "repair-electric-lighting"
    assert api.top(missed)[0] != sop

    def used(after: int, before: int | None, kind: str = "copy", target: str = sop) -> dict[str, Any]:
        body: dict[str, Any] = {"query_id": after, "sop_id": target, "type": kind}
        if before is not None:
            body["previous_query_id"] = before
        status, out = api.call("POST", "/v1/events", body)
        assert status == 200, out
        return out  # type: ignore[no-any-return]

    def events_of(query_id: int) -> int:
        with live.db() as db:
            return int(db.execute("SELECT COUNT(*) FROM events WHERE query_id = ?", (query_id,)).fetchone()[0])

    first = api.search(missed)["query_id"]
    typed = api.search("卫生")["query_id"]  # being typed: 卫生 → 卫生间那个… is one search
    used(first, typed)
    assert events_of(typed) == 0
    used(api.search(found)["query_id"], 999_999_999)  # an unknown previous search: the event itself stands
    first_had_it = api.search(found)["query_id"]
    used(api.search("灯不亮")["query_id"], first_had_it, target=api.top(found)[0])
    assert events_of(first_had_it) == 0  # its own first result: nothing missed
    old = api.search(missed)["query_id"]

    def aged() -> bool:  # once the worker has written the search to the log
        with live.db() as db:
            return db.execute("UPDATE queries SET ts = ts - 200 WHERE id = ?", (old,)).rowcount == 1

    until(aged)
    used(api.search(found)["query_id"], old)
    assert events_of(old) == 0  # three minutes before: another need, perhaps another call
    # Left for other words three times, from two searches of these words: learned, first from then on
    second = api.search(missed)["query_id"]
    for before in (first, second, second):
        used(api.search(found)["query_id"], before, kind="open")
    assert events_of(first) >= 1 and events_of(second) == 2
    until(lambda: api.top(missed)[0] == sop)
    pair = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == missed)
    assert pair["source"] == "events"


# -- trainers ------------------------------------------------------------------------------------------------------
def test_trainers_see_who_taught_what_and_how_often_with_personal_data_masked(live: Live) -> None:
    api = live.api()
    sop = "repair-no-hot-water"
    api.teach("我电话13912345678，热水器打不着火了", sop)
    api.teach("热水器打不着火", sop)
    api.teach("热水器打不着火。", sop)  # the same phrasing from another search: a confirmation
    status, pairs = api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)
    assert status == 200
    by_text = {p["phrasing"]: p for p in pairs}
    assert "我电话[手机号]，热水器打不着火了" in by_text and not any("13912345678" in p for p in by_text)
    # one agent's two searches on one day confirm it once (a trial: five searches of one agent boosted like five people)
    assert by_text["热水器打不着火"]["confirmations"] == 1 and pairs[0]["phrasing"] == "热水器打不着火"
    # placeholders are never offered as a document's example (a trial was offered 「我是[房号]的[姓名]…」)
    assert by_text["热水器打不着火"]["promotable"] and not by_text["我电话[手机号]，热水器打不着火了"]["promotable"]
    # who confirmed it, each person once: two searches of one agent are one person (a trial read 确认 5 次 as five)
    assert by_text["热水器打不着火"]["confirmed_by"] == [by_text["热水器打不着火"]["who"]]
    api.teach("热水器打不着火", sop, key=TRAINER)
    again = next(
        p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == "热水器打不着火"
    )
    assert (
        again["confirmations"] == 2
        and len(again["confirmed_by"]) == 2
        and again["confirmed_by"][1].startswith("trainer:")
    )
    assert by_text["热水器打不着火"]["who"].startswith("agent:") and AGENT not in json.dumps(pairs)
    assert by_text["热水器打不着火"]["created_ts"] > time.time() - 120
    assert api.call("GET", f"/v1/sops/{sop}/learned", key=AGENT)[0] == 403


def test_trainers_see_what_was_learned_for_every_sop_most_recent_first(live: Live) -> None:
    """A trainer's trial: learned phrasings showed only SOP by SOP, so what agents taught this week took opening
    every document."""
    api = live.api()
    first, second = "楼下垃圾房蟑螂成群了", "我电话13812345678，屋里好多小飞虫"
    api.teach(first, "pest-control")
    api.teach(second, "cleaning-service", key=COLLEAGUE)
    status, page = api.call("GET", "/v1/learned?days=1&limit=2", key=TRAINER)
    assert status == 200
    top = page["items"]
    assert [p["phrasing"] for p in top] == ["我电话[手机号]，屋里好多小飞虫", first]  # the newest first, masked
    assert [p["sop_id"] for p in top] == ["cleaning-service", "pest-control"]
    assert top[1]["title"] == api.call("GET", "/v1/sops/pest-control", key=TRAINER)[1]["title"]
    assert top[0]["who"] != top[1]["who"] and not top[0]["promotable"] and top[1]["promotable"]
    assert page["total"] >= 2
    status, rest = api.call("GET", "/v1/learned?days=1&limit=1&offset=1", key=TRAINER)
    assert status == 200 and [p["id"] for p in rest["items"]] == [top[1]["id"]] and rest["total"] == page["total"]
    # removed pairs are not listed; agents may not read what colleagues taught
    assert api.call("DELETE", f"/v1/learned/{top[1]['id']}", key=TRAINER)[0] == 200
    after = api.call("GET", "/v1/learned?days=1", key=TRAINER)[1]
    assert top[1]["id"] not in {p["id"] for p in after["items"]} and after["total"] == page["total"] - 1
    assert api.call("GET", "/v1/learned", key=AGENT)[0] == 403
    assert api.call("GET", "/v1/learned?limit=0", key=TRAINER)[0] == 422


def test_a_trainer_removes_a_pair(live: Live) -> None:
    api = live.api()
    query, sop = "冰箱门关不严老是漏冷气", "repair-door-window"
    assert api.top(query)[0] != sop
    api.teach(query, sop)
    until(lambda: api.top(query)[0] == sop)
    pair = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == query)
    assert api.call("DELETE", f"/v1/learned/{pair['id']}", key=AGENT)[0] == 403
    assert api.call("DELETE", f"/v1/learned/{pair['id']}", key=TRAINER) == (200, {"id": pair["id"], "removed": True})
    until(lambda: api.top(query)[0] != sop)
    assert api.call("DELETE", f"/v1/learned/{pair['id']}", key=TRAINER)[0] == 404


def test_a_trainer_promotes_a_phrasing_to_the_sops_examples(live: Live) -> None:
    api = live.api()
    query, sop = "空调开了半天屋里还是热的", "repair-air-conditioner"
    api.teach(query, sop)
    pair = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == query)
    before = api.call("GET", f"/v1/sops/{sop}/source", key=TRAINER)[1]
    assert api.call("POST", f"/v1/learned/{pair['id']}/promote", key=AGENT)[0] == 403
    status, result = api.call("POST", f"/v1/learned/{pair['id']}/promote", {}, key=TRAINER)
    assert status == 200, result
    assert result["version"] == before["version"] + 1 and result["action"] == "publish"
    after = api.call("GET", f"/v1/sops/{sop}/source", key=TRAINER)[1]
    assert query in api.call("GET", f"/v1/sops/{sop}", key=AGENT)[1]["meta"]["examples"]
    assert after["content"] == with_version(add_example(before["content"], query), result["version"], date.today())
    promoted = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["id"] == pair["id"])
    assert promoted["promoted_version"] == result["version"]
    status, body = api.call("POST", f"/v1/learned/{pair['id']}/promote", {}, key=TRAINER)
    assert status == 409 and "示例" in body["error"]["message"]
    # A phrasing learned from a search that held personal data keeps only placeholders: never a document's example
    # (a trial's 「我叫[姓名]，身份证[身份证号]…」 was offered 加入示例问法)
    masked = "我叫王小明，身份证110101199003074512，空调不制冷"
    api.teach(masked, sop)
    learned = api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1]
    held = next(p for p in learned if "[" in p["phrasing"] and "空调不制冷" in p["phrasing"])
    assert "王小明" not in held["phrasing"] and "110101" not in held["phrasing"]
    status, body = api.call("POST", f"/v1/learned/{held['id']}/promote", {}, key=TRAINER)
    assert status == 422 and "个人信息" in body["error"]["message"]


def test_a_phrasing_search_missed_is_promoted_without_forcing_the_example_check(live: Live) -> None:
    """A trial: promoting 阳台晾衣服那个杆子摇不下来了, which an agent had to point to the tenants' repair guide, was
    refused (422 "修改后以下示例查询找不到本 SOP") although the example itself then found it: the check reads the
    SOP's content alone, and search missing it by its content is why the agent pointed. Its other examples are still
    checked."""
    api = live.api()
    query, sop = "阳台晾衣服那个杆子摇不下来了", "repair-request-guide"
    assert sop not in api.top(query)[:3]
    api.teach(query, sop)
    pair = next(p for p in api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[1] if p["phrasing"] == query)
    status, result = api.call("POST", f"/v1/learned/{pair['id']}/promote", {}, key=TRAINER)
    assert status == 200, result
    assert query in api.call("GET", f"/v1/sops/{sop}", key=AGENT)[1]["meta"]["examples"]
    assert result["examples_checked"] == len(api.call("GET", f"/v1/sops/{sop}", key=AGENT)[1]["meta"]["examples"]) - 1


# -- lifetime ------------------------------------------------------------------------------------------------------
def test_pairs_are_dropped_when_their_sop_is_deleted(live: Live) -> None:
    api = live.api()
    sop = "repair-appliance"
    api.teach("洗衣机甩干的时候整个机器在跳舞", sop)
    with live.db() as db:
        assert db.execute("SELECT COUNT(*) FROM learned WHERE sop_id = ?", (sop,)).fetchone()[0] == 1
    status, _ = api.call("DELETE", f"/v1/sops/{sop}", key=TRAINER)
    assert status == 200

    def dropped() -> bool:
        with live.db() as db:
            return int(db.execute("SELECT COUNT(*) FROM learned WHERE sop_id = ?", (sop,)).fetchone()[0]) == 0

    until(dropped)
    assert api.call("GET", f"/v1/sops/{sop}/learned", key=TRAINER)[0] == 404


def test_pairs_of_a_sop_missing_only_from_the_index_are_kept_until_it_is_back(live: Live) -> None:
    """Only a deletion the version history records drops pairs: a SOP missing from one index (a file moved away by
    hand and re-ingested; a replica started before its `kb ingest`) keeps them, unused, for when it is back. An
    operator's trial lost the learned phrasings of a SOP every other replica still served that way."""
    api = live.api()
    query, sop = "家里的wifi那个盒子灯一直闪红的", "network-wifi"
    api.teach(query, sop)
    until(lambda: api.top(query)[0] == sop)
    path = next((live.work / "sops").rglob(f"{sop}.md"))
    aside = live.work / f"{sop}.md"
    path.rename(aside)

    def ingest() -> None:
        generation = api.call("GET", "/healthz")[1]["generation"]
        subprocess.run([sys.executable, "-m", "cli.main", "ingest"], cwd=ROOT, env=live.env, check=True, timeout=600)
        until(lambda: live.api().call("GET", "/healthz")[1]["generation"] != generation, 10)

    ingest()
    api = live.api()
    until(lambda: api.top(query)[0] != sop)  # gone from the index, so from the results
    time.sleep(3)  # the workers' checks of published SOPs (every poll) have run on the new generation
    with live.db() as db:
        assert db.execute("SELECT COUNT(*) FROM learned WHERE sop_id = ?", (sop,)).fetchone()[0] == 1
    aside.rename(path)
    ingest()
    api = live.api()
    until(lambda: api.top(query)[0] == sop)


def test_pairs_survive_a_sop_edit_a_reingest_and_a_restart(live: Live) -> None:
    api = live.api()
    query, sop = "楼上那个能打球的地方怎么预约", "community-activities"
    assert api.top(query)[0] != sop
    api.teach(query, sop)
    until(lambda: api.top(query)[0] == sop)
    # The SOP's file is edited and the folder re-ingested (a new index generation) while the service runs.
    path = live.work / "sops" / "community" / f"{sop}.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n- 编辑后补充的一句说明。\n", encoding="utf-8")
    generation = api.call("GET", "/healthz")[1]["generation"]
    subprocess.run([sys.executable, "-m", "cli.main", "ingest"], cwd=ROOT, env=live.env, check=True, timeout=600)
    api = live.api()  # the old connection idled past the server's keep-alive timeout
    until(lambda: api.call("GET", "/healthz")[1]["generation"] != generation, 10)
    assert api.top(query)[0] == sop
    live.stop()
    live.start()
    api = live.api()
    assert api.top(query)[0] == sop
    assert api.top(TAUGHT)[0] == TARGET


# -- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "key", "status", "needle"),
    [
        ("/v1/feedback", {"query_id": 999_999_999, "sop_id": "parking", "vote": 1}, AGENT, 404, "query_id"),
        ("/v1/feedback", {"query_id": 1, "sop_id": "no-such-sop", "vote": 1}, AGENT, 404, "SOP"),
        ("/v1/feedback", {"query_id": 1, "sop_id": "parking", "vote": 2}, AGENT, 422, "vote"),
        ("/v1/events", {"query_id": 999_999_999, "sop_id": "parking", "type": "open"}, AGENT, 404, "query_id"),
        ("/v1/events", {"query_id": 1, "sop_id": "no-such-sop", "type": "open"}, AGENT, 404, "SOP"),
        ("/v1/events", {"query_id": 1, "sop_id": "parking", "type": "print"}, AGENT, 422, "type"),
        ("/v1/events", {"query_id": 1, "sop_id": "parking", "type": "open", "x": 1}, AGENT, 422, "不支持的字段"),
        ("/v1/events", {"query_id": 1, "sop_id": "parking", "type": "open"}, None, 401, "API 密钥"),
        ("/v1/learned/999999/promote", {}, TRAINER, 404, "999999"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    live: Live, path: str, body: object, key: str | None, status: int, needle: str
) -> None:
    api = live.api()
    got, answer = api.call("POST", path, body, key)
    assert got == status, answer
    assert needle in answer["error"]["message"] and " / " in answer["error"]["message"]


def test_events_refer_to_searches_not_chats(live: Live) -> None:
    api = live.api()
    status, answer = api.call("POST", "/v1/chat", {"question": "停车月卡怎么办"}, key=None)
    assert status == 200
    status, body = api.call("POST", "/v1/events", {"query_id": answer["query_id"], "sop_id": "parking", "type": "open"})
    assert status == 422 and "聊天" in body["error"]["message"]
    # An agent's 👍 on a chat answer is feedback, never a lesson.
    status, body = api.vote(answer["query_id"], "parking", 1)
    assert status == 200 and body["learned"] is None


# -- promoting edits the front matter, nothing else ----------------------------------------------------------------
FRONT = "---\nid: x\ntitle: 标题\n{examples}category: 报修\n---\n# 标题\n\nexamples: 不是文件头\n"


@pytest.mark.parametrize(
    ("examples", "expected"),
    [
        ("", "category: 报修\nexamples:\n  - 新问法\n---"),
        ("examples:\n  - 旧问法\n", "examples:\n  - 旧问法\n  - 新问法\ncategory"),
        ("examples:\n    - 旧问法\n      续行\n", "examples:\n    - 旧问法\n      续行\n    - 新问法\ncategory"),
        ("examples: [甲, 乙]\n", "examples:\n  - 甲\n  - 乙\n  - 新问法\ncategory"),
    ],
)
def test_add_example_appends_to_the_front_matter_list(examples: str, expected: str) -> None:
    out = add_example(FRONT.format(examples=examples), "新问法")
    assert expected in out and out.endswith("examples: 不是文件头\n")


def test_add_example_quotes_what_yaml_would_misread() -> None:
    out = add_example(FRONT.format(examples=""), "押金: 什么时候退 #急")
    assert '  - "押金: 什么时候退 #急"' in out
