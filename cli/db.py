"""`kb db` — the service database: its schema revision and upgrades."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kb_service.db import migrate
from kb_service.db.engine import DB_ERRORS, Database
from kb_service.errors import KbError
from kb_service.settings import get_settings

app = typer.Typer(
    help="服务数据库（SQLite 或 KB_DATABASE_URL 指定的 PostgreSQL）/ the service database", no_args_is_help=True
)
out = Console(soft_wrap=True)
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="数据目录（默认 KB_DATA_DIR 或 ./data）")]


def _database(data_dir: Path | None) -> Database:
    try:
        settings = get_settings(**({"data_dir": data_dir} if data_dir is not None else {}))
        return Database.from_settings(settings)
    except KbError as exc:
        err.print(f"[red]错误 / error:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def upgrade(data_dir: DataDir = None) -> None:
    """把服务数据库升级到最新版本（服务启动时也会自动升级）/ apply pending migrations."""
    db = _database(data_dir)
    try:
        changed = migrate.upgrade(db)
        revision = migrate.current(db)
    except (*DB_ERRORS, OSError) as exc:
        err.print(f"[red]升级失败 / upgrade failed:[/red] {db.describe()}: {exc}")
        raise typer.Exit(1) from exc
    what = "已升级到 / upgraded to" if changed else "已是最新 / already at"
    out.print(f"{db.describe()}: {what} {revision}")


@app.command()
def status(data_dir: DataDir = None) -> None:
    """显示服务数据库的当前版本和最新版本 / show the database's revision and the newest one."""
    try:
        settings = get_settings(**({"data_dir": data_dir} if data_dir is not None else {}))
    except KbError as exc:
        err.print(f"[red]错误 / error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not settings.database_url and not settings.db_path.exists():  # opening it would create it (and its folder)
        err.print(
            f"尚无服务数据库 / no service database yet: {settings.db_path}（首次 kb serve 或 kb db upgrade 时创建 / "
            "made by the first `kb serve` or `kb db upgrade`）"
        )
        raise typer.Exit(1)
    db = _database(data_dir)
    try:
        revision = migrate.current(db)
    except (*DB_ERRORS, OSError) as exc:
        err.print(f"[red]无法读取 / cannot read:[/red] {db.describe()}: {exc}")
        raise typer.Exit(1) from exc
    out.print(f"{db.describe()} ({db.dialect}): {revision or '(none)'}, newest {migrate.head()}")
    if revision != migrate.head():
        raise typer.Exit(3)


@app.command("discard-pending")
def discard_pending(
    replica: Annotated[str, typer.Argument(help="副本 id（其数据目录下 replica-id 文件的内容）/ the replica's id")],
    data_dir: DataDir = None,
) -> None:
    """丢弃一个已不存在的副本中途停止的发布，解除其他副本上对这些 SOP 的 409 / forget the unfinished publishes of
    a replica that is gone for good. Only for a replica that will not start again: a running one settles its own."""
    from kb_service.db.logbook import Logbook

    logbook = Logbook(_database(data_dir))
    try:
        pending = logbook.pending_of(replica)
        newest = {r.sop_id: r for r in pending}  # a SOP's import row goes with the change after it
        for record in newest.values():
            logbook.discard_pending(record.sop_id, record.version)
            out.print(f"已丢弃 / discarded: {record.sop_id} v{record.version} ({record.action}, {record.author})")
    except (*DB_ERRORS, OSError) as exc:
        err.print(f"[red]无法读取或写入 / cannot read or write:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        logbook.close()
    if not newest:
        out.print(f"副本 {replica} 没有未完成的发布 / replica {replica} has no unfinished publish")
