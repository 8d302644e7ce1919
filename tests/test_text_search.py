"""Trainers find every line of the published SOPs that holds a text (a rule to change everywhere it is written)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers import AGENT, KEYS, TRAINER, api_client, auth


@pytest.fixture
def trainer(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield c


def test_a_text_is_found_in_every_file_that_holds_it_whatever_its_spacing(trainer: TestClient, sops_copy: Path) -> None:
    expected = {}
    for path in sops_copy.rglob("*.md"):
        lines = path.read_text(encoding="utf-8").splitlines()
        hits = [n for n, line in enumerate(lines, start=1) if "30分钟" in line.replace(" ", "")]
        if hits:
            expected[str(path.relative_to(sops_copy))] = hits
    assert len(expected) >= 3  # the samples write it as 30分钟 and 30 分钟
    for q in ("30 分钟", "30分钟", "３０分钟"):  # spaces and full-width digits do not matter
        r = trainer.get("/v1/text-search", params={"q": q}, headers=auth(TRAINER))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["documents"] == len(expected)
        got = {d["path"]: [h["line"] for h in d["lines"]] for d in body["results"]}
        assert {p: lines[:10] for p, lines in expected.items()} == got, q
        assert all("30" in h["text"] for d in body["results"] for h in d["lines"])
    staff = trainer.get("/v1/text-search", params={"q": "分机"}, headers=auth(TRAINER)).json()
    assert staff["documents"] >= 1  # staff-only sections too: trainers maintain them
    assert trainer.get("/v1/text-search", params={"q": "没有这段文字的句子"}, headers=auth(TRAINER)).json() == {
        "query": "没有这段文字的句子",
        "documents": 0,
        "results": [],
    }
    assert trainer.get("/v1/text-search", params={"q": "分机"}, headers=auth(AGENT)).status_code == 403
    assert trainer.get("/v1/text-search", params={"q": "分机"}).status_code == 401
    assert trainer.get("/v1/text-search", params={"q": ""}, headers=auth(TRAINER)).status_code == 422
