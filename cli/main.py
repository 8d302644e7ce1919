"""`kb` — lint, ingest, search, evaluate, preview and serve the SOP knowledge base."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import assist, db, users
from ingest.folder_check import check_folder
from ingest.indexer import IngestReport
from ingest.knowledge_base import KnowledgeBase
from kb_service.db.deployment_mark import refuse_sqlite
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import KbError
from kb_service.settings import Settings, get_settings, unknown_variables
from kb_service.trainer.evaluation import evaluate, load_queries

app = typer.Typer(
    help="公寓物业客服 SOP 知识库 / SOP knowledge base for apartment customer service",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(users.app, name="users")
app.add_typer(assist.app, name="assist")
app.add_typer(db.app, name="db")
out = Console(soft_wrap=True)  # long Chinese lines: let the terminal wrap them
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="索引目录（默认 KB_DATA_DIR 或 ./data）")]


def _settings(data_dir: Path | None = None, **extra: object) -> Settings:
    overrides: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        return get_settings(**overrides)
    except KbError as exc:  # a bad KB_ variable: its name and what is wrong, not a traceback
        _fail(exc)
        raise  # unreachable: _fail exits


def _fail(exc: KbError) -> None:
    err.print(f"[red]错误 / error:[/red] {exc}")
    raise typer.Exit(2)


def _kb(settings: Settings) -> KnowledgeBase:
    """The knowledge base of these settings, or its refusal in one message (a PostgreSQL deployment's data directory
    without KB_DATABASE_URL, kb_service/db/deployment_mark.py)."""
    try:
        return KnowledgeBase.from_settings(settings)
    except KbError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


@app.command()
def lint(
    paths: Annotated[list[Path] | None, typer.Argument(help="SOP 文件或文件夹（默认 KB_SOPS_DIR 或 sops/）")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="警告也视为失败")] = False,
) -> None:
    """检查 SOP 文档格式，逐条报告 `文件:行号: 说明`。"""
    try:
        settings = _settings()
    except KbError as exc:
        _fail(exc)
        return
    targets = paths or [settings.sops_dir]
    # files checked on their own are compared with the knowledge base they join (ids they name, repeats); a folder
    # named is a knowledge base of its own
    beside = settings.sops_dir if paths and all(p.is_file() for p in paths) else None
    checked = check_folder(targets, settings.urgent_category_set, beside=beside)
    for issue in checked.issues:
        typer.echo(str(issue))
    n_err, n_warn = checked.errors, checked.warnings
    summary = f"检查了 {checked.documents} 个文档：{n_err} 个错误，{n_warn} 个警告"
    if checked.compared:
        summary += f"（已与 {settings.sops_dir} 中其余 {checked.compared} 个文档比较）"
    typer.echo(summary)
    if n_err or (strict and n_warn):
        raise typer.Exit(1)


@app.command()
def ingest(
    sops_dir: Annotated[Path | None, typer.Argument(help="SOP 文件夹（默认 KB_SOPS_DIR 或 sops/）")] = None,
    data_dir: DataDir = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="丢弃现有索引，全部重新嵌入")] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="文件夹里没有 SOP 时也照样清空索引（默认拒绝并保留索引）")
    ] = False,
) -> None:
    """解析、校验、切块、嵌入并发布索引（增量、可中断）。"""
    settings = _settings(data_dir, sops_dir=sops_dir)
    kb = _kb(settings)
    try:
        for line in kb.recover_publishes():  # a publish cut short is finished or undone first, never reverted
            typer.echo(f"中断的发布 interrupted publish: {line}", err=True)
        if sys.stderr.isatty():
            with Progress(
                TextColumn("嵌入变更的文档"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("ingest", total=None)
                report = kb.ingest(
                    settings.sops_dir,
                    rebuild=rebuild,
                    allow_empty=allow_empty,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            report = kb.ingest(settings.sops_dir, rebuild=rebuild, allow_empty=allow_empty)
    except KbError as exc:
        _fail(exc)
        return
    finally:
        kb.close()
    _print_report(report, rebuild, settings)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: IngestReport, rebuild: bool, settings: Settings) -> None:
    # Where it read and wrote (an operator's trial forgot KB_DATA_DIR twice and built a second index in ./data unseen)
    typer.echo(f"SOP 文件夹 {settings.sops_dir.resolve()} → 索引 index {settings.data_dir.resolve()}")
    for issue in report.failed:
        typer.echo(str(issue), err=True)
    # What decides who sees a section is said here too (a re-check trial: a colleague who edits files by hand and runs
    # ingest never saw that 以下内容保密 had made a section staff-only); the rest is for `kb lint`
    audience = [i for i in report.warnings if "[内部]" in i.message]
    for issue in audience[:AUDIENCE_WARNINGS]:
        typer.echo(str(issue), err=True)
    if len(report.warnings) > min(len(audience), AUDIENCE_WARNINGS):
        typer.echo(
            f"另有 {len(report.warnings) - min(len(audience), AUDIENCE_WARNINGS)} 条警告，运行 kb lint 查看", err=True
        )
    # A rebuild (asked for, or after a layout change) re-indexes every document: they are not new ones.
    everything = rebuild or report.relayout or report.repaired or report.lost
    added = f"重建 rebuilt {len(report.added)}" if everything else f"新增 added {len(report.added)}"
    reused = f", 沿用向量 reused {report.reused_chunks}" if report.reused_chunks else ""
    typer.echo(
        f"{added}, 更新 updated {len(report.updated)}, 未变 unchanged {len(report.unchanged)}, "
        f"删除 removed {len(report.removed)}, 失败 failed {len({i.path for i in report.failed})}, "
        f"chunks {report.chunks}, 嵌入 embedded {report.embedded_chunks}{reused}, {report.seconds:.2f} s"
    )
    if report.relayout:
        typer.echo(f"向量存储方式已变更（{report.relayout}），已重建全部索引 / vector layout changed, all re-indexed")
    if report.repaired:
        taken = (
            f"沿用完好的向量 {report.reused_chunks} 块 / {report.reused_chunks} chunks' intact vectors taken"
            if report.reused_chunks
            else "全部重新嵌入 / all embedded again"
        )
        typer.echo(f"已发布的索引 {report.repaired} 已损坏，已重建全部索引 / the damaged index was rebuilt：{taken}")
    if report.lost:
        typer.echo(
            f"已发布的索引 {report.lost} 的文件夹不见了，已从头建立全部索引 / the published index's folder was gone:"
            " everything was indexed anew"
        )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="查询内容，例如 “天花板在滴水”")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50)] = 5,
    audience: Annotated[str, typer.Option("--audience", help="agent 或 public")] = "agent",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="命中测试：显示各通道排名与耗时")] = False,
    data_dir: DataDir = None,
) -> None:
    """搜索知识库，显示标题、匹配步骤和标准话术。"""
    if audience not in ("agent", "public"):
        raise typer.BadParameter("audience 只能是 agent 或 public")
    kb = _kb(_settings(data_dir))
    try:
        kb.warm_up()
        resp = kb.searcher.search(query, top_k=top_k, audience=audience, explain=explain)  # type: ignore[arg-type]
    except KbError as exc:
        _fail(exc)
        return
    finally:
        kb.close()
    if as_json:
        print(resp.model_dump_json(indent=2))
        return
    if not resp.results:
        out.print("没有找到相关 SOP。")
    for i, hit in enumerate(resp.results, start=1):
        out.print(
            f"[bold]{i}. {hit.title}[/bold]  [dim]{hit.category} · v{hit.version} · {hit.sop_id} · "
            f"{hit.score:.3f}[/dim]"
        )
        for s in hit.sections[:2]:
            out.print(f"   [cyan]{' › '.join(s.heading_path[1:])}[/cyan] [dim]({hit.path}:{s.line_start})[/dim]")
        for n, step in enumerate(hit.steps[:6], start=1):
            out.print(f"   {n}. {step}", markup=False)
        for line in hit.scripts[:3]:
            out.print(f"   [green]话术[/green] “{line}”")
        if hit.staff_only_sections and hit.audience == "public":  # as the console says it beside the steps
            inside = "、".join(hit.staff_only_sections)
            out.print(f"   [red]内部[/red] 含内部小节（不要告知租客）：{escape(inside)}")
        if hit.explain:
            ch = "  ".join(f"{k}:#{v.rank or '-'}" for k, v in hit.explain.channels.items())
            out.print(f"   [dim]{ch}[/dim]")
    out.print(f"[dim]{resp.took_ms:.1f} ms · {resp.timings_ms}[/dim]")


AUDIENCE_WARNINGS = 20  # staff-only readings `kb ingest` prints (the rest are counted)


@app.command("eval")
def eval_cmd(
    queries: Annotated[Path, typer.Argument(help="标注查询文件 (JSONL)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    split: Annotated[str, typer.Option("--split", help="all | tune | heldout")] = "all",
    show_misses: Annotated[bool, typer.Option("--misses", help="列出未排第一的查询")] = False,
    data_dir: DataDir = None,
) -> None:
    """对当前索引运行标注查询，输出 recall@1/3/5、mrr@10 和延迟。"""
    if split not in ("all", "tune", "heldout"):
        raise typer.BadParameter("split 只能是 all、tune 或 heldout")
    kb = _kb(_settings(data_dir))
    try:
        kb.warm_up()
        labeled = load_queries(queries, split)  # type: ignore[arg-type]
        result = evaluate(
            labeled, lambda q: [h.sop_id for h in kb.searcher.search(q.query, top_k=10, audience=q.audience).results]
        )
    except KbError as exc:
        _fail(exc)
        return
    finally:
        kb.close()
    misses = result.pop("misses")
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    _print_metrics("all", result)
    for kind, m in result["by_kind"].items():
        _print_metrics(kind, m)
    if show_misses:
        for m in misses:
            typer.echo(f"  {m['rank'] or '-':>2}  {m['query']}  期望 {m['expected']}  得到 {m['got']}")


def _print_metrics(label: str, m: dict[str, object]) -> None:
    lat = m["latency_ms"]
    if not isinstance(lat, dict):
        raise TypeError(f"latency_ms should be a mapping, got {lat!r}")
    typer.echo(
        f"{label:<16} n={m['n']:<4} recall@1={m['recall@1']:.3f} recall@3={m['recall@3']:.3f} "
        f"recall@5={m['recall@5']:.3f} mrr@10={m['mrr@10']:.3f} p50={lat['p50']:.1f}ms p95={lat['p95']:.1f}ms"
    )


@app.command()
def preview(
    file: Annotated[Path, typer.Argument(help="一个 SOP 文件")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """预览文档会被如何切块和索引（块、标题路径、可见范围、命中的词表词）。"""
    from ingest.preview import preview_file

    settings = _settings()
    result = preview_file(file, settings.sops_dir, settings.urgent_category_set)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        for issue in result.issues:
            out.print(issue, markup=False, highlight=False)
        for c in result.chunks:
            out.print(
                f"[bold]{' › '.join(c.heading_path)}[/bold] [dim]({c.kind}, 行 {c.line_start}-{c.line_end})[/dim] "
                f"[{'green' if c.audience == 'public' else 'yellow'}]{c.audience_reason}[/]",
                highlight=False,
            )
            out.print("   " + c.text.replace("\n", "\n   "), markup=False)
            if c.glossary:
                out.print(f"   [dim]词表：{'；'.join(c.glossary)}[/dim]")
    if not result.ok:
        raise typer.Exit(1)


def _indexed(settings: Settings) -> bool:
    """Whether a published index exists (an unreachable store counts as indexed: the workers report it)."""
    from ingest.knowledge_base import create_store

    try:
        return create_store(settings).published() is not None
    except Exception:  # only a hint at start-up: the service reports the store's state itself
        return True


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="监听地址（默认 KB_HOST 或 127.0.0.1）")] = None,
    port: Annotated[int | None, typer.Option("--port", help="端口（默认 KB_PORT 或 8000）")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="进程数（默认 KB_WORKERS，或每个 CPU 一个）")] = None,
    data_dir: DataDir = None,
) -> None:
    """启动 HTTP 服务（坐席控制台、租客聊天、API）。其他设置来自 KB_* 环境变量或 .env（见 docs/reference.md）。"""
    import os

    from api.serving import balancer, metrics
    from api.serving.logs import log_config
    from api.serving.protocol import ServerConfig

    settings = _settings(data_dir, host=host, port=port, workers=workers)
    if not settings.database_url:
        try:  # a PostgreSQL deployment's data directory, its KB_DATABASE_URL not read (an operator's trial)
            refuse_sqlite(settings.data_dir)
        except KbError as exc:
            _fail(exc)
    try:
        trial = not settings.auth_enabled and not users.has_accounts(settings)
    except (*DB_ERRORS, OSError) as exc:
        raise users.unreachable(settings, exc) from None
    refusal = users.trial_refusal(settings, unknown_variables(os.environ)) if trial else None
    if refusal is not None:
        err.print(f"[red]拒绝以无认证的试用模式启动 / refusing to start without authentication:[/red] {refusal}")
        raise typer.Exit(2)
    if not _indexed(settings):
        err.print(
            f"尚未建立索引：请先运行 kb ingest（make run 会先建索引），在此之前检索和聊天返回 503 / no index yet in "
            f"{settings.data_dir}: run `kb ingest` first (searches and chat answer 503 until then)"
        )
    # Worker processes build their own settings from the environment: hand the command-line values down.
    # (all of them: a bad KB_PORT beside a good --port stopped every worker at start, an operator's trial)
    handed = {"KB_DATA_DIR": str(settings.data_dir), "KB_SOPS_DIR": str(settings.sops_dir), "KB_HOST": settings.host}
    os.environ.update({**handed, "KB_PORT": str(settings.port), "KB_WORKERS": str(settings.workers)})
    n = settings.workers or settings.cpu_threads
    # Python code in a request holds the GIL, so one process uses about one core; a process per core scales.
    # Per-request access lines cost measurable CPU at hundreds of requests/s: only with KB_ACCESS_LOG.
    # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default (any local process could then pose as any client
    # of the rate limits): only the proxies of KB_TRUSTED_PROXIES may name the client.
    config = ServerConfig(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=log_config(),
        access_log=settings.access_log,
        proxy_headers=bool(settings.proxy_list),
        forwarded_allow_ips=settings.proxy_list,
        h11_max_incomplete_event_size=settings.max_header_bytes,  # head limit of both parsers: api/serving/protocol.py
        timeout_keep_alive=settings.keep_alive_timeout,
        request_timeout=settings.request_timeout,
    )
    # Each worker process writes its request timings to files there; a scrape of /metrics on any worker reads them all.
    with metrics.shared_dir(n):
        balancer.run(config, n)


if __name__ == "__main__":
    app()
