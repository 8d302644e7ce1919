"""A caller reporting a fault gets the procedure for it before a document announcing or scheduling something about the
same object (a planned outage's notice, a battery round, a drill); a question about the schedule keeps its answer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.search.schedules import case_first
from kb_service.settings import get_settings
from tests.helpers import ROOT

TITLES = {
    "round": "智能门锁电池巡检与换租密码管理",
    "lock": "进不了门：钥匙丢失、门锁故障与开锁",
    "notice": "计划停电通知",
    "power": "断电、灯具及插座报修",
    "drill": "消防检查与演练安排",
}


def first(query: str, *ranked: str) -> str | None:
    return case_first(query, list(ranked), TITLES.__getitem__)


def test_a_fault_reported_goes_to_its_procedure_and_a_schedule_asked_about_stays() -> None:
    assert first("大半夜的指纹怎么按都不认，这锁抽风了", "round", "lock") == "lock"
    assert first("没收到停电通知，整层楼突然全黑了", "notice", "power") == "power"  # "no notice" asks for none
    assert first("下周是不是要停电，什么时候来电", "notice", "power") is None  # a schedule asked about
    assert first("门锁电池巡检突然来了好几次", "round", "lock") is None  # names the round
    assert first("指纹锁不认了", "lock", "round") is None  # the procedure is first already
    assert first("锁黑屏了", "round", "drill") is None  # nothing but schedules near the top
    assert first("门锁电池多久换一次", "round", "lock") is None  # no fault reported


@pytest.fixture(scope="module")
def locks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """Five of a fourth company's documents (eval/fourth): two lock documents, two pest ones and the boiler's."""
    sops = tmp_path_factory.mktemp("sops")
    for name in ("bj-door-lock", "bj-smart-lock-maintenance", "bj-pest-control", "bj-seasonal-pest", "bj-wall-boiler"):
        shutil.copy(ROOT / "eval" / "fourth" / "sops" / f"{name}.md", sops)
    kb = KnowledgeBase.from_settings(get_settings(data_dir=tmp_path_factory.mktemp("data"), sops_dir=sops))
    assert kb.ingest(sops).ok
    yield kb
    kb.close()


def test_the_search_puts_the_fault_procedure_first_and_only_for_a_fault(locks: KnowledgeBase) -> None:
    searcher = locks.searcher
    fault = "大半夜的指纹怎么按都不认，密码也说错误，我确定没输错，这锁抽风了"
    without = replace(searcher.config, cases=False)
    assert searcher.search(fault, top_k=3, config=without).results[0].sop_id == "bj-smart-lock-maintenance"
    assert searcher.search(fault, top_k=3).results[0].sop_id == "bj-door-lock"
    asked = "管家说这个月要来检查门锁电池，什么时候来"
    assert searcher.search(asked, top_k=3).results[0].sop_id == "bj-smart-lock-maintenance"
