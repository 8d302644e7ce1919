"""The one place where core errors and bad requests become HTTP responses (never a 500 for bad input)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.publishing import PublishStorageError
from ingest.settling import PublishUnsettledError
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import (
    DatabaseUnavailableError,
    ExampleRegressionError,
    IndexMismatchError,
    IndexNotReadyError,
    KbError,
    NotFoundError,
    SopError,
    VersionConflictError,
    WriterBusyError,
    first_line,
)

log = logging.getLogger("kb.api")


RETRY_AFTER = {"Retry-After": "5"}  # every 503 says when to come back


def error(
    status: int, code: str, message: str, details: list[str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or []}}, status_code=status, headers=headers
    )


_KB_STATUS: list[tuple[type[KbError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (VersionConflictError, 409, "version_conflict"),
    (ExampleRegressionError, 422, "example_regression"),
    (SopError, 422, "invalid_sop"),
    (IndexNotReadyError, 503, "index_not_ready"),
    (IndexMismatchError, 503, "index_mismatch"),
    # The database went away mid-publish and was not back to settle it: the outcome comes when it is (retry then)
    (PublishUnsettledError, 503, "publish_unsettled"),
    (PublishStorageError, 500, "storage_error"),  # the message says what was (not) changed and what to fix
    (DatabaseUnavailableError, 503, "database_unavailable"),
    (WriterBusyError, 503, "writer_busy"),  # an ingest or another publish holds the index: names it
]


# Fields whose limit is KB_MAX_QUERY_CHARS: the request model's own limit is only the highest any configuration allows.
# (A call segment's `text` is not one: it takes up to its model's limit and is clipped to KB_MAX_QUERY_CHARS; a trial's
# 5,001 characters were told "at most 500" while 5,000 were taken.)
_QUERY_FIELDS = {("body", "query")}
_UNPARSABLE = "There was an error parsing the body"  # Starlette's message for a body that is not UTF-8


def describe(err: dict[str, Any], query_chars: int | None = None) -> str:
    """One validation error in both languages (HTTP bodies and WebSocket messages alike)."""
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    kind = str(err.get("type", ""))
    if kind == "string_too_long" and query_chars is not None and tuple(err.get("loc", ())) in _QUERY_FIELDS:
        return f"{loc}: 最多 {query_chars} 个字符 / at most {query_chars} characters"
    if kind == "json_invalid":
        return "请求体不是合法的 JSON / malformed JSON body"
    if kind == "extra_forbidden":
        return f"不支持的字段 {loc} / unknown field '{loc}'"
    if kind == "missing" and not loc:
        return "缺少 JSON 请求体 / missing JSON body"
    if kind == "missing":
        return f"缺少字段 {loc} / missing field '{loc}'"
    ctx = err.get("ctx") or {}
    bound = next((ctx[k] for k in ("le", "ge", "lt", "gt", "max_length", "min_length") if k in ctx), None)
    if kind in _BOUNDS and bound is not None:
        shown = f"{bound:g}" if isinstance(bound, float) else str(bound)
        zh, en = _BOUNDS[kind]
        return f"{loc}: {zh.format(shown)} / {en.format(shown)}"
    if kind in _TYPES:
        return f"{loc}: {_TYPES[kind]} / {err.get('msg')}"
    # our validators' own bilingual message, without pydantic's English prefix (a trial read 「query: Value error,
    # 不能为空」)
    msg = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{loc or '请求'}: {msg}"


# pydantic's error types with a bound in their context: (Chinese, English) with the bound
_BOUNDS = {
    "less_than_equal": ("应不大于 {}", "must be ≤ {}"),
    "greater_than_equal": ("应不小于 {}", "must be ≥ {}"),
    "less_than": ("应小于 {}", "must be < {}"),
    "greater_than": ("应大于 {}", "must be > {}"),
    "string_too_long": ("最多 {} 个字符", "at most {} characters"),
    "string_too_short": ("至少 {} 个字符", "at least {} characters"),
    "too_long": ("最多 {} 项", "at most {} items"),
    "too_short": ("至少 {} 项", "at least {} items"),
}
_TYPES = {
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "string_pattern_mismatch": "格式不正确",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        state = getattr(request.app.state, "kb_state", None)
        query_chars = state.settings.max_query_chars if state is not None else None
        details = [describe(e, query_chars) for e in exc.errors()]
        return error(422, "invalid_request", "请求参数不正确 / invalid request: " + "；".join(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "请求失败 / request failed"
        if message == _UNPARSABLE:
            message = "请求体无法解析，请发送 UTF-8 编码的 JSON / the body could not be parsed: send UTF-8 JSON"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 503 and not headers:  # unavailable for now (accounts, a write): say when to come back
            headers = RETRY_AFTER
        return error(exc.status_code, f"http_{exc.status_code}", message, headers=headers)

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # The service database went away mid-request (PostgreSQL restarting, a failover): nothing was half-written
        # (every write is one transaction), so the client retries; without this it got a bare 500.
        log.warning("service database unavailable: %s", type(exc).__name__)
        msg = "服务数据库暂时不可用，请稍后再试 / the service database is unavailable right now, retry shortly"
        return error(503, "database_unavailable", msg, headers=RETRY_AFTER)

    for cls in DB_ERRORS:
        app.add_exception_handler(cls, _database)

    @app.exception_handler(KbError)
    async def _kb(_: Request, exc: KbError) -> JSONResponse:
        for cls, status, code in _KB_STATUS:
            if isinstance(exc, cls):
                details: list[str] = []
                if isinstance(exc, ExampleRegressionError):
                    details = exc.details
                elif isinstance(exc, SopError):
                    details = [str(i) for i in getattr(exc, "issues", [])] or [str(exc)]
                message = f"文档有错误 / invalid SOP: {exc}" if isinstance(exc, SopError) else str(exc)
                return error(status, code, message, details, headers=RETRY_AFTER if status == 503 else None)
        log.warning("unclassified core error: %s", first_line(exc))
        return error(400, "bad_request", str(exc))
