"""The HTTP API over a real index (hash embedder for speed; the real model is covered elsewhere)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from tests.helpers import AGENT, KEYS, TRAINER, api_client, auth, hash_settings


@pytest.fixture
def client(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS, chat_rate_limit=1000) as c:
        yield c


@pytest.fixture
def trial(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy) as c:
        yield c


def test_health_reports_counts_and_embedder(client: TestClient) -> None:
    body = client.get("/healthz", headers=auth(AGENT)).json()
    assert body["status"] == "ok" and body["documents"] >= 40 and body["chunks"] > body["documents"]
    assert body["embedder"] == "hash-test" and body["auth"] is True and body["generation"]
    # Without a key: ready or not, but no counts of staff-only material and no publish time (the generation's name).
    public = client.get("/healthz").json()
    assert public["status"] == "ok" and public["documents"] is None and public["chunks"] is None
    assert public["generation"] is None and public["reason"] is None


def test_health_is_503_while_loading(tmp_path: Path, sops_copy: Path) -> None:
    app = create_app(hash_settings(tmp_path, sops_copy), load_in_background=False)
    with TestClient(app) as c:
        app.state.kb_state.services = None
        assert c.get("/healthz").status_code == 503
        assert c.post("/v1/search", json={"query": "漏水"}).status_code == 503


def test_search_result_shape(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": "天花板漏水", "top_k": 3}, headers=auth(AGENT))
    assert r.status_code == 200
    body = r.json()
    assert body["took_ms"] >= 0 and 1 <= len(body["results"]) <= 3 and body["query_id"] >= 1
    hit = body["results"][0]
    for key in ("sop_id", "title", "category", "audience", "version", "score", "sections", "steps", "scripts"):
        assert key in hit
    assert {"heading", "text", "line_start", "line_end"} <= set(hit["sections"][0])


def test_without_a_key_only_public_content(client: TestClient) -> None:
    catalog = client.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    for q in ["补偿标准 审批", "天花板漏水", "内部电话"]:
        r = client.post("/v1/search", json={"query": q, "top_k": 10, "audience": "agent"})
        assert r.status_code == 200
        for hit in r.json()["results"]:
            assert catalog[hit["sop_id"]].meta.audience == "public"
            assert all(s["audience"] == "public" for s in hit["sections"])
    agent_doc = next(i for i, s in catalog.items() if s.meta.audience == "agent")
    assert client.get(f"/v1/sops/{agent_doc}").status_code == 404
    assert client.get(f"/v1/sops/{agent_doc}", headers=auth(AGENT)).status_code == 200
    public = client.get("/v1/sops/payment-rent").json()
    assert all(not s["internal"] for s in public["sections"])
    full = client.get("/v1/sops/payment-rent", headers=auth(AGENT)).json()
    assert any(s["internal"] for s in full["sections"])


def test_public_audience_restricts_even_an_agent(client: TestClient) -> None:
    catalog = client.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    r = client.post("/v1/search", json={"query": "漏水", "audience": "public", "top_k": 10}, headers=auth(AGENT))
    assert all(catalog[h["sop_id"]].meta.audience == "public" for h in r.json()["results"])


def test_wrong_key_is_401_and_roles_are_reported(client: TestClient) -> None:
    assert client.post("/v1/search", json={"query": "漏水"}, headers=auth("wrong-key-000")).status_code == 401
    me = client.get("/v1/whoami", headers=auth(TRAINER)).json()
    assert me == {
        "role": "trainer",
        "auth": True,
        "name": me["name"],
        "admin": False,
        "max_query_chars": 500,
        "account": False,
        "company": "安居优寓",
    }
    assert me["name"].startswith("trainer:") and TRAINER not in me["name"]  # a fingerprint, never the key
    assert client.get("/v1/whoami").json()["role"] == "public"
    assert client.get("/v1/whoami", headers={"Authorization": "Basic abc"}).status_code == 401


def test_trial_mode_treats_requests_as_agent(trial: TestClient) -> None:
    assert trial.get("/v1/whoami").json() == {
        "role": "agent",
        "auth": False,
        "name": "trial",
        "admin": False,
        "max_query_chars": 500,
        "account": False,
        "company": "安居优寓",
    }
    catalog = trial.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    agent_doc = next(i for i, s in catalog.items() if s.meta.audience == "agent")
    assert trial.get(f"/v1/sops/{agent_doc}").status_code == 200
    hits = trial.post("/v1/search", json={"query": "漏水", "audience": "public", "top_k": 10}).json()["results"]
    assert all(catalog[h["sop_id"]].meta.audience == "public" for h in hits)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"query": ""}, 422, "query"),
        ({"query": "   "}, 422, "不能为空"),
        ({"query": "漏" * 501}, 422, "query"),
        ({"query": "漏水", "top_k": 0}, 422, "top_k"),
        ({"query": "漏水", "top_k": 21}, 422, "top_k"),
        ({"query": "漏水", "filters": {"building": "A"}}, 422, "不支持的字段"),
        ({"query": "漏水", "audience": "tenant"}, 422, "audience"),
        ({"query": "漏水", "extra": 1}, 422, "extra"),
        ({}, 422, "缺少字段"),
    ],
)
def test_bad_search_input_is_a_clear_4xx(client: TestClient, body: dict[str, object], status: int, needle: str) -> None:
    r = client.post("/v1/search", json=body, headers=auth(AGENT))
    assert r.status_code == status
    assert needle in r.json()["error"]["message"]
    assert "Value error" not in r.text  # pydantic's prefix before our own words (a trial read it in the console)


def test_the_query_limit_is_the_setting(tmp_path: Path, sops_copy: Path) -> None:
    with api_client(tmp_path, sops_copy, max_query_chars=20) as c:
        assert c.post("/v1/search", json={"query": "漏" * 20}).status_code == 200
        r = c.post("/v1/search", json={"query": "漏" * 21})
        assert r.status_code == 422 and "最多 20 个字符" in r.json()["error"]["message"]
        assert r.json()["error"]["code"] == "invalid_request"
        # Longer than any configuration allows: still the configured limit in the message (it said 5000 before).
        r = c.post("/v1/search", json={"query": "漏" * 10_000})
        assert r.status_code == 422 and "最多 20 个字符" in r.json()["error"]["message"], r.text
        assert "5000" not in r.text
        # A call segment is taken up to 5,000 characters and searched by its last 20: its message says the limit
        # that refuses it (a trial's integrator was told "at most 500" while 5,000 were taken).
        r = c.post("/v1/assist/c-1/segments", json={"speaker": "tenant", "text": "漏" * 10_000})
        assert r.status_code == 422 and "最多 5000 个字符" in r.json()["error"]["message"], r.text
        taken = c.post("/v1/assist/c-1/segments", json={"speaker": "tenant", "text": "漏" * 21})
        assert taken.status_code == 200 and taken.json()["clipped"]
        # A segment's `final` is true or false, not a string a client happened to send.
        r = c.post("/v1/assist/c-1/segments", json={"speaker": "tenant", "text": "漏水", "final": "yes"})
        assert r.status_code == 422 and "final" in r.text


def test_the_demo_page_carries_the_companys_name(tmp_path: Path, sops_copy: Path) -> None:
    """A new customer's trial: /demo said 安居优寓 over the customer's own documents."""
    with api_client(tmp_path, sops_copy, company_name="青柠<公寓>") as c:
        page = c.get("/demo")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "青柠&lt;公寓&gt; · 租客服务" in page.text and "安居优寓" not in page.text
        assert "<i>青</i>" in page.text and "青柠<公寓>" not in page.text  # escaped
        assert "content-security-policy" in page.headers


def test_report_periods_take_dates_as_well_as_unix_seconds(client: TestClient) -> None:
    for path in ("/v1/reports/gaps", "/v1/practice/report"):
        assert client.get(path, params={"since": "2026-11-01"}, headers=auth(TRAINER)).status_code == 200, path
        assert client.get(path, params={"since": "1790000000"}, headers=auth(TRAINER)).status_code == 200
        r = client.get(path, params={"since": "上个月"}, headers=auth(TRAINER))
        assert r.status_code == 422 and "2026-11-01" in r.json()["error"]["message"]
    dated = client.get("/v1/reports/gaps", params={"since": "2026-11-01", "until": "2026-11-30"}, headers=auth(TRAINER))
    later = client.get("/v1/reports/gaps", params={"since": "2026-12-01", "until": "2026-11-30"}, headers=auth(TRAINER))
    assert dated.status_code == 200 and later.status_code == 422  # dates are compared as moments


def test_malformed_json_wrong_type_and_oversized_body(client: TestClient) -> None:
    r = client.post("/v1/search", content=b"{not json", headers={**auth(AGENT), "content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]
    r = client.post(
        "/v1/search", content=b'{"query": "\xff\xfe"}', headers={**auth(AGENT), "content-type": "application/json"}
    )
    assert r.status_code in (400, 422) and "请求体" in r.json()["error"]["message"], r.text
    r = client.post("/v1/search", content=b"query=x", headers={**auth(AGENT), "content-type": "text/plain"})
    assert r.status_code == 415
    # An empty POST with no type is no other format: a body-less endpoint takes it, one needing a body says so
    assert client.post("/v1/assist/bare/end", headers=auth(AGENT)).status_code == 204
    r = client.post("/v1/search", headers=auth(AGENT))
    assert r.status_code == 422 and "body" in r.text, r.text
    big = b'{"query": "' + b"a" * 70_000 + b'"}'
    r = client.post("/v1/search", content=big, headers={**auth(AGENT), "content-type": "application/json"})
    assert r.status_code == 413
    r = client.post(
        "/v1/search", content=b'"just a string"', headers={**auth(AGENT), "content-type": "application/json"}
    )
    assert r.status_code == 422


def test_unknown_sop_is_404(client: TestClient) -> None:
    r = client.get("/v1/sops/no-such-sop", headers=auth(AGENT))
    assert r.status_code == 404 and "no-such-sop" in r.json()["error"]["message"]
    assert client.get("/v1/sops/Bad_Id", headers=auth(AGENT)).status_code == 422


def test_feedback_is_recorded(client: TestClient) -> None:
    qid = client.post("/v1/search", json={"query": "漏水"}, headers=auth(AGENT)).json()["query_id"]
    r = client.post(
        "/v1/feedback", json={"sop_id": "repair-leak-ceiling", "vote": -1, "query_id": qid}, headers=auth(AGENT)
    )
    assert r.status_code == 200
    rows = client.app.state.kb_state.services.logbook.rows("SELECT * FROM feedback")  # type: ignore[attr-defined]
    assert rows[0]["vote"] == -1 and rows[0]["query_id"] == qid
    assert client.post("/v1/feedback", json={"sop_id": "repair-leak-ceiling", "vote": 2}).status_code == 422
    # tenants cannot leave feedback on (or probe the existence of) staff documents
    assert client.post("/v1/feedback", json={"sop_id": "repair-leak-ceiling", "vote": 1}).status_code == 404


def test_a_tenant_votes_on_the_answers_they_were_given_only(client: TestClient) -> None:
    """A security review voted 👎 on other tenants' answers (query ids are counted up) and on any public SOP with no
    question at all; the trainers' feedback table and the service report's chat_voted_down read those votes."""
    answer = client.post("/v1/chat", json={"question": "怎么开发票"}).json()
    vote = {"sop_id": answer["sources"][0]["sop_id"], "vote": -1}
    assert client.post("/v1/feedback", json=vote).status_code == 422  # no answer named
    logbook = client.app.state.kb_state.services.logbook  # type: ignore[attr-defined]
    logbook.flush()  # the log's writer thread has stored the question
    with logbook.transaction() as c:  # the question was another tenant's
        c.execute("UPDATE queries SET client = 'another' WHERE id = :id", {"id": answer["query_id"]})
    assert client.post("/v1/feedback", json={**vote, "query_id": answer["query_id"]}).status_code == 403
    own = client.post("/v1/chat", json={"question": "发票抬头写错了怎么办"}).json()
    assert client.post("/v1/feedback", json={**vote, "query_id": own["query_id"]}).status_code == 200
    # ... and on the SOP that answer came from, not on any document (a re-check of that review)
    other = {"sop_id": "parking", "vote": -1, "query_id": own["query_id"]}
    assert client.get("/v1/sops/parking").status_code == 200  # a public document
    assert client.post("/v1/feedback", json=other).status_code == 403


def test_queries_are_logged_with_personal_data_masked(client: TestClient) -> None:
    client.post("/v1/search", json={"query": "我是3栋1502的，电话13812345678，家里漏水"}, headers=auth(AGENT))
    logged = client.app.state.kb_state.services.logbook.rows("SELECT query FROM queries")[-1]["query"]  # type: ignore[attr-defined]
    assert "13812345678" not in logged and "1502" not in logged and "[手机号]" in logged and "漏水" in logged


def test_openapi_docs_have_chinese_examples(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    examples = spec["components"]["schemas"]["SearchRequest"]["examples"]
    assert any(e.get("query") == "天花板在滴水" for e in examples)
    # the hand-over webhook's events, their bodies and signature header, beside the endpoints (an integrator's trial)
    hooks = spec["webhooks"]
    assert set(hooks) == {
        "case.opened",
        "case.message",
        "case.priority_raised",
        "case.contact_changed",
        "case.taken",
        "case.closed",
    }
    opened = hooks["case.opened"]["post"]
    assert "X-KB-Signature" in [p["name"] for p in opened["parameters"]]
    body = opened["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"case_id", "contact", "priority", "conversation"} <= set(spec["components"]["schemas"][body]["properties"])


# -- fuzzing the app against its own OpenAPI schema: bad input never produces a 500 ------------------------------


@pytest.mark.slow
def test_fuzz_no_server_errors(client: TestClient) -> None:
    """Every operation of the app's own OpenAPI schema, with generated (mostly invalid) input, as a trainer."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TRAINER}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()
    assert not failures, failures


