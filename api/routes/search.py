"""Search and health."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import CallerRole, Ready, State
from api.schemas import ErrorResponse, Health, SearchRequest, check_query_length
from kb_service.search import SearchResponse

router = APIRouter()


class SearchOut(SearchResponse):
    query_id: int | None = None


class WhoAmI(BaseModel):
    role: str
    auth: bool


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["运维 ops"])
def healthz(state: State) -> Health | JSONResponse:
    """200 once the model and the index are loaded, 503 before (or when loading failed)."""
    if not state.ready or state.kb is None:
        body = Health(
            status="error" if state.error else "loading",
            documents=0,
            chunks=0,
            embedder="",
            generation=None,
            auth=state.settings.auth_enabled,
        )
        return JSONResponse(body.model_dump(), status_code=503)
    kb = state.kb
    generation = kb.searcher.refresh()
    chunks = kb.store.info(generation).points if generation else 0
    return Health(
        status="ok",
        documents=len(kb.searcher.catalog),
        chunks=chunks,
        embedder=kb.embedder.name,
        generation=generation,
        auth=state.settings.auth_enabled,
    )


@router.get("/v1/whoami", response_model=WhoAmI, tags=["认证 auth"])
def whoami(role: CallerRole, state: State) -> WhoAmI:
    """The role of the presented API key (public without one)."""
    return WhoAmI(role=role, auth=state.settings.auth_enabled)


@router.post(
    "/v1/search",
    response_model=SearchOut,
    tags=["检索 search"],
    responses={422: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def search(body: SearchRequest, role: CallerRole, state: Ready) -> Response:
    """检索 SOP：每个结果一份 SOP，附匹配小节、处理步骤、话术、时限和升级路径。

    Without a staff key (or with `audience: public`) only public content is searched."""
    check_query_length(body.query, state.settings.max_query_chars)
    audience = "public" if role == "public" else body.audience
    if body.explain and role != "trainer" and state.settings.auth_enabled:
        raise HTTPException(403, "命中测试需要培训师密钥 / explain needs a trainer key")
    kb, logbook = state.kb, state.logbook
    assert kb is not None and logbook is not None

    def run(query_vector: np.ndarray | None) -> tuple[SearchResponse, int]:
        # On the lane's thread (model, index, database): the event loop never waits on it. The query's vector was
        # embedded with the others of its batch.
        resp = kb.searcher.search(
            body.query,
            top_k=body.top_k,
            audience=audience,
            categories=body.filters.category,
            tags=body.filters.tags,
            explain=body.explain,
            query_vector=query_vector,
        )
        query_id = logbook.log_query(
            source="search",
            audience=audience,
            query=body.query,
            result_ids=[r.sop_id for r in resp.results],
            top_score=resp.results[0].score if resp.results else None,
            took_ms=resp.took_ms,
        )
        return resp, query_id

    resp, query_id = await state.lane.submit(body.query, run)
    # Serialised once by pydantic (the schema above documents it); FastAPI's re-validation of a large nested
    # response measurably slowed every search.
    out = SearchOut.model_construct(**dict(resp), query_id=query_id)
    return Response(out.model_dump_json(), media_type="application/json")
