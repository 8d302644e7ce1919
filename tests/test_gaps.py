"""The gap report: unanswered questions grouped by meaning, never-found SOPs, overdue reviews, feedback, CSV."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from kb_service.gaps import GapReporter, to_csv
from kb_service.logbook import Logbook
from kb_service.privacy import mask
from kb_service.service import KnowledgeBase
from kb_service.settings import get_settings
from tests.helpers import SOPS, TRAINER


def test_masking_of_personal_data() -> None:
    text = "我是3栋1502的张女士，电话13812345678，身份证110101199003071234，住12-3-402"
    masked = mask(text)
    for secret in ("1502", "13812345678", "110101199003071234", "12-3-402"):
        assert secret not in masked
    assert "[手机号]" in masked and "[身份证号]" in masked and "[房号]" in masked and "张女士" in masked


def test_report_groups_unanswered_by_meaning(use_kb: KnowledgeBase, tmp_path: Path) -> None:
    log = Logbook(tmp_path / "db.sqlite3")
    for q in ("附近有什么好吃的火锅店", "附近哪家火锅店好吃", "周边有好吃的火锅吗"):
        log.log_query(source="chat", audience="public", query=q, result_ids=[], top_score=None, handoff=True)
    log.log_query(
        source="chat",
        audience="public",
        query="明天天气怎么样",
        result_ids=["x"],
        top_score=0.1,
        confidence=0.2,
        handoff=True,
    )
    for _ in range(3):
        qid = log.log_query(
            source="search", audience="agent", query="天花板漏水", result_ids=["repair-leak-ceiling"], top_score=0.9
        )
    log.add_feedback(sop_id="repair-leak-ceiling", vote=-1, source="console", query_id=qid)
    log.add_feedback(sop_id="repair-leak-ceiling", vote=1, source="console")
    report = GapReporter(log, use_kb.embedder, 0.6).report(time.time() - 60, time.time() + 1, use_kb.searcher.catalog)
    assert report.total_queries == 7
    assert report.top_queries[0].query == "天花板漏水" and report.top_queries[0].count == 3
    hotpot = next(g for g in report.unanswered if "火锅" in g.representative)
    assert hotpot.count == 3 and len(hotpot.examples) == 3  # three phrasings, one need
    assert any(g.representative == "明天天气怎么样" for g in report.unanswered)
    assert any("点踩" in g.reasons for g in report.unanswered if g.representative == "天花板漏水")
    assert "repair-leak-ceiling" not in report.never_found and "parking" in report.never_found
    assert [r.sop_id for r in report.review_overdue] == ["repair-appliance"]
    fb = next(f for f in report.feedback if f.sop_id == "repair-leak-ceiling")
    assert (fb.up, fb.down) == (1, 1)
    csv_text = to_csv(report)
    assert "未解决问题" in csv_text and "复核过期" in csv_text and "repair-appliance" in csv_text
    log.close()


@pytest.fixture
def trainer_client(use_data: Path) -> Iterator[TestClient]:
    settings = get_settings(data_dir=use_data, sops_dir=SOPS, api_keys=f"trainer:{TRAINER},agent:agent-key-123456")
    with TestClient(create_app(settings, load_in_background=False)) as c:
        yield c


def test_gap_report_api_and_csv_need_a_trainer_key(trainer_client: TestClient) -> None:
    trainer_client.post("/v1/chat", json={"question": "你们公司招聘管家吗"})
    r = trainer_client.get("/v1/reports/gaps", headers={"Authorization": f"Bearer {TRAINER}"})
    assert r.status_code == 200 and r.json()["total_queries"] >= 1
    csv_resp = trainer_client.get("/v1/reports/gaps.csv", headers={"Authorization": f"Bearer {TRAINER}"})
    assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
    assert csv_resp.content.startswith("\ufeff".encode())
    assert trainer_client.get("/v1/reports/gaps").status_code == 403
    bad = trainer_client.get(
        "/v1/reports/gaps", params={"since": 10, "until": 5}, headers={"Authorization": f"Bearer {TRAINER}"}
    )
    assert bad.status_code == 422
