"""The tenant's rating of a closed hand-over case (满意 / 不满意 in the widget): the service report's satisfaction."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CallerRole, Ready
from api.routes.cases import ERRORS, Token, limit_tenant, reader

router = APIRouter(tags=["转人工 cases"])


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Literal[1, -1] = Field(description="1 满意, -1 不满意")


class RatingOut(BaseModel):
    case_id: str
    rating: int


@router.post("/v1/cases/{case_id}/rating", response_model=RatingOut, responses=ERRORS)
async def rate_case(
    case_id: str, body: RatingIn, request: Request, role: CallerRole, state: Ready, x_case_token: Token = None
) -> RatingOut:
    """租客凭 `X-Case-Token` 评价已关闭的人工服务（满意 1 / 不满意 -1，可改）：服务指标的满意度。未关闭时 409。"""
    if await reader(case_id, role, x_case_token, state) != "tenant":
        raise HTTPException(403, "只有提出请求的租客可以评价 / only the tenant who asked rates the case")
    limit_tenant(state, role, request, "操作太频繁", "too many ratings")
    if not await run_in_threadpool(state.cases.rate, case_id, body.rating):
        raise HTTPException(409, "人工服务结束后才能评价 / a case is rated once it is closed")
    return RatingOut(case_id=case_id, rating=body.rating)
