"""Change acknowledgements through the API: a published change to steps, scripts, time limits or escalation becomes a
change card with a readable diff for every agent; a change marked minor, or one to other parts, does not; agents
acknowledge; trainers see who has and who has not."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kb_service.accounts.store import AccountError
from kb_service.db.versions import VersionRecord
from tests.helpers import AGENT, KEYS, add_account, api_client, auth

SOP = "repair-drain-blocked"


class Env:
    def __init__(self, c: TestClient) -> None:
        self.c = c
        self.trainer = add_account(c, "林老师", "trainer")
        self.a1 = add_account(c, "agent-a", "agent")
        self.a2 = add_account(c, "agent-b", "agent")

    def publish(self, old: str, new: str, sop: str = SOP, **params: Any) -> dict[str, Any]:
        src = self.c.get(f"/v1/sops/{sop}/source", headers=auth(self.trainer)).json()
        assert old in src["content"]
        r = self.c.put(
            f"/v1/sops/{sop}",
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
    assert {"op": "-", "text": "接报后 5 分钟内建单。", "superseded_by": None, "moved": None} in part["lines"]
    assert {"op": "+", "text": "接报后 3 分钟内建单。", "superseded_by": None, "moved": None} in part["lines"]
    env.publish("必要时关闭马桶角阀", "必要时关闭马桶角阀和总阀")
    cards = env.cards(env.a1)
    # one SOP's changes in the order they were made (a trial read a rollback's correction above what it corrects)
    assert [c["parts"][0]["part"] for c in cards] == ["time_limit", "steps"]
    env.publish("之后5元/小时", "之后6元/小时", sop="parking")  # the SOP changed last comes first
    latest = env.cards(env.a1)
    assert latest[0]["sop_id"] == "parking"
    assert [(c["sop_id"], c["version"]) for c in latest[1:]] == [(c["sop_id"], c["version"]) for c in cards]


def test_a_line_a_later_version_changed_again_is_marked_on_the_older_card(env: Env) -> None:
    env.publish("接报后 5 分钟内建单。", "接报后 3 分钟内建单。")
    second = env.publish("接报后 3 分钟内建单。", "接报后 4 分钟内建单。")
    older, newer = sorted(env.cards(env.a1), key=lambda c: c["version"])
    added = next(line for line in older["parts"][0]["lines"] if line["op"] == "+")
    assert added["text"] == "接报后 3 分钟内建单。" and added["superseded_by"] == second["version"]
    assert all(line.get("superseded_by") is None for line in newer["parts"][0]["lines"])


def test_minor_changes_and_other_parts_make_no_card(env: Env) -> None:
    env.publish("接报后 5 分钟内建单。", "接报后5分钟内建单。", minor=True)
    env.publish("不建议租客倒强酸", "不建议租客自行倒强酸")  # 注意事项: not a part agents act on
    assert env.cards(env.a1) == []


def test_a_price_change_makes_a_card(env: Env) -> None:
    """An operator's trial changed the parking SOP's 收费标准 (临时停车 5元/小时 → 6元/小时): no card came, and agents
    who quote prices from memory were never asked to acknowledge the new one."""
    env.publish("前30分钟免费，之后5元/小时", "前45分钟免费，之后6元/小时", sop="parking")
    [card] = env.cards(env.a1)
    [part] = card["parts"]
    assert (part["part"], part["label"]) == ("fees", "收费标准")
    changed = [(line["op"], line["text"]) for line in part["lines"] if line["op"] != " "]
    assert ("+", "临时停车：前45分钟免费，之后6元/小时，每24小时最高40元。") in changed
    assert any(op == "-" and "5元/小时" in text for op, text in changed)


def test_a_minor_change_that_changes_a_number_still_makes_a_card(env: Env) -> None:
    """A trainer's trial published 「丢件：2小时内响应」 → 「1小时内响应」 as 小改动 and no agent was told: a typo fix
    changes no time limit, sum or count, so the card is made all the same, and the result says why."""
    out = env.publish("接报后 5 分钟内建单。", "接报后 3 分钟内建单。", minor=True)
    assert out["minor"] is False and any("改了数字" in w and "3 分钟" in w for w in out["warnings"])
    [card] = env.cards(env.a1)
    assert any(line["text"] == "接报后 3 分钟内建单。" for p in card["parts"] for line in p["lines"])
    typo = env.publish("接报后 3 分钟内建单。", "接报后3分钟内建单。", minor=True)
    assert typo["minor"] is True and len(env.cards(env.a1)) == 1


def test_a_rollback_withdraws_the_mistaken_card_and_tells_only_those_who_learned_it(env: Env) -> None:
    """A trainer's trial published a wrong time limit and rolled it back: agents were left a card teaching a rule they
    never had, then its correction. Whoever had not acknowledged the mistake gets neither; whoever had gets the
    correction, which says which version it took back."""
    mistake = env.publish("接报后 5 分钟内建单。", "接报后 50 分钟内建单。")
    [card] = env.cards(env.a1)
    assert env.c.post(f"/v1/changes/{card['change_id']}/ack", json={}, headers=auth(env.a1)).status_code == 200
    back = env.c.post(
        f"/v1/sops/{SOP}/rollback",
        json={"to_version": mistake["version"] - 1, "base_version": mistake["version"]},
        headers=auth(env.trainer),
    )
    assert back.status_code == 200, back.text
    assert env.cards(env.a2) == []  # never learned the mistake: nothing to correct
    [correction] = env.cards(env.a1)
    assert correction["version"] == back.json()["version"] and correction["undoes"] == [mistake["version"]]
    lines = [(line["op"], line["text"]) for p in correction["parts"] for line in p["lines"]]
    assert ("-", "接报后 50 分钟内建单。") in lines and ("+", "接报后 5 分钟内建单。") in lines
    status = {c["change_id"]: c for c in env.c.get("/v1/changes/status", headers=auth(env.trainer)).json()}
    assert status[card["change_id"]]["pending"] == []
    assert status[correction["change_id"]]["pending"] == ["agent-a"]
    # the trainer's table says which card was withdrawn, and by which version (a trial read two plain rows)
    assert status[card["change_id"]]["withdrawn_by"] == correction["version"]
    assert status[correction["change_id"]]["withdrawn_by"] is None


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


def test_the_cards_of_a_deleted_sop_are_withdrawn_until_it_is_published_again(env: Env) -> None:
    env.publish("接报后 5 分钟内建单。", "接报后 3 分钟内建单。")
    [card] = env.cards(env.a1)
    current = env.c.get(f"/v1/sops/{SOP}/source", headers=auth(env.trainer)).json()
    gone = env.c.delete(f"/v1/sops/{SOP}", params={"base_version": current["version"]}, headers=auth(env.trainer))
    assert gone.status_code == 200, gone.text
    assert env.cards(env.a1) == [] and env.cards(env.a2) == []
    assert card["change_id"] not in [
        s["change_id"] for s in env.c.get("/v1/changes/status", headers=auth(env.trainer)).json()
    ]
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    assert {p["name"]: p["unacknowledged_changes"] for p in report["people"]}["agent-a"] == 0
    back = env.c.post(
        f"/v1/sops/{SOP}/rollback",
        json={"to_version": current["version"], "base_version": gone.json()["version"]},
        headers=auth(env.trainer),
    )
    assert back.status_code == 200, back.text
    assert card["change_id"] in [c["change_id"] for c in env.cards(env.a1)]  # the SOP is back, and so is its card


def test_bad_input_gets_a_clear_4xx(env: Env) -> None:
    assert env.c.post(f"/v1/changes/{SOP}-v99/ack", json={}, headers=auth(env.a1)).status_code == 404
    assert env.c.post("/v1/changes/NOT VALID/ack", json={}, headers=auth(env.a1)).status_code in (404, 422)
    assert env.c.get("/v1/changes").status_code == 401  # tenants have no change cards


def test_folder_imports_are_the_systems_and_ask_nobody_to_acknowledge(env: Env) -> None:
    """The folder's own version (kb ingest) joins the history as the system's import, not the trainer's publish, and
    makes no change card; only the trainer's change does."""
    published = env.publish("接报后 5 分钟内建单。", "接报后 3 分钟内建单。")
    history = env.c.get(f"/v1/sops/{SOP}/history", headers=auth(env.trainer)).json()
    assert [(h["action"], h["author"]) for h in history] == [("import", "system"), ("publish", "林老师")]
    assert [c["change_id"] for c in env.cards(env.a1)] == [f"{SOP}-v{published['version']}"]
    status = env.c.get("/v1/changes/status", headers=auth(env.trainer)).json()
    assert [(s["version"], s["author"]) for s in status] == [(published["version"], "林老师")]
    services = env.c.app.state.kb_state.services  # type: ignore[attr-defined]
    # A row that an earlier release wrote with the trainer as the import's author reads as the system's too.
    services.logbook.add_versions(
        [VersionRecord("parking", 1, time.time(), "import", "林老师", "parking.md", "text", "live")], expected_latest=0
    )
    [old] = env.c.get("/v1/sops/parking/history", headers=auth(env.trainer)).json()
    assert old["author"] == "system"
    with pytest.raises(AccountError, match="保留"):  # no person may appear as the author of imports
        services.training.accounts.add("System", "trainer", by="test")


