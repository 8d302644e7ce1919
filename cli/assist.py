"""`kb assist replay`: stream a recorded call transcript to a running server's WS /v1/assist with its timing."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from kb_service.assist.context import CALL_ID

app = typer.Typer(help="通话辅助 / live-call assist", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True)
DRAIN_SECONDS = 1.0  # after the last segment: wait this long for the last suggestions
ANSWER_SECONDS = 10.0  # speed 0: the longest wait for one final segment's answer
ENDED_SECONDS = 5.0  # the longest wait for the acknowledgement of `end`


@dataclass(frozen=True)
class Line:
    at: float  # seconds from the start of the call
    speaker: str
    text: str
    final: bool


def read_transcript(path: Path) -> list[Line]:
    """JSON lines of {"t": seconds, "speaker": "tenant"|"agent", "text": ..., "final": true|false}, UTF-8 (with or
    without the byte-order mark Windows Notepad writes)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:  # a trial's GBK file printed a Python traceback
        raise typer.BadParameter(f"{path}: 文件不是 UTF-8 编码，请另存为 UTF-8 / the file is not UTF-8") from None
    lines: list[Line] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            lines.append(_line(path, n, raw))
    if not lines:
        raise typer.BadParameter(f"{path}: 文件里没有转写内容 / the file holds no segments")
    return sorted(lines, key=lambda x: x.at)


def _line(path: Path, n: int, raw: str) -> Line:
    """One segment, or a message that says what is wrong with the line in words (a trial read 「需要 t、speaker、text」
    for a missing comma)."""
    where = f"{path}:{n}"
    try:
        obj = json.loads(raw)
    except ValueError:
        raise typer.BadParameter(f"{where}: 这一行不是合法的 JSON / not a JSON object") from None
    if not isinstance(obj, dict):
        raise typer.BadParameter(f"{where}: 每行应是一个 {{...}} 对象 / each line must be one JSON object") from None
    missing = [k for k in ("t", "speaker", "text") if k not in obj]
    if missing:
        raise typer.BadParameter(f"{where}: 缺少 {'、'.join(missing)} / missing {', '.join(missing)}")
    try:
        at = float(obj["t"])
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{where}: t 应是秒数，例如 3.5 / t must be seconds") from None
    if at < 0 or not isinstance(obj["text"], str) or not obj["text"].strip():
        raise typer.BadParameter(f"{where}: t 不能为负，text 不能为空 / t ≥ 0, text not empty")
    if obj["speaker"] not in ("tenant", "agent"):
        raise typer.BadParameter(f"{where}: speaker 只能是 tenant 或 agent / speaker: tenant or agent")
    return Line(at, obj["speaker"], obj["text"], bool(obj.get("final", True)))


def _ws_url(url: str) -> str:
    """The socket of a server given as http(s)://host:port, ws(s)://host:port or that with /v1/assist already."""
    base = url.rstrip("/").removesuffix("/v1/assist")
    if base.startswith("http"):
        base = "ws" + base[4:]
    return base + "/v1/assist"


def _show(message: dict[str, Any], last: dict[str, tuple[str, ...]]) -> None:
    """One message from the server; `last` holds the cards printed last per call."""
    if message.get("type") == "error":
        err.print(f"[red]错误 / error:[/red] {message.get('message')}")
        return
    if message.get("type") != "suggestions":
        return
    items = message.get("items") or []
    flag = "[yellow]（匹配较弱）[/yellow]" if message.get("weak") else ""
    topic = "[cyan]新话题[/cyan] " if message.get("topic_changed") else ""
    took = f"  [dim]{message.get('took_ms')} ms[/dim]"
    ids = tuple(i["sop_id"] for i in items)
    if items and last.get(str(message.get("call_id"))) == ids and not topic:
        # the same cards again (an agent's line, a partial): one short line, not the list (a trial found it noisy)
        out.print(f"    → 建议不变：{items[0]['title']}（{items[0]['sop_id']}）{flag}{took}")
        return
    last[str(message.get("call_id"))] = ids
    shown = "；".join(f"{i['title']}（{i['sop_id']}，置信度 {i.get('match_confidence')}）" for i in items)
    out.print(f"    → {topic}建议：{shown or '无'}{flag}{took}")


