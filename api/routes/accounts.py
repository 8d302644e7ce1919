"""Named accounts for admins: list, add, change role, disable, enable, rotate (the same as `kb users ...`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminCaller, Ready
from api.schemas import ErrorResponse
from kb_service.accounts.store import Account, AccountError, AccountExistsError, AccountRole

router = APIRouter(tags=["账号 accounts"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 409, 422, 503)}
Name = Annotated[str, Path(min_length=1, max_length=40, description="账号名")]


class AccountOut(BaseModel):
    name: str
    role: AccountRole
    active: bool
    created_ts: float
    updated_ts: float
    disabled_ts: float | None
    created_by: str


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "张三", "role": "agent"}]})

    name: str = Field(min_length=1, max_length=40)
    role: AccountRole


class NewRole(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "trainer"}]})

    role: AccountRole


class AccountKey(AccountOut):
    key: str = Field(description="新密钥：只显示这一次，服务只保存它的哈希 / shown once; only its hash is stored")


def _out(a: Account) -> AccountOut:
    return AccountOut(
        name=a.name,
        role=a.role,
        active=a.active,
        created_ts=a.created_ts,
        updated_ts=a.updated_ts,
        disabled_ts=a.disabled_ts,
        created_by=a.created_by,
    )


def _with_key(a: Account, key: str) -> AccountKey:
    return AccountKey(**_out(a).model_dump(), key=key)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except AccountExistsError as exc:
        raise HTTPException(409, str(exc)) from None
    except AccountError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/v1/users", response_model=list[AccountOut], responses=ERRORS)
async def list_users(_: AdminCaller, state: Ready) -> list[AccountOut]:
    """所有账号（不含密钥）。"""
    return [_out(a) for a in await run_in_threadpool(state.training.accounts.list)]


@router.post("/v1/users", response_model=AccountKey, status_code=201, responses=ERRORS)
async def add_user(body: NewAccount, caller: AdminCaller, state: Ready) -> AccountKey:
    """新建账号，返回其密钥（只显示一次）。"""
    account, key = await _call(state.training.accounts.add, body.name, body.role, by=caller.name)
    return _with_key(account, key)


@router.post("/v1/users/{name}/role", response_model=AccountOut, responses=ERRORS)
async def set_user_role(name: Name, body: NewRole, caller: AdminCaller, state: Ready) -> AccountOut:
    """改变账号的角色（同一个人、同一把密钥：练习记录、认证和学到的问法都留在原账号），几秒内在所有服务进程生效。"""
    if name == caller.name:
        raise HTTPException(422, "不能改变自己的角色 / you cannot change your own role")
    return _out(await _call(state.training.accounts.set_role, name, body.role))


@router.post("/v1/users/{name}/disable", response_model=AccountOut, responses=ERRORS)
async def disable_user(name: Name, caller: AdminCaller, state: Ready) -> AccountOut:
    """停用账号：它的密钥在几秒内于所有服务进程失效。"""
    if name == caller.name:
        raise HTTPException(422, "不能停用自己的账号 / you cannot disable your own account")
    return _out(await _call(state.training.accounts.disable, name))


@router.post("/v1/users/{name}/enable", response_model=AccountOut, responses=ERRORS)
async def enable_user(name: Name, _: AdminCaller, state: Ready) -> AccountOut:
    """重新启用账号（原密钥恢复有效；如密钥可能泄露请再轮换）。"""
    return _out(await _call(state.training.accounts.enable, name))


@router.post("/v1/users/{name}/rotate", response_model=AccountKey, responses=ERRORS)
async def rotate_user(name: Name, _: AdminCaller, state: Ready) -> AccountKey:
    """轮换密钥：返回新密钥，旧密钥在几秒内失效。"""
    account, key = await _call(state.training.accounts.rotate, name)
    return _with_key(account, key)