def test_the_report_counts_exactly_the_people_the_status_lists_as_pending(env: Env) -> None:
    """Agents and trainers other than the author must acknowledge; admins, disabled accounts and shared service keys
    are asked nothing: the report's per-person counts are the status table's pending rows."""
    other = add_account(env.c, "王老师", "trainer")
    admin = add_account(env.c, "boss", "admin")
    add_account(env.c, "agent-gone", "agent")
    env.c.post("/v1/users/agent-gone/disable", json={}, headers=auth(admin))
    env.publish("升级值班主管（8800）", "升级值班主管（8800）并抄送店长")
    env.publish("必要时关闭马桶角阀", "必要时关闭马桶角阀和总阀")
    for key in (AGENT, admin):  # a shared service key and the admin appear in the report through their activity
        r = env.c.post("/v1/practice/activity", json={"outcome": "copy", "ms": 900}, headers=auth(key))
        assert r.status_code == 200, r.text
    env.c.post(f"/v1/changes/{env.cards(other)[0]['change_id']}/ack", json={}, headers=auth(other))

    def pending_rows() -> dict[str, int]:
        status = env.c.get("/v1/changes/status", headers=auth(env.trainer)).json()
        return dict(Counter(name for s in status for name in s["pending"]))

    def report_counts() -> dict[str, int]:
        report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
        return {p["name"]: p["unacknowledged_changes"] for p in report["people"] if p["unacknowledged_changes"]}

    assert pending_rows() == report_counts() == {"agent-a": 2, "agent-b": 2, "王老师": 1}
    report = env.c.get("/v1/practice/report", headers=auth(env.trainer)).json()
    assert {p["role"] for p in report["people"]} >= {"admin", "service", "trainer", "agent"}


