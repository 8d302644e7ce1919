"""`kb users` — named accounts: add, list, role, disable, enable, rotate. A new key goes alone to standard output (so
that `KEY=$(kb users add 张三 --role agent)` works); every message goes to standard error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import inspect as sa_inspect

from kb_service.accounts.store import AccountError, AccountStore
from kb_service.db.engine import DB_ERRORS, Database
from kb_service.db.logbook import Logbook
from kb_service.errors import KbError
from kb_service.settings import Settings, get_settings, hide_password

app = typer.Typer(help="人员账号（坐席、培训师、管理员）/ named accounts", no_args_is_help=True)
err = Console(stderr=True)
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="数据目录（默认 KB_DATA_DIR 或 ./data）")]
BY = "cli"


@contextmanager
def _store(data_dir: Path | None) -> Iterator[AccountStore]:
    try:
        settings = get_settings(**({"data_dir": data_dir} if data_dir is not None else {}))
    except KbError as exc:  # a bad KB_ variable: named in one message
        _fail(exc)
        raise
    with _store_of(settings) as store:
        yield store


@contextmanager
def _store_of(settings: Settings) -> Iterator[AccountStore]:
    try:
        logbook = Logbook(Database.from_settings(settings))  # PostgreSQL when KB_DATABASE_URL is set
        try:
            yield AccountStore(logbook)
        finally:
            logbook.close()
    except (*DB_ERRORS, OSError) as exc:  # the database is down or unreachable: one line, not a traceback
        raise unreachable(settings, exc) from None


def unreachable(settings: Settings, exc: BaseException) -> typer.Exit:
    """Say in one line that the service database cannot be reached (no traceback); the exit to raise."""
    where = hide_password(settings.database_url) if settings.database_url else settings.db_path
    err.print(
        f"[red]服务数据库无法连接 / cannot reach the service database[/red] {where}: "
        f"{str(exc).splitlines()[0][:300]}。请检查 KB_DATABASE_URL 和数据库是否已启动（`kb db status`）"
    )
    return typer.Exit(2)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def trial_refusal(settings: Settings, unknown: list[str]) -> str | None:
    """Why a server without accounts or KB_API_KEYS must not start in trial mode (no authentication: every caller
    is an agent and reads staff-only sections), or None. Trial mode is for trying the service on one's own machine;
    a sign of a deployment means a setting went wrong (an operator's trial: a misspelt KB_DATABASE_URL, or one naming
    another database, started a replica that served staff-only text to anyone without a key)."""
    add = "先添加账号（kb users add NAME --role admin）或设置 KB_API_KEYS / add an account or set KB_API_KEYS first"
    if settings.host not in LOCAL_HOSTS:
        return (
            "没有 KB_API_KEYS 也没有账号时只能绑定 127.0.0.1 / without KB_API_KEYS or accounts the service only "
            f"binds to 127.0.0.1；{add}"
        )
    if settings.database_url:
        return (
            f"{hide_password(settings.database_url)} 中没有任何账号：使用 PostgreSQL（多副本部署）时不提供无认证的"
            "试用模式。若账号已经建好，说明 KB_DATABASE_URL 指向了另一个数据库 / this PostgreSQL database holds no "
            "account and replicas never run without authentication; if accounts exist, KB_DATABASE_URL names "
            f"another database. {add}"
        )
    if settings.proxy_list:
        return (
            "设置了 KB_TRUSTED_PROXIES（在代理之后）时不提供无认证的试用模式 / behind a proxy the service never runs "
            f"without authentication；{add}"
        )
    if unknown:
        return (
            f"未知设置：{'；'.join(unknown)}。没有账号时服务将以无认证的试用模式运行，请先改正设置 / a KB_ variable is "
            f"unknown and the service would run without authentication: fix the setting first, or {add}"
        )
    return None


def _fail(exc: KbError) -> None:
    err.print(f"[red]错误 / error:[/red] {exc}")
    raise typer.Exit(2)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="账号名（人名或工号）")],
    role: Annotated[str, typer.Option("--role", help="agent | trainer | admin")] = "agent",
    data_dir: DataDir = None,
) -> None:
    """新建账号并输出它的密钥（只输出这一次；服务只保存哈希）。"""
    try:
        with _store(data_dir) as store:
            account, key = store.add(name, role, by=BY)
    except (AccountError, KbError) as exc:
        _fail(exc)
        return
    err.print(f"已创建账号 {account.name}（{account.role}）。密钥只显示这一次，请交给本人保存 / key shown once:")
    print(key)


@app.command("list")
def list_accounts(data_dir: DataDir = None) -> None:
    """列出所有账号（不显示密钥）。"""
    with _store(data_dir) as store:
        accounts = store.list()
    table = Table("name", "role", "status", "created", "updated")
    for a in accounts:
        status = "active" if a.active else "disabled"
        table.add_row(a.name, a.role, status, _when(a.created_ts), _when(a.updated_ts))
    Console().print(table) if accounts else err.print("还没有账号 / no accounts")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@app.command("role")
def role(
    name: Annotated[str, typer.Argument()],
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="agent | trainer | admin")],
    data_dir: DataDir = None,
) -> None:
    """改变账号的角色（密钥和记录不变），运行中的服务几秒内生效。"""
    try:
        with _store(data_dir) as store:
            store.set_role(name, new_role)
    except KbError as exc:
        _fail(exc)
    err.print(f"{name} 的角色已改为 {new_role}：几秒内所有服务进程生效 / role changed")


@app.command("disable")
def disable(name: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """停用账号：运行中的服务在几秒内拒绝它的密钥。"""
    try:
        with _store(data_dir) as store:
            store.disable(name)
    except KbError as exc:
        _fail(exc)
    err.print(f"已停用 {name}：几秒内所有服务进程都会拒绝它的密钥 / disabled")


@app.command("enable")
def enable(name: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """重新启用账号（原密钥恢复有效）。"""
    try:
        with _store(data_dir) as store:
            store.enable(name)
    except KbError as exc:
        _fail(exc)
    err.print(f"已启用 {name} / enabled")


@app.command("rotate")
def rotate(name: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """为账号换一把新密钥（输出新密钥），旧密钥几秒内失效。"""
    try:
        with _store(data_dir) as store:
            _, key = store.rotate(name)
    except KbError as exc:
        _fail(exc)
        return
    err.print(f"{name} 的新密钥（只显示这一次），旧密钥几秒内失效 / new key, the old one stops working within seconds:")
    print(key)


def has_accounts(where: Path | Settings) -> bool:
    """Whether the service database holds any account (for `kb serve`'s trial-mode check: its own settings, command
    line options included, so that a bad KB_PORT beside --port is not read again here)."""
    settings = where if isinstance(where, Settings) else get_settings(data_dir=where)
    if not settings.database_url and not settings.db_path.exists():  # PostgreSQL: the accounts are there
        return False
    if settings.database_url:  # reached first, so an unreachable server is one error, not the query log's too
        probe = Database.from_settings(settings).engine
        try:
            with probe.connect() as conn:
                # No accounts table: nothing to count, and nothing created there (an operator's re-check: a start
                # refused against the wrong database, `/postgres`, had first put the service's 28 tables in it)
                if not sa_inspect(conn).has_table("accounts"):
                    return False
        finally:
            probe.dispose()
    with _store_of(settings) as store:
        return store.count() > 0