def _drain(
    ws: ClientConnection,
    seconds: float,
    show: Callable[[dict[str, Any]], None],
    done: Callable[[dict[str, Any]], bool] | None = None,
) -> bool:
    """Show what arrives for `seconds`, or until a message is `done` (True then): at speed 0 each answer is shown
    under its own segment, not all of them after the whole transcript."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            return False
        show(message)
        if done is not None and done(message):
            return True
    return False


def _answers(segment: int) -> Callable[[dict[str, Any]], bool]:
    """The answer to the call's `segment`-th segment (or an error) has arrived."""
    return lambda m: m.get("type") == "error" or int(m.get("segment") or 0) >= segment


def _ended(call: str) -> Callable[[dict[str, Any]], bool]:
    """The server acknowledged `end`: the call is forgotten."""
    return lambda m: m.get("type") == "ended" and m.get("call_id") == call


@app.command()
def replay(
    transcript: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="转写文件（JSON lines）")],
    url: Annotated[
        str, typer.Option("--url", help="服务地址（默认 http://127.0.0.1:KB_PORT，KB_PORT 默认 8000）")
    ] = "",
    key: Annotated[str, typer.Option("--key", help="坐席 API 密钥（默认环境变量 KB_API_KEY）")] = "",
    speed: Annotated[float, typer.Option("--speed", min=0.0, help="播放速度倍数（0 = 不等待）")] = 1.0,
    call_id: Annotated[str, typer.Option("--call-id", help="通话编号，控制台可按它跟随")] = "",
) -> None:
    """按原始时间把一段通话转写发给正在运行的服务（WS /v1/assist），打印推送的 SOP 建议。"""
    if call_id and not re.fullmatch(CALL_ID, call_id):
        raise typer.BadParameter(
            "通话编号只能含字母、数字和 ._:-，最长 100 / letters, digits, ._:- only", param_hint="--call-id"
        )
    url = url or f"http://127.0.0.1:{os.environ.get('KB_PORT') or 8000}"  # where `kb serve` listens by default
    lines = read_transcript(transcript)
    call = call_id or f"replay-{uuid.uuid4().hex[:8]}"
    key = key or os.environ.get("KB_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    out.print(f"通话 {call}：{len(lines)} 段，{f'速度 ×{speed:g}' if speed > 0 else '不等待'}")
    started, sent = time.monotonic(), 0
    show = partial(_show, last={})
    try:
        with connect(_ws_url(url), additional_headers=headers, max_size=2**22) as ws:
            for line in lines:
                due = started + (line.at / speed if speed > 0 else 0.0)
                _drain(ws, max(0.0, due - time.monotonic()), show)
                mark = "" if line.final else " …"
                out.print(f"[bold]{'租客' if line.speaker == 'tenant' else '坐席'}[/bold]：{line.text}{mark}")
                message = {"type": "segment", "call_id": call, "speaker": line.speaker, "text": line.text}
                ws.send(json.dumps({**message, "final": line.final}, ensure_ascii=False))
                sent += 1
                if speed == 0 and line.final:  # every final segment is answered: show it before the next line
                    _drain(ws, ANSWER_SECONDS, show, _answers(sent))
            _drain(ws, DRAIN_SECONDS, show)
            ws.send(json.dumps({"type": "end", "call_id": call}))
            if _drain(ws, ENDED_SECONDS, show, _ended(call)):
                out.print(f"通话 {call} 已结束 / call ended")
            else:
                err.print(f"[yellow]未收到结束确认 / no acknowledgement of end within {ENDED_SECONDS:g} s[/yellow]")
    except InvalidStatus as exc:
        status = exc.response.status_code
        hint = "检查 --key 和 --url" if key else "没有给出密钥：用 --key 或环境变量 KB_API_KEY"
        err.print(f"[red]连接被拒绝 / refused:[/red] HTTP {status}（{hint} / check --key and --url）")
        raise typer.Exit(2) from None
    except ConnectionClosed as exc:  # a restart or shutdown mid-call (a trial read the protocol's English)
        code = exc.rcvd.code if exc.rcvd else "—"
        err.print(f"[red]连接中断 / connection closed:[/red] 服务在重放中断开（代码 {code}），重放已停止")
        raise typer.Exit(2) from None
    except OSError as exc:
        # where it tried, and how to point it elsewhere (a trial read only 「Connection refused」 for port 8000)
        err.print(
            f"[red]连接失败 / connection failed:[/red] {_ws_url(url)}：{exc}"
            "（服务是否在运行？用 --url 或 KB_PORT 指定地址）"
        )
        raise typer.Exit(2) from None