def test_a_staff_only_script_line_on_a_card_says_it_is_staff_only(env: Env) -> None:
    """A re-check of a security review: a [内部] script line appeared on the change card under 标准话术 like a line to
    say to a tenant."""
    added = "\n## 内部话术 [内部]\n> 租客坚持要免单的，可以说帮他申请减免一半。\n\n## 时限要求"
    env.publish("\n## 时限要求", added)
    [card] = env.cards(env.a1)
    [part] = card["parts"]
    assert part["part"] == "script"
    line = "（内部）租客坚持要免单的，可以说帮他申请减免一半。"
    assert {"op": "+", "text": line, "superseded_by": None, "moved": None} in part["lines"]


def test_a_section_moved_to_staff_only_is_told_as_such_not_as_every_line_struck_and_added(env: Env) -> None:
    """A trial moved 收费标准 under [内部]: the card struck every price and added it again as 「（内部）…」, and an
    agent skimming it may think the prices changed. The same words now staff-only are one line each, marked so."""
    env.publish("## 收费标准\n", "## 收费标准 [内部]\n", sop="parking")
    [card] = env.cards(env.a1)
    [part] = card["parts"]
    assert part["part"] == "fees"
    changed = [line for line in part["lines"] if line["op"] != " "]
    assert changed and all(line["op"] == "=" and line["moved"] == "internal" for line in changed)
    assert any("500元/月" in line["text"] and not line["text"].startswith("（内部）") for line in changed)
    # Back to public: the same, the other way; a price changed on the way is a price change
    env.publish("## 收费标准 [内部]\n", "## 收费标准\n", sop="parking")
    back = next(c for c in env.cards(env.a1) if c["version"] == card["version"] + 1)
    assert {line["moved"] for line in back["parts"][0]["lines"] if line["op"] != " "} == {"public"}
    env.publish("之后5元/小时", "之后6元/小时", sop="parking")
    priced = next(c for c in env.cards(env.a1) if c["version"] == card["version"] + 2)
    assert {line["op"] for line in priced["parts"][0]["lines"]} >= {"-", "+"}
