"""Leak test: for every staff-only section and agent document of the sample corpus, questions aimed at it are
sent to the chat endpoint and to public search, and none of its text may appear in any response."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from kb_service.models import Sop
from kb_service.settings import get_settings
from tests.helpers import KEYS, SOPS


@pytest.fixture(scope="module")
def public_client(use_data: Path) -> Iterator[TestClient]:
    settings = get_settings(data_dir=use_data, sops_dir=SOPS, api_keys=KEYS, chat_rate_limit=100_000)
    with TestClient(create_app(settings, load_in_background=False)) as c:
        yield c


def _fragments(text: str) -> list[str]:
    """Distinctive pieces of a text: each clause of 8+ characters."""
    parts = (re.sub(r"^(?:[-*]|\d+\.)\s*", "", p.strip()) for p in re.split(r"[\n。；;！？!?]", text))
    return [p for p in parts if len(p) >= 8]


def _secrets(catalog: dict[str, Sop]) -> tuple[list[tuple[str, list[str]]], set[str]]:
    """(questions, fragments) per staff-only target, and every fragment also found in public content."""
    public_text = "\n".join(
        s.text + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa)
        for sop in catalog.values()
        if sop.meta.audience == "public"
        for s in sop.sections
        if s.audience == "public"
    ) + "\n".join(f"{s.title}\n{'、'.join(s.meta.tags)}" for s in catalog.values() if s.meta.audience == "public")
    targets = []
    for sop in catalog.values():
        for s in sop.sections:
            if s.audience != "agent":
                continue
            body = s.text + "\n" + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa)
            questions = [s.heading, f"{sop.title} {s.heading}", *(_fragments(body)[:2])]
            if sop.meta.audience == "agent":
                questions += [sop.title, *sop.meta.examples[:2]]
            targets.append((f"{sop.meta.id}#{s.heading}", questions, _fragments(body)))
    shared = {f for _, _, frags in targets for f in frags if f in public_text}
    return [(name, qs) for name, qs, _ in targets], shared | {"__never__"}


def test_no_staff_text_in_chat_or_public_search(public_client: TestClient) -> None:
    catalog: dict[str, Sop] = public_client.app.state.kb_state.kb.searcher.catalog  # type: ignore[attr-defined]
    staff_fragments = {
        f
        for sop in catalog.values()
        for s in sop.sections
        if s.audience == "agent"
        for f in _fragments(s.text + "\n" + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa))
    }
    targets, shared = _secrets(catalog)
    secret = sorted(staff_fragments - shared)
    assert len(secret) > 200 and len(targets) > 100
    asked = 0
    for _name, questions in targets:
        for q in questions:
            q = q[:280]
            responses = [
                public_client.post("/v1/chat", json={"question": q}).json(),
                public_client.post("/v1/search", json={"query": q, "top_k": 10}).json(),
                public_client.post(
                    "/v1/search",
                    json={"query": q, "top_k": 10, "audience": "public"},
                    headers={"Authorization": "Bearer agent-key-123456"},
                ).json(),
            ]
            for r in responses:
                r.pop("query", None)  # the echo of our own question is not a leak
            blob = json.dumps(responses, ensure_ascii=False)
            leaked = [f for f in secret if f in blob]
            assert not leaked, (q, leaked[:3])
            asked += 1
    assert asked > 300


def test_agent_documents_are_invisible_to_tenants(public_client: TestClient) -> None:
    catalog: dict[str, Sop] = public_client.app.state.kb_state.kb.searcher.catalog  # type: ignore[attr-defined]
    for sop_id, sop in catalog.items():
        status = public_client.get(f"/v1/sops/{sop_id}").status_code
        assert status == (200 if sop.meta.audience == "public" else 404)
    listed = {s["sop_id"] for s in public_client.get("/v1/sops").json()}
    assert listed == {i for i, s in catalog.items() if s.meta.audience == "public"}


def test_chat_answers_a_public_question_with_its_source(public_client: TestClient) -> None:
    r = public_client.post("/v1/chat", json={"question": "房租可以开发票吗"}).json()
    assert not r["handoff"] and r["sources"][0]["sop_id"] == "invoice-request" and "来源" in r["answer"]


def test_chat_hands_over_when_unsure(public_client: TestClient) -> None:
    r = public_client.post("/v1/chat", json={"question": "附近有什么好吃的火锅店推荐吗"}).json()
    assert r["handoff"] and r["sources"] == [] and "人工" in r["answer"]