def test_chat_is_rate_limited_per_client_with_retry_after(tmp_path: Path, sops_copy: Path) -> None:
    with api_client(tmp_path, sops_copy, chat_rate_limit=3) as c:
        assert c.post("/v1/chat", json={"question": "问" * 301}).status_code == 422  # counts too: a flood is a flood
        assert c.post("/v1/chat", json={"question": "怎么开发票"}).status_code == 200
        assert c.post("/v1/chat", json={"question": "怎么开发票"}).status_code == 200
        r = c.post("/v1/chat", json={"question": "怎么开发票"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "频繁" in r.json()["error"]["message"]
        assert 15 <= int(r.headers["Retry-After"]) <= 21  # one request back every 60/3 s
        assert c.post("/v1/search", json={"query": "怎么开发票"}).status_code == 200  # trial mode: searches are staff's


def test_cors_allows_only_configured_origins(tmp_path: Path, sops_copy: Path) -> None:
    with api_client(tmp_path, sops_copy, cors_origins="https://tenant.example.com") as c:
        ok = c.options(
            "/v1/chat", headers={"Origin": "https://tenant.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert ok.headers.get("access-control-allow-origin") == "https://tenant.example.com"
        bad = c.options(
            "/v1/chat", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in bad.headers
        # ... and on the routes a tenant's page calls only: not on staff routes (a security review)
        for path in ("/v1/cases", "/v1/sops", "/v1/reports/service", "/v1/assist/ticket"):
            staff = c.options(
                path, headers={"Origin": "https://tenant.example.com", "Access-Control-Request-Method": "GET"}
            )
            assert "access-control-allow-origin" not in staff.headers or path == "/v1/cases", path
        with_key = c.options(  # a staff key from another origin: refused on every route
            "/v1/cases",
            headers={
                "Origin": "https://tenant.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert with_key.status_code == 400
        assert "authorization" not in with_key.headers.get("access-control-allow-headers", "").lower()
        widget = c.get("/widget.css", headers={"Origin": "https://tenant.example.com"})
        assert widget.headers.get("access-control-allow-origin") == "https://tenant.example.com"


def test_kb_eval_json_reports_the_documented_keys(tmp_path: Path, sops_copy: Path) -> None:
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from tests.helpers import QUERIES

    env = {"KB_EMBEDDER": "hash", "KB_DATA_DIR": str(tmp_path / "data")}
    assert CliRunner().invoke(app, ["ingest", str(sops_copy)], env=env).exit_code == 0
    result = CliRunner().invoke(app, ["eval", str(QUERIES), "--json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert {"n", "recall@1", "recall@3", "recall@5", "mrr@10", "latency_ms", "by_kind"} <= set(body)
    assert set(body["latency_ms"]) == {"p50", "p95"} and body["n"] >= 200
    assert "tenant_phone" in body["by_kind"] and 0 <= body["recall@3"] <= 1


# -- what public callers learn about the index (no counts or publish times of staff-only material) ---------------


def test_public_search_results_do_not_reveal_the_generation(client: TestClient) -> None:
    # A generation is named after the time of the last publish, of any document: staff-only ones too.
    staff = client.post("/v1/search", json={"query": "天花板漏水"}, headers=auth(AGENT)).json()
    public = client.post("/v1/search", json={"query": "天花板漏水"}).json()
    assert staff["generation"] and public["results"] and public["generation"] is None
    assert staff["generation"] not in client.post("/v1/search", json={"query": "发票"}).text


def test_health_without_the_index_is_503_with_details_for_staff_only(client: TestClient) -> None:
    kb = client.app.state.kb_state.services.kb  # type: ignore[attr-defined]
    generation = kb.searcher.refresh()
    shutil.rmtree(kb.store.root / generation)
    kb.searcher.refresh(force=True)  # what the next check (within a second) does on its own
    staff = client.get("/healthz", headers=auth(AGENT))
    public = client.get("/healthz")
    assert staff.status_code == public.status_code == 503
    assert generation in staff.json()["reason"] and staff.json()["status"] == "error"
    assert generation not in public.text and public.json()["reason"] == "索引不可用 / the index is not available"
    assert client.post("/v1/search", json={"query": "漏水"}, headers=auth(AGENT)).status_code == 503


def test_a_server_started_before_any_ingest_is_not_ready_then_serves_what_is_published(
    tmp_path: Path, sops_copy: Path
) -> None:
    s = hash_settings(tmp_path, sops_copy)
    with TestClient(create_app(s, load_in_background=False)) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and "kb ingest" in r.json()["reason"]  # was: 200 with 0 documents
        kb = KnowledgeBase.from_settings(s, embedder=HashEmbedder())  # `kb ingest`, as another process would run it
        assert kb.ingest().ok
        kb.close()
        c.app.state.kb_state.services.kb.searcher.refresh(force=True)  # type: ignore[attr-defined]  # the check each second
        assert c.get("/healthz").status_code == 200
        assert c.post("/v1/search", json={"query": "漏水"}).json()["results"]


def test_a_pages_file_name_leads_to_the_page(client: TestClient) -> None:
    """A trial typed /trainer.html (the file's name) and got a JSON 404: the file names lead to the pages."""
    for name, page in (("/trainer.html", "/trainer"), ("/demo.html", "/demo"), ("/console.html", "/")):
        r = client.get(name, follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"] == page, name
    assert client.get("/practice.html?x=1", follow_redirects=False).headers["location"] == "/practice?x=1"
    assert "text/html" in client.get("/trainer.html").headers["content-type"]
    assert client.get("/nothing.html").status_code == 404


def test_a_trainer_tries_a_question_on_the_tenant_chat_without_logging_it(client: TestClient) -> None:
    """A trainer's trial: the hit test showed rankings, not what the chat would tell a tenant. /v1/chat/try answers
    as /v1/chat does, for trainers only, and nothing of it reaches the query log (gap report, service figures)."""
    logbook = client.app.state.kb_state.services.logbook  # type: ignore[attr-defined]
    logbook.flush()
    before = logbook.rows("SELECT COUNT(*) AS n FROM queries")[0]["n"]
    question = {"question": "怎么开发票"}
    tried = client.post("/v1/chat/try", json=question, headers=auth(TRAINER))
    assert tried.status_code == 200, tried.text
    logbook.flush()
    assert logbook.rows("SELECT COUNT(*) AS n FROM queries")[0]["n"] == before  # not logged
    asked = client.post("/v1/chat", json=question).json()
    assert (tried.json()["answer"], tried.json()["sources"]) == (asked["answer"], asked["sources"]) and asked["sources"]
    assert client.post("/v1/chat/try", json=question, headers=auth(AGENT)).status_code == 403
    assert client.post("/v1/chat/try", json=question).status_code == 401
    away = client.post("/v1/chat/try", json={"question": "今天股市怎么样"}, headers=auth(TRAINER)).json()
    assert away["handoff"] is True and away["sources"] == []  # the trainer sees the hand-over the tenant would get
