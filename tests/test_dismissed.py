"""A clause saying what the problem is not is left out of what is searched (kb_service/text/dismissed.py)."""

from __future__ import annotations

import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.search.config import SearchConfig
from kb_service.text.dismissed import without_dismissed


@pytest.mark.parametrize(
    ("said", "searched"),
    [
        ("不是门锁坏了，是阳台那扇推拉门滑不动", "是阳台那扇推拉门滑不动"),
        ("空调外机嗡嗡响，不是邻居家的，就是我自己房间那台", "空调外机嗡嗡响，就是我自己房间那台"),
        ("楼道的灯是亮的，是我房间卫生间那盏灯坏了", "是我房间卫生间那盏灯坏了"),
        ("我们家没停水，是屋里进水了", "是屋里进水了"),
        ("房门的电子锁没问题，是楼下单元门的卡丢了", "是楼下单元门的卡丢了"),
        ("我要投诉你们安保态度很凶，不是投诉邻居吵", "我要投诉你们安保态度很凶"),
    ],
)
def test_a_denied_clause_is_left_out(said: str, searched: str) -> None:
    assert without_dismissed(said) == searched


@pytest.mark.parametrize(
    "said",
    [
        "家里没电了，是不是跳闸了",  # a symptom said with 没 is no denial
        "热水器没有热水了，打开就是凉的",
        "不是说好今天来修吗",  # a reproach, not a denial
        "合同到期不续租需要提前多久通知",
        "不是",  # nothing would be left
        "门锁没问题",  # no contrast follows
    ],
)
def test_symptoms_reproaches_and_lone_denials_are_searched_whole(said: str) -> None:
    assert without_dismissed(said) == said


def test_search_finds_what_the_problem_is_rather_than_what_it_is_not(use_kb: KnowledgeBase) -> None:
    said = "我家没停电，是楼道的灯不亮"
    first = use_kb.searcher.search(said, top_k=3).results[0].sop_id
    whole = use_kb.searcher.search(said, top_k=3, config=SearchConfig(drop_dismissed=False)).results[0].sop_id
    assert first == "repair-electric-lighting"
    assert whole == "emergency-power-outage"  # what the rule changes: 停电 pulled the outage procedure first
    # The query vector computed ahead (the HTTP lane and the chat embed first) is the same text's
    vector = use_kb.searcher.embed_queries([said])[0]
    assert use_kb.searcher.search(said, top_k=1, query_vector=vector).results[0].sop_id == first
