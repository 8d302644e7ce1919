"""A publish, delete or rollback says which recent questions now land on another SOP: a trainer's trial deleted a SOP
and published a new one, and questions agents and tenants had asked landed elsewhere without a word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest import impact
from tests.helpers import AGENT, KEYS, NEW, TRAINER, api_client, auth, put


@pytest.fixture
def trainer(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield c


def _first(c: TestClient, q: str) -> str:
    return c.post("/v1/search", json={"query": q, "top_k": 3}, headers=auth(AGENT)).json()["results"][0]["sop_id"]


def test_a_delete_lists_the_recent_questions_that_land_elsewhere_now(trainer: TestClient) -> None:
    for _ in range(3):
        assert _first(trainer, "健身房几点开门") == "community-activities"
    assert _first(trainer, "空调不制冷") == "repair-air-conditioner"
    chat = trainer.post("/v1/chat", json={"question": "共享厨房怎么预约", "session_id": "s-impact-1"})
    assert chat.status_code == 200
    r = trainer.delete("/v1/sops/community-activities", params={"base_version": 1}, headers=auth(TRAINER))
    assert r.status_code == 200, r.text
    body = r.json()["impact"]
    moved = {(m["query"], m["audience"]): m for m in body["moved"]}
    gym = moved[("健身房几点开门", "agent")]
    assert gym["asked"] == 3 and gym["before"] == "community-activities" and gym["after"] != "community-activities"
    assert gym["before_title"].startswith("社区活动") and gym["after_title"]
    assert moved[("共享厨房怎么预约", "public")]["before"] == "community-activities"
    assert ("空调不制冷", "agent") not in moved  # its first SOP is the same
    assert body["compared"] >= 3 and body["moved_total"] == len(body["moved"])
    assert [m["asked"] for m in body["moved"]] == sorted((m["asked"] for m in body["moved"]), reverse=True)


def test_a_new_sop_that_takes_questions_over_says_so_and_a_budget_bounds_the_wait(
    trainer: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _first(trainer, "路由器怎么重启") != "wifi-router-reset"
    assert _first(trainer, "门卡丢了怎么办") != "wifi-router-reset"
    r = put(trainer, "wifi-router-reset", NEW)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()["impact"]  # type: ignore[attr-defined]
    router = next(m for m in body["moved"] if m["query"] == "路由器怎么重启")
    assert router["after"] == "wifi-router-reset" and router["after_title"] == "路由器重启指引"
    assert all(m["query"] != "门卡丢了怎么办" for m in body["moved"])
    # nothing compared beyond the budget: the publish still goes through
    monkeypatch.setattr(impact, "BUDGET_SECONDS", 0.0)
    src = trainer.get("/v1/sops/wifi-router-reset/source", headers=auth(TRAINER)).json()
    again = put(trainer, "wifi-router-reset", src["content"].replace("30 秒", "20 秒"), base_version=src["version"])
    assert again.status_code == 200 and again.json()["impact"]["compared"] == 0  # type: ignore[attr-defined]


def test_a_phrasing_agents_taught_is_listed_when_the_content_now_sends_it_elsewhere(trainer: TestClient) -> None:
    """A re-check split a SOP: the phrasings agents had confirmed for the old one kept their search there, and the
    publish listed them as moved when they had not. Both searches are by content; a learned phrasing of a SOP of the
    change is listed while the content sends it to another SOP (it still takes agents there)."""
    r = trainer.post("/v1/search", json={"query": "健身房几点开门", "top_k": 3}, headers=auth(AGENT)).json()
    vote = {"query_id": r["query_id"], "sop_id": "parcel-service", "vote": 1}
    assert trainer.post("/v1/feedback", json=vote, headers=auth(AGENT)).status_code in (200, 201)
    src = trainer.get("/v1/sops/parcel-service/source", headers=auth(TRAINER)).json()
    edited = src["content"].replace("## 适用场景", "## 适用场景\n- 补充说明。", 1)
    out = put(trainer, "parcel-service", edited, base_version=src["version"], force=True)
    assert out.status_code == 200, out.text  # type: ignore[attr-defined]
    moved = out.json()["impact"]["moved"]  # type: ignore[attr-defined]
    taught = [m for m in moved if m["learned"] == "parcel-service"]
    assert [(m["query"], m["before"], m["after"]) for m in taught] == [
        ("健身房几点开门", "parcel-service", "community-activities")
    ]
    # the logged search itself did not move: its content goes where it went (the learned pair no longer counted)
    assert not [m for m in moved if m["learned"] is None and m["query"] == "健身房几点开门"]


def test_a_tenants_question_whose_answer_became_staff_only_is_listed(trainer: TestClient) -> None:
    """A trial moved a section to [内部]: the same SOP stayed first and the publish said nothing changed, while the
    tenants who had asked what it said lost their answer."""
    asked = trainer.post("/v1/chat", json={"question": "自习室每次最长能用多久", "session_id": "s-impact-2"})
    assert asked.status_code == 200 and "4小时" in asked.json()["answer"]
    src = trainer.get("/v1/sops/community-activities/source", headers=auth(TRAINER)).json()
    hidden = src["content"].replace("## 公共空间开放规则", "## 公共空间开放规则 [内部]", 1)
    out = put(trainer, "community-activities", hidden, base_version=src["version"], force=True)
    assert out.status_code == 200, out.text  # type: ignore[attr-defined]
    moved = {m["query"]: m for m in out.json()["impact"]["moved"]}  # type: ignore[attr-defined]
    gone = moved["自习室每次最长能用多久"]
    assert gone["before"] == gone["after"] == "community-activities"
    assert gone["section_gone"] is not None and "公共空间开放规则" in gone["section_gone"]
    # a heading renamed keeps its words public: nothing is lost
    src = trainer.get("/v1/sops/community-activities/source", headers=auth(TRAINER)).json()
    back = src["content"].replace("## 公共空间开放规则 [内部]", "## 开放时间与预约规则", 1)
    out = put(trainer, "community-activities", back, base_version=src["version"], force=True)
    assert not [m for m in out.json()["impact"]["moved"] if m["section_gone"]]  # type: ignore[attr-defined]


def test_the_delete_check_tells_what_a_delete_would_take_away(trainer: TestClient) -> None:
    """A trial deleted a SOP through a dialog that said only that history is kept: what it cost (the questions it
    answered, what agents had taught it, the documents that point to it) showed after the fact or not at all."""
    for _ in range(2):
        assert _first(trainer, "健身房几点开门") == "community-activities"
    r = trainer.post("/v1/search", json={"query": "楼下那个练身体的屋子几点关", "top_k": 3}, headers=auth(AGENT)).json()
    vote = {"query_id": r["query_id"], "sop_id": "community-activities", "vote": 1}
    assert trainer.post("/v1/feedback", json=vote, headers=auth(AGENT)).status_code in (200, 201)
    chat = trainer.post("/v1/chat", json={"question": "自习室每次最长能用多久", "session_id": "s-impact-3"}).json()
    assert chat["handoff"] is False
    pointer = NEW.replace(
        "## 标准话术",
        "## 相关文档\n- 开放时间见《社区活动报名与公共空间（健身房、自习室、共享厨房）预约》。\n\n## 标准话术",
    )
    assert put(trainer, "wifi-router-reset", pointer).status_code == 200  # type: ignore[attr-defined]
    check = trainer.get("/v1/sops/community-activities/delete-check", headers=auth(TRAINER))
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["agent_searches"] >= 2 and body["tenant_answers"] >= 1 and body["learned"] == 1
    assert [m["sop_id"] for m in body["mentioned_by"]] == ["wifi-router-reset"]
    assert body["warnings"] and "社区活动" in body["warnings"][0]  # the category's only SOP
    # the sample documents point to each other by id (「下水堵塞、反水见 repair-drain-blocked」)
    drain = trainer.get("/v1/sops/repair-drain-blocked/delete-check", headers=auth(TRAINER)).json()
    assert {m["sop_id"] for m in drain["mentioned_by"]} >= {"repair-pipe-faucet", "neighbor-dispute"}
    assert (drain["learned"], drain["warnings"]) == (0, [])  # 报修 keeps other SOPs
    assert trainer.get("/v1/sops/no-such-sop/delete-check", headers=auth(TRAINER)).status_code == 404
    assert trainer.get("/v1/sops/community-activities/delete-check", headers=auth(AGENT)).status_code == 403


def test_an_unchanged_faq_pair_is_never_said_to_be_gone_and_a_fee_section_made_staff_only_is(
    trainer: TestClient,
) -> None:
    """A training lead's trial: a price change (500 → 550) was reported as 「停车月卡怎么办？」 no longer public (an
    FAQ pair's heading is its question, not a section's), and making 收费标准 staff-only named that FAQ pair again."""
    for question in ("停车月卡怎么办", "临时停车怎么收费"):
        assert trainer.post("/v1/chat", json={"question": question, "session_id": "s-impact-4"}).status_code == 200
    src = trainer.get("/v1/sops/parking/source", headers=auth(TRAINER)).json()
    priced = src["content"].replace("固定车位500元/月", "固定车位550元/月", 1)
    out = put(trainer, "parking", priced, base_version=src["version"], force=True)
    assert out.status_code == 200, out.text  # type: ignore[attr-defined]
    assert [m for m in out.json()["impact"]["moved"] if m["section_gone"]] == []  # type: ignore[attr-defined]
    src = trainer.get("/v1/sops/parking/source", headers=auth(TRAINER)).json()
    hidden = src["content"].replace("## 收费标准", "## 收费标准 [内部]", 1)
    out = put(trainer, "parking", hidden, base_version=src["version"], force=True)
    gone = {m["query"]: m["section_gone"] for m in out.json()["impact"]["moved"] if m["section_gone"]}  # type: ignore[attr-defined]
    assert gone.get("临时停车怎么收费") == "收费标准", gone
