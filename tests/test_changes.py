"""Change acknowledgements through the API: a published change to steps, scripts, time limits or escalation becomes a
change card with a readable diff for every agent; a change marked minor, or one to other parts, does not; agents
acknowledge; trainers see who has and who has not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import KEYS, add_account, api_client, auth

SOP = "repair-drain-blocked"


class Env:
    def __init__(self, c: TestClient) -> None:
        self.c = c
        self.trainer = add_account(c, "林老师", "trainer")
        self.a1 = add_account(c, "agent-a", "agent")
        self.a2 = add_account(c, "agent-b", "agent")

    def publish(self, old: str, new: str, **params: Any) -> dict[str, Any]:
        src = self.c.get(f"/v1/sops/{SOP}/source", headers=auth(self.trainer)).json()
        assert old in src["content"]
        r = self.c.put(
            f"/v1/sops/{SOP}",
            content=src["content"].replace(old, new).encode(),
            params={"base_version": src["version"], "force": True, **params},
            headers={**auth(self.trainer), "content-type": "text/markdown"},
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def cards(self, key: str) -> list[dict[str, Any]]:
        r = self.c.get("/v1/changes", headers=auth(key))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def env(tmp_path: Path, sops_copy: Path) -> Iterator[Env]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield Env(c)


def test_a_change_to_steps_and_time_limits_becomes_a_card_with_a_readable_diff(env: Env) -> None:
    assert env.cards(env.a1) == []
    published = env.publish("接报后 5 分钟内建单。", "接报后 3 分钟内建单。")
    [card] = env.cards(env.a1)
    assert card["change_id"] == f"{SOP}-v{published['version']}" and card["sop_id"] == SOP
    assert card["version"] == published["version"] and card["author"] == "林老师"
    [part] = card["parts"]
    assert part["part"] == "time_limit" and part["label"] == "时限要求"
    assert {"op": "-", "text": "接报后 5 分钟内建单。"} in part["lines"]
    assert {"op": "+", "text": "接报后 3 分钟内建单。"} in part["lines"]
    env.publish("必要时关闭马桶角阀", "必要时关闭马桶角阀和总阀")
    cards = env.cards(env.a1)
    assert [c["parts"][0]["part"] for c in cards] == ["steps", "time_limit"]  # newest first


def test_minor_changes_and_other_parts_make_no_card(env: Env) -> None:
    env.publish("接报后 5 分钟内建单。", "接报后5分钟内建单。", minor=True)
    env.publish("不建议租客倒强酸", "不建议租客自行倒强酸")  # 注意事项: not a part agents act on
    assert env.cards(env.a1) == []


def test_agents_acknowledge_and_trainers_see_who_has_not(env: Env) -> None:
    env.publish("升级值班主管（8800）", "升级值班主管（8800）并抄送店长")
    [card] = env.cards(env.a1)
    ack = env.c.post(f"/v1/changes/{card['change_id']}/ack", json={}, headers=auth(env.a1))
    assert ack.status_code == 200 and ack.json()["change_id"] == card["change_id"]
    first = ack.json()["acknowledged_ts"]
    again = env.c.post(f"/v1/changes/{card['change_id']}/ack", json={}, headers=auth(env.a1)).json()
    assert again["acknowledged_ts"] == first
    assert env.cards(env.a1) == [] and len(env.cards(env.a2)) == 1
    assert env.c.get("/v1/changes/status", headers=auth(env.a1)).status_code == 403
    [status] = env.c.get("/v1/changes/status", headers=auth(env.trainer)).json()
    assert [a["name"] for a in status["acknowledged"]] == ["agent-a"]
    assert status["pending"] == ["agent-b"]
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    people = {p["name"]: p["unacknowledged_changes"] for p in report["people"]}
    assert people["agent-a"] == 0 and people["agent-b"] == 1


def test_bad_input_gets_a_clear_4xx(env: Env) -> None:
    assert env.c.post(f"/v1/changes/{SOP}-v99/ack", json={}, headers=auth(env.a1)).status_code == 404
    assert env.c.post("/v1/changes/NOT VALID/ack", json={}, headers=auth(env.a1)).status_code in (404, 422)
    assert env.c.get("/v1/changes").status_code == 401  # tenants have no change cards
