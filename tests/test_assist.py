"""Live-call assist: WS /v1/assist (credentials, message shapes, several calls per connection, watching a call), its
HTTP form across two worker processes, and following a call (topic change, no flicker) with the real model."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from ingest.knowledge_base import KnowledgeBase
from kb_service.assist.context import CallContext, clean
from kb_service.assist.follower import TOPIC_MARKER, Follower
from kb_service.assist.guide import ask_next, deadlines, untimed
from kb_service.assist.tickets import issue, verify
from kb_service.db.logbook import Logbook
from kb_service.embedding.embedders import HashEmbedder
from kb_service.search.confidence import Confidence
from kb_service.trainer.gaps import GapReporter
from tests.helpers import AGENT, KEYS, SOPS, TRAINER, api_client, auth, hash_settings, wait_for


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("assist")
    shutil.copytree(SOPS, tmp / "sops")
    with api_client(tmp, tmp / "sops", api_keys=KEYS) as c:
        yield c


def segment(call_id: str, text: str, speaker: str = "tenant", final: bool = True) -> str:
    return json.dumps({"type": "segment", "call_id": call_id, "speaker": speaker, "text": text, "final": final})


def refused(c: TestClient, url: str, headers: dict[str, str] | None = None) -> int | None:
    """The close code when the upgrade is refused; None when it is accepted."""
    try:
        with c.websocket_connect(url, headers=dict(headers or {})) as ws:
            ws.send_text(segment("probe", "漏水"))
            ws.receive_json()
    except WebSocketDisconnect as exc:
        return exc.code
    return None


# -- credentials -------------------------------------------------------------------------------------------------
def test_the_socket_is_refused_without_a_valid_credential(client: TestClient) -> None:
    assert refused(client, "/v1/assist") == 1008  # no key: a tenant's browser must not follow calls
    assert refused(client, "/v1/assist", auth("not-a-key-123")) == 1008
    assert refused(client, "/v1/assist", {"Authorization": "Basic abc"}) == 1008
    assert refused(client, "/v1/assist?ticket=agent.9999999999.00.forged") == 1008
    expired = issue(client.app.state.kb_state.services.assist.calls.secret, "agent", "小王", seconds=-1)  # type: ignore[attr-defined]
    assert refused(client, f"/v1/assist?ticket={expired}") == 1008
    assert refused(client, "/v1/assist", auth(AGENT)) is None
    assert refused(client, "/v1/assist", auth(TRAINER)) is None


def test_one_account_holds_a_capped_number_of_connections(tmp_path: Path) -> None:
    """A security review: one agent key opened live-assist connections without limit. With the cap at one, a second
    connection on the same key is refused (policy) while the first is open, another account is not, and the place is
    free again once the first closes."""
    shutil.copytree(SOPS, tmp_path / "sops")
    with api_client(tmp_path, tmp_path / "sops", api_keys=KEYS, assist_sockets_per_account=1) as c:
        with c.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
            ws.send_text(segment("held", "漏水"))
            assert ws.receive_json()["type"] == "suggestions"
            assert refused(c, "/v1/assist", auth(AGENT)) == 1008
            assert refused(c, "/v1/assist", auth(TRAINER)) is None  # another account's count is its own
        assert wait_for(lambda: refused(c, "/v1/assist", auth(AGENT)) is None, 10)


def test_the_console_gets_a_short_lived_ticket_with_its_key_only(client: TestClient) -> None:
    assert client.post("/v1/assist/ticket", json={}).status_code == 401
    got = client.post("/v1/assist/ticket", json={}, headers=auth(AGENT)).json()
    assert got["expires_in"] == 60
    assert refused(client, f"/v1/assist?ticket={got['ticket']}") is None
    # spent: it travels in a URL, and a security review opened a second socket with it
    assert refused(client, f"/v1/assist?ticket={got['ticket']}") is not None
    secret = client.app.state.kb_state.services.assist.calls.secret  # type: ignore[attr-defined]
    holder = verify(secret, got["ticket"])
    assert holder is not None and holder.role == "agent" and holder.who.startswith("agent:")  # the KB_API_KEYS name
    assert verify(secret, got["ticket"], now=time.time() + 61) is None
    assert verify(b"another secret", got["ticket"]) is None
    _role, rest = got["ticket"].split(".", 1)
    assert verify(secret, f"trainer.{rest}") is None  # the role is signed
    role, expires, nonce, _who, signature = got["ticket"].split(".")
    assert verify(secret, f"{role}.{expires}.{nonce}.5byg546L.{signature}") is None  # and so is the holder


# -- messages ----------------------------------------------------------------------------------------------------
def test_messages_in_and_out_have_the_documented_shapes(client: TestClient) -> None:
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(segment("call-1", "我家天花板在滴水"))
        out = ws.receive_json()
        assert out["type"] == "suggestions" and out["call_id"] == "call-1" and out["segment"] == 1
        assert isinstance(out["weak"], bool) and isinstance(out["topic_changed"], bool)
        item = out["items"][0]
        for field in ("sop_id", "title", "score", "match_confidence", "weak", "steps", "scripts", "script_lines"):
            assert field in item, field
        assert {"deadlines", "ask_next", "time_limits", "category", "version", "urgent"} <= set(item)
        assert item["urgent"] is False
        ws.send_text(segment("call-gas", "我闻到家里好大一股煤气味"))
        gas = {i["sop_id"]: i["urgent"] for i in ws.receive_json()["items"]}
        assert gas.get("emergency-gas-leak") is True, gas  # an emergency card says so (its category alone did)
        assert len(out["items"]) <= 3
        ws.send_text("不是 JSON")
        assert ws.receive_json() == {
            "type": "error",
            "call_id": None,
            "message": "消息必须是 JSON / a message must be JSON",
        }
        ws.send_text(json.dumps({"type": "hello", "call_id": "call-1"}))
        assert ws.receive_json()["call_id"] == "call-1"  # an unknown type still names the call it was about
        ws.send_text(json.dumps({"type": "segment", "call_id": "call-1", "speaker": "caller", "text": "x"}))
        bad = ws.receive_json()
        assert bad["type"] == "error" and bad["call_id"] == "call-1" and "speaker" in bad["message"]
        ws.send_text(segment("call-1", "字" * 5001))  # beyond any recogniser's turn: refused
        assert "text" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "hello"}))
        assert ws.receive_json()["type"] == "error"
        ws.send_text(segment("call-1", "楼上漏下来的"))  # the bad messages lost nothing: the call goes on
        assert ws.receive_json()["segment"] == 2


def test_a_turn_longer_than_the_query_limit_is_searched_by_its_latest_words(client: TestClient) -> None:
    turn = "那个我跟你说啊，我们这个小区物业一直都还可以，" * 30 + "可是昨天晚上开始我家卫生间天花板一直在往下滴水"
    assert len(turn) > 500
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(segment("long-turn", turn))
        out = ws.receive_json()
        assert out["type"] == "suggestions" and out["clipped"] is True, out
        assert out["items"][0]["sop_id"] == "repair-leak-ceiling"
        ws.send_text(segment("long-turn", "楼上漏下来的"))
        assert ws.receive_json()["clipped"] is False
    r = client.post("/v1/assist/long-http/segments", json={"speaker": "tenant", "text": turn}, headers=auth(AGENT))
    assert r.status_code == 200 and r.json()["clipped"] is True
    assert r.json()["items"][0]["sop_id"] == "repair-leak-ceiling"


def test_end_and_watch_are_acknowledged_and_end_works_from_another_connection(client: TestClient) -> None:
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(segment("acked", "我家天花板在滴水"))
        assert ws.receive_json()["segment"] == 1
    # The platform reconnected and only ends the call: the shared store forgets it all the same.
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(json.dumps({"type": "watch", "call_id": "acked"}))
        assert ws.receive_json() == {"type": "watching", "call_id": "acked"}
        assert ws.receive_json()["type"] == "transcript"  # then its latest suggestions
        ws.send_text(json.dumps({"type": "unwatch", "call_id": "acked"}))
        while (msg := ws.receive_json())["type"] == "suggestions":
            pass
        assert msg == {"type": "unwatched", "call_id": "acked"}
        ws.send_text(json.dumps({"type": "end", "call_id": "acked"}))
        assert ws.receive_json() == {"type": "ended", "call_id": "acked"}
        ws.send_text(segment("acked", "你好，我想问下"))
        assert ws.receive_json()["segment"] == 1  # a new call: the old one was ended


def test_several_calls_share_one_connection_and_end_clears_a_call(client: TestClient) -> None:
    with (
        client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws,
        client.websocket_connect("/v1/assist", headers=auth(AGENT)) as watcher,
    ):
        watcher.send_text(json.dumps({"type": "watch", "call_id": "a"}))
        assert watcher.receive_json() == {"type": "watching", "call_id": "a"}
        ws.send_text(segment("a", "我家天花板在滴水"))
        first_a = ws.receive_json()
        ws.send_text(segment("b", "钥匙丢了进不去门"))
        first_b = ws.receive_json()
        ws.send_text(segment("a", "楼上漏下来的", speaker="agent"))
        second_a = ws.receive_json()
        assert (first_a["call_id"], first_b["call_id"], second_a["call_id"]) == ("a", "b", "a")
        assert (first_a["segment"], first_b["segment"], second_a["segment"]) == (1, 1, 2)
        seen = [watcher.receive_json() for _ in range(2)]
        assert seen[0]["type"] == "transcript" and seen[0]["segments"][0]["text"] == "我家天花板在滴水"
        ws.send_text(json.dumps({"type": "end", "call_id": "a"}))
        assert ws.receive_json() == {"type": "ended", "call_id": "a"}  # the feeder's acknowledgement
        deadline = time.time() + 10
        while (msg := watcher.receive_json())["type"] != "ended":
            assert time.time() < deadline
        assert msg == {"type": "ended", "call_id": "a"}
        ws.send_text(segment("a", "你好"))
        assert ws.receive_json()["segment"] == 1  # a new call: the old context is gone
        ws.send_text(segment("b", "在门口"))
        assert ws.receive_json()["segment"] == 2  # the other call kept its own


def test_a_connection_watching_the_call_it_feeds_gets_each_answer_once(client: TestClient) -> None:
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(segment("own", "我家天花板在滴水"))
        assert ws.receive_json()["segment"] == 1
        ws.send_text(json.dumps({"type": "watch", "call_id": "own"}))
        ws.send_text(segment("own", "楼上漏下来的"))
        time.sleep(1.0)  # several looks of the watch at the call
        ws.send_text(json.dumps({"type": "hello"}))  # answered with an error: everything before it has arrived
        seen = []
        while (msg := ws.receive_json())["type"] != "error":
            seen.append(msg)
        assert [m.get("segment") for m in seen if m["type"] == "suggestions"] == [2], seen
        assert any(m["type"] == "transcript" for m in seen)  # the watch itself works


def test_a_reconnecting_platform_continues_its_call_and_binary_frames_are_read(client: TestClient) -> None:
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_bytes(segment("reconnect", "我家卫生间天花板一直在滴水").encode())  # JSON in a binary frame
        assert ws.receive_json()["segment"] == 1
    # The connection dropped without `end`; the platform reconnects and goes on with the same call.
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(segment("reconnect", "楼上漏下来的", speaker="tenant"))
        answer = ws.receive_json()
        assert answer["segment"] == 2 and answer["items"][0]["sop_id"] == "repair-leak-ceiling"
        ws.send_text(json.dumps({"type": "end", "call_id": "reconnect"}))


def test_a_disabled_key_stops_an_open_socket(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.routes import assist as assist_route

    services = client.app.state.kb_state.services  # type: ignore[attr-defined]
    _, key = services.training.accounts.add("通话坐席郑", "agent", by="test")
    monkeypatch.setattr(assist_route, "RECHECK_SECONDS", 0.0)
    with client.websocket_connect("/v1/assist", headers=auth(str(key))) as ws:
        ws.send_text(segment("cut", "我家天花板在滴水"))
        assert ws.receive_json()["segment"] == 1
        services.training.accounts.disable("通话坐席郑")
        time.sleep(2.5)  # the directory trusts what it read for 2 s
        ws.send_text(segment("cut", "楼上漏下来的"))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


def test_a_disabled_account_s_idle_watching_socket_is_closed_too(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integrator's console only watched a call: 13 s after the account was disabled it still received the live
    transcript, because the key was checked only when the connection sent something."""
    from api.routes import assist as assist_route

    services = client.app.state.kb_state.services  # type: ignore[attr-defined]
    _, key = services.training.accounts.add("旁听坐席钱", "agent", by="test")
    monkeypatch.setattr(assist_route, "RECHECK_SECONDS", 0.0)
    with client.websocket_connect("/v1/assist", headers=auth(str(key))) as ws:
        ws.send_text(json.dumps({"type": "watch", "call_id": "idle"}))
        assert ws.receive_json() == {"type": "watching", "call_id": "idle"}
        services.training.accounts.disable("旁听坐席钱")
        closed: dict[str, object] = {}

        def read() -> None:  # nothing sent since: the connection is closed all the same
            try:
                closed["message"] = ws.receive_json()
            except WebSocketDisconnect as exc:
                closed["code"] = exc.code

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(15)
        assert closed == {"code": 1008}, "still open 15 s after the account was disabled"


def test_a_console_socket_outlives_the_minute_its_ticket_is_valid_for(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ticket opens a socket within its minute; the open socket is checked for its holder's account only (with the
    credential checked every few seconds, an expired ticket would close every console after a minute)."""
    from api.routes import assist as assist_route
    from kb_service.assist.tickets import issue

    services = client.app.state.kb_state.services  # type: ignore[attr-defined]
    services.training.accounts.add("控制台坐席孙", "agent", by="test")
    monkeypatch.setattr(assist_route, "RECHECK_SECONDS", 0.0)
    # valid long enough to open the socket on a busy machine (CI's four workers took over a second for a 1 s one)
    short = issue(services.assist.calls.secret, "agent", "控制台坐席孙", seconds=5)
    expires = time.time() + 5
    with client.websocket_connect(f"/v1/assist?ticket={short}") as ws:
        time.sleep(max(0.0, expires - time.time()) + 1.5)  # the ticket has expired, the account is active
        ws.send_text(segment("kept", "我家天花板在滴水"))
        assert ws.receive_json()["segment"] == 1
    assert refused(client, f"/v1/assist?ticket={short}") == 1008  # it opens nothing new


def test_an_open_socket_stays_while_the_accounts_cannot_be_read(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database restart is no refused key: the re-check keeps the connection (every socket closed with 1008
    otherwise, once the directory's grace ran out)."""
    from fastapi import HTTPException

    from api.routes import assist as assist_route

    async def unavailable(*_: object) -> None:
        raise HTTPException(503, "accounts cannot be read")

    monkeypatch.setattr(assist_route, "RECHECK_SECONDS", 0.0)
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        monkeypatch.setattr(assist_route, "resolve_caller", unavailable)
        time.sleep(0.5)  # the guard has checked several times
        ws.send_text(segment("outage", "我家天花板在滴水"))
        assert ws.receive_json()["segment"] == 1


def test_a_ticket_stops_working_when_its_holders_account_is_disabled(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's socket (opened with a ticket) closes like a key's, and the ticket opens no new socket."""
    from api.routes import assist as assist_route

    services = client.app.state.kb_state.services  # type: ignore[attr-defined]
    _, key = services.training.accounts.add("票据坐席吴", "agent", by="test")
    monkeypatch.setattr(assist_route, "RECHECK_SECONDS", 0.0)
    ticket = client.post("/v1/assist/ticket", json={}, headers=auth(str(key))).json()["ticket"]
    with client.websocket_connect(f"/v1/assist?ticket={ticket}") as ws:
        ws.send_text(segment("cut-t", "我家天花板在滴水"))
        assert ws.receive_json()["segment"] == 1
        services.training.accounts.disable("票据坐席吴")
        ws.send_text(segment("cut-t", "楼上漏下来的"))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008
    assert refused(client, f"/v1/assist?ticket={ticket}") == 1008  # still within its 60 s


def test_partials_overtaken_by_a_newer_segment_of_their_call_are_skipped(client: TestClient) -> None:
    """A platform streaming faster than the searches: stale partials are not searched, the final is answered."""
    words = "我家卫生间天花板一直在滴水楼上漏下来的地上都湿了"
    follower = client.app.state.kb_state.services.assist.follower  # type: ignore[attr-defined]
    searched: list[str] = []
    step = follower.step

    def counted(ctx: CallContext, *args: Any, **kwargs: Any) -> Any:
        searched.append(ctx.call_id)
        return step(ctx, *args, **kwargs)

    follower.step = counted
    try:
        with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
            for n in range(1, len(words)):
                ws.send_text(segment("burst", words[:n], final=False))
            ws.send_text(segment("burst-other", "钥匙丢了进不去门"))  # another call's final in between is answered
            ws.send_text(segment("burst", words))
            ws.send_text(json.dumps({"type": "hello"}))  # answered with an error: everything before it has arrived
            answers = []
            while (msg := ws.receive_json())["type"] != "error":
                answers.append(msg)
        final = [a for a in answers if a["call_id"] == "burst"][-1]
        assert final["items"][0]["sop_id"] == "repair-leak-ceiling"
    finally:
        follower.step = step
    assert searched.count("burst") < len(words)  # stale partials were never searched
    assert final["segment"] == len(words)  # but counted: `segment` numbers every segment the call received
    assert [a["call_id"] for a in answers].count("burst-other") == 1


def test_unknown_fields_are_refused_by_the_http_form_and_ignored_on_the_socket(client: TestClient) -> None:
    body = {"speaker": "tenant", "text": "天花板在滴水", "final": True, "asr_confidence": 0.93}
    assert client.post("/v1/assist/extra/segments", json=body, headers=auth(AGENT)).status_code == 422
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(json.dumps({"type": "segment", "call_id": "extra-ws", **body}))
        assert ws.receive_json()["type"] == "suggestions"


def test_errors_name_the_limit_that_applies_and_read_the_same_on_both_forms(client: TestClient) -> None:
    """An integrator's trial: 5,001 characters were refused with "at most 500" while 5,000 were taken (and clipped),
    and the socket's errors were pydantic's English."""
    long = {"speaker": "tenant", "text": "漏" * 5001}
    refused = client.post("/v1/assist/limits/segments", json=long, headers=auth(AGENT))
    assert refused.status_code == 422 and "最多 5000 个字符" in refused.json()["error"]["message"]
    taken = client.post("/v1/assist/limits/segments", json={**long, "text": "漏" * 5000}, headers=auth(AGENT))
    assert taken.status_code == 200 and taken.json()["clipped"]
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(json.dumps({"type": "segment", "call_id": "limits-ws", "speaker": "landlord", "text": "漏水"}))
        error = ws.receive_json()
        assert error["type"] == "error" and "speaker" in error["message"] and "消息格式错误" in error["message"]
        ws.send_text(json.dumps({"type": "segment", "call_id": "limits-ws", "speaker": "tenant", "text": "漏" * 5001}))
        assert "最多 5000 个字符" in ws.receive_json()["message"]


def test_the_http_form_keeps_the_call_between_requests(client: TestClient) -> None:
    post = client.post
    assert post("/v1/assist/h-1/segments", json={"speaker": "tenant", "text": "漏水"}).status_code == 401
    first = post("/v1/assist/h-1/segments", json={"speaker": "tenant", "text": "漏水"}, headers=auth(AGENT)).json()
    partial = {"speaker": "tenant", "text": "楼上", "final": False}
    second = post("/v1/assist/h-1/segments", json=partial, headers=auth(AGENT)).json()
    assert (first["segment"], second["segment"]) == (1, 2)
    assert second["items"] and "changed" in second
    assert post("/v1/assist/h-1/end", json={}, headers=auth(AGENT)).status_code == 204
    again = post("/v1/assist/h-1/segments", json={"speaker": "tenant", "text": "漏水"}, headers=auth(AGENT)).json()
    assert again["segment"] == 1
    bad = post("/v1/assist/bad id/segments", json={"speaker": "tenant", "text": "x"}, headers=auth(AGENT))
    assert bad.status_code == 422


def test_a_retried_segment_with_the_same_id_is_taken_once(client: TestClient) -> None:
    """An integrator's trial: a platform's retry of one POST added the same sentence three times (seg 1, 2, 3)."""
    body = {"speaker": "tenant", "text": "我家洗衣机坏了 转不起来", "segment_id": "utt-1"}
    answers = [client.post("/v1/assist/retry-1/segments", json=body, headers=auth(AGENT)).json() for _ in range(3)]
    assert [a["segment"] for a in answers] == [1, 1, 1]
    assert answers[1]["items"] and answers[1]["items"][0]["sop_id"] == answers[0]["items"][0]["sop_id"]
    other = {**body, "text": "而且还漏水", "segment_id": "utt-2"}
    assert client.post("/v1/assist/retry-1/segments", json=other, headers=auth(AGENT)).json()["segment"] == 2
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        message = {"type": "segment", "call_id": "retry-ws", **body}
        ws.send_text(json.dumps(message))
        assert ws.receive_json()["segment"] == 1
        ws.send_text(json.dumps(message))  # the retry is not taken again, and answered as the HTTP form answers it
        retried = ws.receive_json()
        assert (retried["segment"], retried["changed"]) == (1, False) and retried["items"], retried
        ws.send_text(json.dumps({**message, "text": "而且还漏水", "segment_id": "utt-2"}))
        assert ws.receive_json()["segment"] == 2
    assert [a["repeated"] for a in answers] == [False, True, True]
    assert (retried["repeated"], retried["clipped"]) == (True, False)  # the socket's retry answers as the form's


def test_a_final_segment_under_its_partials_id_is_taken(client: TestClient) -> None:
    """An integrator's trial: recognisers send an utterance's partials and its final under one id; the final
    我的门禁卡丢了，进不去大门 was dropped as a retry of its partial 我的门禁卡, on both forms."""
    url = "/v1/assist/partial-id/segments"
    partial = {"speaker": "tenant", "text": "我的门禁卡", "final": False, "segment_id": "u1"}
    final = {**partial, "text": "我的门禁卡丢了，进不去大门", "final": True}
    assert client.post(url, json=partial, headers=auth(AGENT)).json()["repeated"] is False
    taken = client.post(url, json=final, headers=auth(AGENT)).json()
    assert taken["repeated"] is False
    said = client.get("/v1/assist/partial-id", headers=auth(AGENT)).json()["segments"]
    assert [(t["text"], t["final"]) for t in said] == [("我的门禁卡丢了，进不去大门", True)]
    assert client.post(url, json=final, headers=auth(AGENT)).json()["repeated"] is True  # its retry is not
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        for message in (partial, final):
            ws.send_text(json.dumps({"type": "segment", "call_id": "partial-ws", **message}))
        answers = [ws.receive_json() for _ in range(2)]
        assert [a.get("repeated") for a in answers] == [False, False], answers
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:  # a reconnect retries its last final
        ws.send_text(json.dumps({"type": "segment", "call_id": "partial-ws", **final}))
        again = ws.receive_json()  # a re-check got no answer here: the new connection had none to repeat
        assert (again["repeated"], again["segment"]) == (True, answers[1]["segment"]) and again["items"], again


def test_a_calls_pinned_procedure_is_its_outcome_after_the_call_ends(client: TestClient) -> None:
    """An integrator's trial: nothing told the platform which procedure the agent used (pins stayed in the browser)."""
    said = {"speaker": "tenant", "text": "我家卫生间天花板一直在滴水"}
    client.post("/v1/assist/out-1/segments", json=said, headers=auth(AGENT)).raise_for_status()
    assert client.get("/v1/assist/out-1").status_code == 401
    assert client.post("/v1/assist/out-1/pins", json={"sop_id": "no-such"}, headers=auth(AGENT)).status_code == 404
    pinned = client.post("/v1/assist/out-1/pins", json={"sop_id": "repair-leak-ceiling"}, headers=auth(AGENT))
    assert pinned.status_code == 201 and pinned.json()["title"]
    live = client.get("/v1/assist/out-1", headers=auth(AGENT)).json()
    assert live["active"] and live["segments"][0]["text"] == said["text"]
    assert live["suggestions"][0]["sop_id"] == "repair-leak-ceiling"
    assert [p["sop_id"] for p in live["pins"]] == ["repair-leak-ceiling"]
    # each pin carries its SOP as a card, so a console following the call in another tab shows it pinned there too
    card = live["pins"][0]["item"]
    assert card["sop_id"] == "repair-leak-ceiling" and card["steps"] and card["ask_next"], card
    assert any(d["minutes"] == 30 for d in card["deadlines"]), card["deadlines"]
    client.post("/v1/assist/out-1/end", json={}, headers=auth(AGENT))
    ended = client.get("/v1/assist/out-1", headers=auth(AGENT)).json()
    assert not ended["active"] and ended["segments"] == [] and ended["pins"][0]["sop_id"] == "repair-leak-ceiling"
    assert client.get("/v1/assist/never-called", headers=auth(AGENT)).status_code == 404


def test_live_calls_are_listed_for_staff_latest_first_without_their_words(client: TestClient) -> None:
    """A team lead's trial: the console had no list of the calls going on, only a box for a call id."""
    said = {"speaker": "tenant", "text": "我家卫生间天花板一直在滴水"}
    client.post("/v1/assist/live-a/segments", json=said, headers=auth(AGENT)).raise_for_status()
    client.post("/v1/assist/live-b/segments", json={**said, "text": "钥匙丢了进不去家"}, headers=auth(AGENT))
    assert client.get("/v1/calls/live").status_code == 401
    listed = client.get("/v1/calls/live", headers=auth(AGENT)).json()
    ids = [c["call_id"] for c in listed]
    assert ids.index("live-b") < ids.index("live-a")  # the latest first
    a = next(c for c in listed if c["call_id"] == "live-a")
    assert a["segments"] == 1 and a["topic"] == "天花板、墙面漏水渗水处理" and a["started"] <= a["updated"]
    assert "滴水" not in json.dumps(listed, ensure_ascii=False)  # the list names calls, it does not repeat them
    assert not a["urgent"] and not a["weak"]
    # an emergency is listed first, though another call spoke later (tests/test_database_stores.py: a weak match)
    client.post("/v1/assist/live-c/segments", json={**said, "text": "厨房里有很大的煤气味"}, headers=auth(AGENT))
    client.post("/v1/assist/live-d/segments", json={**said, "text": "热水器不出热水"}, headers=auth(AGENT))
    listed = client.get("/v1/calls/live", headers=auth(AGENT)).json()  # other tests' calls are listed too
    mine = [c for c in listed if c["call_id"] in ("live-c", "live-d")]
    assert [c["call_id"] for c in mine] == ["live-c", "live-d"] and mine[0]["urgent"], listed
    urgent = [c["urgent"] for c in listed]
    assert urgent == sorted(urgent, reverse=True), listed  # every emergency before every other call
    client.post("/v1/assist/live-a/end", json={}, headers=auth(AGENT))
    assert "live-a" not in [c["call_id"] for c in client.get("/v1/calls/live", headers=auth(AGENT)).json()]


# -- core pieces -------------------------------------------------------------------------------------------------
def test_speech_recognition_noise_is_cleaned_without_eating_numbers_or_words() -> None:
    assert clean("嗯嗯 那个 我我我家漏水漏水漏水了") == "我家漏水了"
    assert clean("师傅快来检查检查") == "师傅快来检查检查"  # a word said twice is speech, read as search reads it
    assert clean("喂那个就") == "" and clean("对") == "对"  # a greeting and one character: nothing to search
    assert "1101" in clean("1101 房天天有人敲门")
    assert "天天" in clean("天天有人敲门")
    # A-not-A questions repeat two characters and are no stutter: 能不能不赔钱 lost its meaning as 能不赔钱.
    assert clean("能不能不赔钱") == "能不能不赔钱" and clean("是不是不行") == "是不是不行"
    # Sound words repeat by nature and tell noises apart: they are what the tenant heard, not a stutter.
    assert clean("楼上咚咚咚的") == "楼上咚咚咚的" and clean("空调咔哒咔哒响") == "空调咔哒咔哒响"


def test_time_limits_and_questions_come_from_the_sop_text() -> None:
    assert deadlines(["- 扣款争议：管家24小时内给出核对结果；店长复核48小时内完成。"])[0]["label"] == (
        "扣款争议：管家24小时内给出核对结果"
    )
    limits = deadlines(
        ["- 接报后 5 分钟内建单并派单。\n- 持续滴水：30 分钟内到场，到场后 2 小时内关断水源。\n- 3 个工作日内完成"]
    )
    assert [(d["label"], d["minutes"], d["starts"]) for d in limits] == [
        ("接报后 5 分钟内建单并派单", 5.0, "call"),  # counted from the call itself
        ("持续滴水：30 分钟内到场", 30.0, "case"),  # only when it keeps dripping: the agent says it applies
        ("到场后 2 小时内关断水源", 120.0, "event"),  # from arriving on site: the agent starts it
    ]
    assert [d["starts"] for d in deadlines(["- 报修后5 分钟内联系您\n- 结案后24小时内回访"])] == ["call", "event"]
    assert deadlines(["- 夜间（22:00–次日 7:00）：15 分钟内电话提醒"])[0]["label"] == "夜间：15 分钟内电话提醒"
    # Who acts is no circumstance; the season, a case's name and a grade are (a trial ran 冬季 and 其他月份 together)
    told = "- 冬季（11 月–次年 3 月）：4 小时内到场；其他月份：24 小时内到场。"
    told += "\n- 安保：5 分钟内到达；维保单位 30 分钟内到场\n- 无人被困的故障 2 小时内维保到场"
    told += "\n- 一级：值班主管30分钟内回电\n- 辱骂结束通话后：值班主管30分钟内回电"
    assert [d["starts"] for d in deadlines([told])] == ["case", "case", "call", "call", "case", "case"]
    assert deadlines([told.split("\n")[-1]])[0]["starts"] == "event"  # after the call ended, not from it
    # a circumstance the calendar or the clock decides carries its period; 其他月份 is the rest of the year
    seasons = deadlines(["- 冬季（11 月–次年 3 月）：4 小时内到场；其他月份：24 小时内到场。"])
    assert [d.get("period") for d in seasons] == [{"months": [11, 12, 1, 2, 3]}, {"months": [4, 5, 6, 7, 8, 9, 10]}]
    night = deadlines(["- 夜间（22:00–次日 7:00）：15 分钟内电话提醒，30 分钟内安保上门\n- 装修违规：30 分钟内到场"])
    assert [d.get("period") for d in night] == [{"minutes": [1320, 420]}, {"minutes": [1320, 420]}, None]
    # what gives no countdown is said in the trainer's preview (a trial's 48 小时内上门 vanished without a word)
    assert untimed(["- 加急单：24 小时内上门；普通单：48 小时内上门。\n- 3 个工作日内完成"]) == [
        "普通单：48 小时内上门",
        "3 个工作日内完成",
    ]
    asks = ask_next(["问清漏水位置和面积。", "建单"], ["您好。", "请问是从哪里滴下来的？"])
    assert asks == ["问清漏水位置和面积", "请问是从哪里滴下来的？"]
    # A trial: a step was cut inside its bracket, and instructions ending in 好吗？ were listed as questions
    step = "确认热水器类型：请租客描述外观（挂在厨房、阳台带排烟管的是燃气；卫生间方形大桶的是电热水器）。再派单"
    told = "您先听我说，现在不要开灯、不要打电话，先把燃气阀门关上，好吗？"
    assert ask_next([step], [told, "请问您现在在屋里吗？好吗？"]) == [step.split("。")[0], "请问您现在在屋里吗？好吗？"]
    # A trial: the list read greetings and what the agent does in the company's systems. The question is listed
    # without its greeting or the instructions after it; a check in the systems is no question to the tenant.
    lines = ["您好，这里是安居优寓客服，请问门锁现在是完全没反应？", "您现在出门了吗？好的，挂了电话后请您打电话。"]
    lines.append("没关系，谁都有手头紧的时候。您看大概哪天能付上？我先帮您登记。")
    steps = ["核实租客身份和退租单号，在系统查看结算单状态", "确认热水器类型：在工单系统查设备清单，或请租客描述外观"]
    assert ask_next(steps, lines) == [
        "确认热水器类型：在工单系统查设备清单，或请租客描述外观",
        "请问门锁现在是完全没反应？",
        "您现在出门了吗？",
        "您看大概哪天能付上？",
    ]
    # A trial: 「好的，水已经关住了，…」 was listed before anyone had said the water was off. What has happened is left
    # out; a question that only starts with a condition keeps it.
    done = "好的，水已经关住了，我这边给您约维修师傅，今天下午或者明天上午哪个时间您方便？"
    assert ask_next([], [done, "为了查清楚，能把截图发给我吗？", "好的，您是住在几栋？"]) == [
        "我这边给您约维修师傅，今天下午或者明天上午哪个时间您方便？",
        "为了查清楚，能把截图发给我吗？",
        "您是住在几栋？",
    ]


def test_a_call_survives_its_round_trip_through_the_shared_store() -> None:
    ctx = CallContext("x")
    ctx.add("tenant", "我的手机号 13812345678 天花板漏水", True)
    ctx.add("agent", "好的", False)
    back = CallContext.from_dict(json.loads(json.dumps(ctx.to_dict())))
    assert back == ctx
    assert "13812345678" not in json.dumps(back.transcript(), ensure_ascii=False)  # shown text is masked
    # A call stored by a newer release (a field this one does not know) still reads, mid-upgrade
    assert CallContext.from_dict({**ctx.to_dict(), "spoken_language": "zh"}) == ctx


# -- following a call with the real model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def follower(use_kb: KnowledgeBase) -> Follower:
    return Follower(use_kb.searcher, Confidence())


def top(answer: Any) -> str:
    return str(answer.items[0]["sop_id"])


def test_a_topic_change_brings_the_new_sop_first_within_one_segment(follower: Follower) -> None:
    ctx = CallContext("topic")
    follower.step(ctx, "tenant", "喂你好，我家卫生间天花板一直在滴水", True)
    leak = follower.step(ctx, "tenant", "应该是楼上漏下来的，地上都湿了", True)
    assert leak is not None and top(leak) == "repair-leak-ceiling"
    switched = follower.step(ctx, "tenant", "还有就是我钥匙也弄丢了，现在进不去门", True)
    assert switched is not None and top(switched) == "access-lost-key"
    assert switched.topic_changed


def test_a_danger_said_mid_call_brings_its_emergency_procedure_first_and_not_weak(follower: Follower) -> None:
    """A trial's calls: a water heater that would not light, then 臭鸡蛋 smell and dizziness; a ceiling seep that
    turned into water pouring down a light and into the bedroom. The repair cards stayed first, the emergency ones
    second and marked weak."""
    ctx = CallContext("gas")
    heater = follower.step(ctx, "tenant", "我家热水器打不着火，啪啪啪响就是不出热水", True)
    assert heater is not None and top(heater) == "repair-no-hot-water"
    follower.step(ctx, "agent", "好的，您家是燃气热水器对吧？燃气表里还有余额吗？", True)
    gas = follower.step(ctx, "tenant", "哎不对 我闻到一股臭味 像臭鸡蛋那种 我有点头晕", True)
    assert gas is not None and top(gas) == "emergency-gas-leak" and gas.topic_changed
    assert gas.items[0]["weak"] is False and gas.weak is False
    after = follower.step(ctx, "tenant", "好好好 阀门是哪个", True)  # a question about it stays with it
    assert after is not None and top(after) == "emergency-gas-leak" and after.items[0]["weak"] is False
    ctx = CallContext("flood")
    seep = follower.step(ctx, "tenant", "我家那个厕所顶上在往下渗水，墙上都黄了一大片", True)
    assert seep is not None and top(seep) == "repair-leak-ceiling"
    flood = follower.step(ctx, "tenant", "哗哗的往下流 灯里面都在滴水 都流到卧室去了", True)
    assert flood is not None and top(flood) == "emergency-flooding" and flood.topic_changed


def test_a_danger_told_over_a_pause_stays_first_from_where_its_words_start(follower: Follower) -> None:
    """On the phone a tenant pauses between the thing and what it does (我家卫生间的水管 · 爆了; 那个燃气 · 味道很大):
    the pause read as a comma hid the danger, and once found, the new topic started at 爆了 alone, so the next
    question (我现在该怎么办) lost the emergency procedure to the safety guide and then to the repair guide."""
    for call, emergency in (
        (["水费怎么交", "哎呀我家卫生间的水管", "爆了", "我现在该怎么办", "要不要找人修"], "emergency-flooding"),
        (["我家热水器打不着火", "然后那个燃气", "味道很大", "我要不要开窗"], "emergency-gas-leak"),
    ):
        ctx = CallContext("pause")
        follower.step(ctx, "tenant", call[0], True)
        follower.step(ctx, "tenant", call[1], True)
        found = follower.step(ctx, "tenant", call[2], True)
        assert found is not None and top(found) == emergency and found.topic_changed, call
        assert ctx.tenant_context().endswith(f"{call[1][-2:]}，{call[2]}")  # the topic holds the thing named
        for later in call[3:]:
            answer = follower.step(ctx, "tenant", later, True)
            assert answer is not None and top(answer) == emergency, (call, later)
            assert answer.items[0]["weak"] is False
    # A re-check's call: smoke told with how much of it (冒了好多烟) after another topic raised nothing
    ctx = CallContext("smoke")
    tops = [
        follower.step(ctx, "tenant", said, True) for said in ("我想问下垃圾怎么分类", "楼下冒了好多烟", "我要不要下楼")
    ]
    assert [top(t) for t in tops if t is not None] == [
        "cleaning-service",
        "emergency-fire-alarm",
        "emergency-fire-alarm",
    ]


def test_the_tenant_turn_is_their_words_since_the_agent_last_spoke() -> None:
    ctx = CallContext("turns")
    ctx.add("tenant", "马桶一直在流水", True)
    ctx.add("tenant", "嘶嘶地响", True)
    assert ctx.tenant_turn() == ctx.tenant_context() == "马桶一直在流水，嘶嘶地响"  # a pause reads as a comma
    ctx.add("agent", "请问是哪个房间？", True)
    assert ctx.tenant_turn() == ""
    ctx.add("tenant", "三楼", True)
    ctx.add("tenant", "302", False)
    assert ctx.tenant_turn() == "三楼，302"
    assert ctx.tenant_context() == "马桶一直在流水，嘶嘶地响，三楼，302"
    ctx.add("tenant", "302。", True)  # a segment the recogniser punctuated gets no second mark
    ctx.add("tenant", "有人在吗", True)
    assert ctx.tenant_turn() == "三楼，302。有人在吗"


def test_one_turn_cut_at_pauses_is_ranked_like_a_search_of_the_whole_turn(
    follower: Follower, use_kb: KnowledgeBase
) -> None:
    """Within a turn the tenant goes on describing one thing: no lean toward its last clause, and the recogniser's
    pauses read as the commas of the same words typed."""
    pieces = ["热水器打不着火", "洗澡洗一半变凉", "水冻得我直哆嗦"]
    ctx = CallContext("one-turn")
    answer = None
    for piece in pieces:
        answer = follower.step(ctx, "tenant", piece, True)
    plain = use_kb.searcher.search("，".join(pieces), top_k=5, audience="agent").results
    assert answer is not None
    assert [i["sop_id"] for i in answer.items] == [h.sop_id for h in plain[:3]]
    assert [i["score"] for i in answer.items] == [round(h.score / plain[0].score, 4) for h in plain[:3]]


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        ("还有个事儿我家那个网一直连不上", "network-wifi"),  # the leak still ranks among these words' first three
        ("对了我家空调也不制冷了", "repair-air-conditioner"),
        ("还有就是家里好多蟑螂", "pest-control"),
    ],
)
def test_an_announced_topic_is_followed_even_when_its_partials_already_moved_the_first_card(
    follower: Follower, then: str, expected: str
) -> None:
    ctx = CallContext("announced")
    assert top(follower.step(ctx, "tenant", "我家卫生间天花板一直在滴水", True)) == "repair-leak-ceiling"
    for n in range(2, len(then), 3):  # the recogniser's partials of the new words come first
        follower.step(ctx, "tenant", then[:n], False)
    switched = follower.step(ctx, "tenant", then, True)
    assert switched is not None and top(switched) == expected and switched.topic_changed
    assert "repair-leak-ceiling" not in [i["sop_id"] for i in switched.items[:1]]
    assert ctx.tenant_context() == clean(then)  # the new topic's context starts at these words


def test_a_new_turn_after_the_agent_spoke_may_start_a_topic_and_an_answer_does_not(follower: Follower) -> None:
    ctx = CallContext("turns-topic")
    assert top(follower.step(ctx, "tenant", "我家卫生间天花板一直在滴水", True)) == "repair-leak-ceiling"
    follower.step(ctx, "agent", "请问是哪个房间", True)
    answered = follower.step(ctx, "tenant", "三楼302卫生间", True)  # an answer to the agent's question
    assert answered is not None and top(answered) == "repair-leak-ceiling" and not answered.topic_changed
    follower.step(ctx, "agent", "好的已经给您登记了，师傅半小时内到", True)
    switched = follower.step(ctx, "tenant", "我想问下停车月卡怎么办理", True)  # unannounced, but a new turn
    assert switched is not None and top(switched) == "parking" and switched.topic_changed


@pytest.mark.parametrize(
    ("said", "announces"),
    [
        ("另外，我家钥匙也丢了", True),
        ("嗯另外我想问下停车", True),
        ("好的。另外我那个门锁也坏了", True),
        ("还有个事，空调不制冷", True),
        ("要另外交钱吗", False),
        ("另外交钱吗", False),
        ("押金是另外算的吗", False),
        ("那我换个话题，停车怎么办", True),
        ("合租住不惯，想换个一居室整租的", False),  # a room change call, not another topic
        ("能不能给我换个软管", False),
    ],
)
def test_another_topic_is_announced_by_words_that_start_a_clause(said: str, announces: bool) -> None:
    assert (TOPIC_MARKER.search(said) is not None) is announces


def test_suggestions_do_not_flicker_on_partials(follower: Follower) -> None:
    ctx = CallContext("steady")
    first = follower.step(ctx, "tenant", "我家卫生间天花板一直在滴水，楼上漏下来的", True)
    assert first is not None and top(first) == "repair-leak-ceiling"
    words = ["我看了一下", "那个", "水好像", "是从", "灯", "那边", "下来", "的"]
    firsts = []
    for n in range(1, len(words) + 1):
        answer = follower.step(ctx, "tenant", "".join(words[:n]), False)
        firsts.append(ctx.shown[0])
        assert answer is None or answer.changed  # partials are only answered when the first suggestion changes
    changes = sum(a != b for a, b in itertools.pairwise(firsts))
    assert changes <= 1, firsts


def test_agent_speech_is_weak_context(follower: Follower) -> None:
    ctx = CallContext("agent")
    first = follower.step(ctx, "tenant", "我家天花板在滴水", True)
    after = follower.step(ctx, "agent", "您的钥匙丢了吗？门禁卡呢？", True)
    assert first is not None and after is not None and top(after) == top(first) == "repair-leak-ceiling"


def test_a_message_is_weak_when_its_first_card_is_and_the_highest_score_is_one(follower: Follower) -> None:
    """A trial: a message said weak while its first card said not (the flag read the whole context's search), and
    the first score was 1.2 where the docs say the scores are scaled to 1.0 (the lean and agent context add to it)."""
    ctx = CallContext("flags")
    said = [
        ("tenant", "喂你好那个就是我家那个卫生间顶上一直在滴水"),
        ("agent", "好的请问是楼上漏下来的吗现在水大不大"),
        ("tenant", "对 滴得挺厉害的 地上都湿了"),
        ("tenant", "还有我家洗衣机也坏了 转不起来"),
    ]
    for speaker, text in said:
        answer = follower.step(ctx, speaker, text, True)
        assert answer is not None and answer.items, text
        assert answer.weak is answer.items[0]["weak"], text
        assert max(i["score"] for i in answer.items) == 1.0, text


def test_nonsense_is_a_weak_match(follower: Follower) -> None:
    answer = follower.step(CallContext("noise"), "tenant", "今天天气怎么样", True)
    assert answer is not None and answer.weak


def test_a_tenant_saying_who_they_are_gets_no_card_until_they_say_what_they_need(follower: Follower) -> None:
    """A training team's trial: 「喂你好，我是5栋803的李小明，电话139…」 opened a call and the angry-tenant script came
    first with confidence (its leftover words 我是的，电话 matched it), before the tenant had said anything."""
    ctx = CallContext("intro")
    for said in ("喂你好，我是5栋803的李小明，电话13987654321", "我是1203的租客", "我叫王芳"):
        answer = follower.step(ctx, "tenant", said, True)
        assert answer is not None and answer.weak and answer.items == [], (said, answer.items)
    answer = follower.step(ctx, "tenant", "我隔壁那家天天晚上十二点多还在打游戏大喊大叫，吵得我根本睡不着", True)
    assert answer is not None and not answer.weak and answer.items[0]["sop_id"] == "noise-complaint"
    assert clean("我是新来的租客，门卡怎么办") and clean("我住楼上，漏水了")  # with a need the segment stays whole


def test_greetings_and_fillers_alone_say_nothing_and_weak_partials_repaint_nothing(follower: Follower) -> None:
    ctx = CallContext("fillers")
    for said in ("喂", "喂你好", "那个", "嗯"):
        answer = follower.step(ctx, "tenant", said, True)
        assert answer is not None and answer.weak and answer.items == [], (said, answer.items)
    assert ctx.tenant_context() == ""
    assert clean("我想喂猫") == "我想喂猫" and clean("喂，你好，我家漏水").endswith("我家漏水")
    words = "今天天气怎么样"
    partials = [follower.step(ctx, "tenant", words[:n], False) for n in range(2, len(words))]
    assert all(p is None or not p.items[0]["weak"] for p in partials)  # no weak card pushed while still speaking
    assert partials[0] is None  # 今天: weak, and nothing was shown before
    final = follower.step(ctx, "tenant", words, True)
    assert final is not None and final.weak  # the final is answered, weak


# -- weak matches --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "weak"),
    [
        ("今天天气怎么样", True),
        ("asdfgh", True),
        ("天花板在滴水", False),
        ("钥匙丢了进不去", False),
        ("楼上太吵了", False),
    ],
)
def test_search_calls_nonsense_and_off_topic_weak_and_real_needs_not(
    use_kb: KnowledgeBase, query: str, weak: bool
) -> None:
    resp = use_kb.searcher.search(query, audience="agent", with_confidence=True)
    Confidence().annotate(resp, use_kb.searcher.catalog)
    assert resp.weak is weak, (resp.confidence, [h.sop_id for h in resp.results[:2]])
    assert resp.results[0].match_confidence == resp.confidence


def test_searches_carry_the_confidence_and_weak_ones_reach_the_gap_report(client: TestClient, tmp_path: Path) -> None:
    body = client.post("/v1/search", json={"query": "天花板在滴水"}, headers=auth(AGENT)).json()
    assert isinstance(body["confidence"], float) and isinstance(body["weak"], bool)
    assert all(isinstance(h["match_confidence"], float) for h in body["results"])
    assert any(line.endswith("：") for h in body["results"] for line in h["script_lines"])  # labels kept
    log = Logbook(tmp_path / "db.sqlite3")
    for query, confidence, source in [
        ("asdfgh", 0.1, "search"),
        ("天花板在滴水", 0.9, "search"),
        ("门卡坏了", 0.5, "search"),  # above the search threshold (0.422), below the chat's (0.58): answered
        ("押金多久退", 0.5, "chat"),
    ]:
        log.log_query(
            source=source, audience="agent", query=query, result_ids=["x"], top_score=1.0, confidence=confidence
        )
    log.flush()
    snapshot = GapReporter(log, HashEmbedder(), 0.58).compute(time.time() - 60, time.time() + 1)
    assert {g.representative: g.reasons for g in snapshot.unanswered} == {
        "asdfgh": {"低置信度": 1},
        "押金多久退": {"已答·置信度低": 1},  # the chat answered it, on a weak match
    }
    log.close()


def test_final_segments_suggestions_are_logged_masked_and_count_as_retrieved(client: TestClient) -> None:
    """What agents were shown on calls counts as retrieved in the gap report ("never found"); partials are not logged,
    the tenant's words are masked, and call transcripts are not questions: no question counts, groups or top list."""
    services = client.app.state.kb_state.services  # type: ignore[attr-defined]
    since = time.time()
    with client.websocket_connect("/v1/assist", headers=auth(AGENT)) as ws:
        ws.send_text(segment("logged-1", "我家天花板", final=False))
        assert ws.receive_json()["segment"] == 1
        ws.send_text(segment("logged-1", "我住3栋1502，天花板在滴水，电话13812345678"))
        shown = [i["sop_id"] for i in ws.receive_json()["items"]]
        # The agent's reply and an empty or filler-only final segment leave the tenant's words as they were: answered,
        # not logged again
        for text, speaker in (("好的，我马上帮您安排师傅", "agent"), ("", "tenant"), ("嗯", "tenant")):
            ws.send_text(segment("logged-1", text, speaker=speaker))
            assert ws.receive_json()["type"] == "suggestions"
    partial = {"speaker": "tenant", "text": "钥匙丢了", "final": False}
    assert client.post("/v1/assist/logged-2/segments", json=partial, headers=auth(AGENT)).status_code == 200
    final = {"speaker": "tenant", "text": "钥匙丢了进不去门"}
    answer = client.post("/v1/assist/logged-2/segments", json=final, headers=auth(AGENT)).json()
    again = {"speaker": "agent", "text": "您别着急，我给您安排"}
    assert client.post("/v1/assist/logged-2/segments", json=again, headers=auth(AGENT)).status_code == 200
    rows = services.logbook.rows(
        "SELECT * FROM queries WHERE source = 'assist' AND ts >= :since ORDER BY ts", {"since": since}
    )
    assert [json.loads(r["result_ids"]) for r in rows] == [shown, [i["sop_id"] for i in answer["items"]]]
    assert all(r["audience"] == "agent" and r["client"] is None for r in rows)
    assert "13812345678" not in rows[0]["query"] and "1502" not in rows[0]["query"]
    assert "滴水" in rows[0]["query"] and "电话" in rows[0]["query"]  # the number left out, the words kept
    snapshot = GapReporter(services.logbook, HashEmbedder(), 0.58).compute(since, time.time() + 1)
    assert set(shown) | {i["sop_id"] for i in answer["items"]} == set(snapshot.found)
    assert (snapshot.total_queries, snapshot.unanswered, snapshot.top_queries) == (0, [], [])


# -- the HTTP form across two worker processes ---------------------------------------------------------------------
def test_the_http_form_follows_one_call_across_two_worker_processes(tmp_path: Path) -> None:
    from tests.test_learning import AGENT as LEARN_AGENT
    from tests.test_learning import Live  # the same two-worker server those tests use

    learn_auth = auth(LEARN_AGENT)

    shutil.copytree(SOPS, tmp_path / "sops")
    settings = hash_settings(tmp_path, tmp_path / "sops")
    kb = KnowledgeBase.from_settings(settings)
    kb.ingest()
    kb.close()
    live = Live(tmp_path)
    live.env.update({"KB_EMBEDDER": "hash", "KB_REQUEST_TIMEOUT": "2"})
    live.start()
    try:
        # A WebSocket lives as long as its call: the 2-second request deadline does not close it.
        with connect(f"ws://127.0.0.1:{live.port}/v1/assist", additional_headers=learn_auth) as ws:
            time.sleep(3)
            ws.send(segment("long-call", "天花板在滴水"))
            assert json.loads(ws.recv(timeout=30))["segment"] == 1
        a, b = live.two_workers()
        segments = ["喂你好", "我家天花板在滴水", "楼上漏下来的", "地上都湿了"]
        got = []
        for i, text in enumerate(segments):
            status, body = (a if i % 2 == 0 else b).call(
                "POST", "/v1/assist/two-workers/segments", {"speaker": "tenant", "text": text}
            )
            assert status == 200, body
            got.append(body["segment"])
        assert got == [1, 2, 3, 4]  # each worker saw the segments the other one took
        assert wait_for(lambda: a.call("POST", "/v1/assist/two-workers/end", {})[0] == 204, 5)
        status, body = b.call("POST", "/v1/assist/two-workers/segments", {"speaker": "tenant", "text": "你好"})
        assert body["segment"] == 1
    finally:
        live.stop()


def test_the_server_log_does_not_keep_tickets() -> None:
    """uvicorn logs a WebSocket's path with its query: the ticket in it is replaced (it opens a staff socket)."""
    import logging

    from api.serving.security import HideTickets

    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        (("127.0.0.1", 5000), "/v1/assist?ticket=agent.1.ab.5bCP546L.f00d&x=1"), None,
    )  # fmt: skip
    assert HideTickets().filter(record)
    assert record.getMessage() == "('127.0.0.1', 5000) - \"WebSocket /v1/assist?ticket=…&x=1\" [accepted]"
    key = logging.LogRecord(  # a key put in the address by mistake (a trial found it logged in full)
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" 403',
        (("127.0.0.1", 5000), "/v1/assist?x=1&key=kbu_secret123&Token=abc"), None,
    )  # fmt: skip
    assert HideTickets().filter(key)
    assert "secret" not in key.getMessage() and "abc" not in key.getMessage()
    personal = logging.LogRecord(  # an operator's trial: ?phone=… logged as sent; documented URLs name staff
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/v1/search?x=13912345678&person=%E5%BC%A0%E4%BC%9F&since=2026-11-01", "1.1", 200),
        None,
    )  # fmt: skip
    assert HideTickets().filter(personal)
    line = personal.getMessage()
    assert "13912345678" not in line and "E5%BC" not in line and "since=2026-11-01" in line, line


def test_server_log_lines_carry_time_level_and_process_and_access_lines_hide_keys() -> None:
    """An operator's trial: the service's own lines had no time or level, and there was no access log at all. Run in
    a process of its own: configuring logging here would change it for the other tests."""
    import subprocess
    import sys

    program = """
import logging, logging.config
from api.serving.logs import log_config
from api.serving.security import hide_tickets
logging.config.dictConfig(log_config())
hide_tickets(logging.getLogger("uvicorn.access"))
logging.getLogger("kb.api").warning("accounts could not be read")
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/search?q=x&key=kbu_secret", "1.1", 200
)
logging.getLogger("httpx").info("a library's chatter")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stderr.splitlines()
    assert len(lines) == 2, lines
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING \[\d+\] kb\.api: accounts", lines[0]), lines[0]
    assert "access: 127.0.0.1:5000" in lines[1] and "key=…" in lines[1] and "secret" not in lines[1]


def test_replay_refuses_a_bad_call_id_and_a_line_without_its_time(tmp_path: Path) -> None:
    """A trial: `--call-id "呼叫 1"` printed an error per segment and exited 0; a line without "t" was taken."""
    from typer.testing import CliRunner

    from cli.main import app as cli_app

    good = tmp_path / "call.jsonl"
    good.write_text('{"t": 0, "speaker": "tenant", "text": "漏水"}\n', encoding="utf-8")
    refused = CliRunner().invoke(cli_app, ["assist", "replay", str(good), "--call-id", "呼叫 1", "--url", "http://x"])
    assert refused.exit_code == 2 and "--call-id" in refused.output
    timeless = tmp_path / "timeless.jsonl"
    timeless.write_text('{"speaker": "tenant", "text": "漏水"}\n', encoding="utf-8")
    missing = CliRunner().invoke(cli_app, ["assist", "replay", str(timeless), "--url", "http://x"])
    assert missing.exit_code == 2 and "缺少 t" in missing.output
    # A second trial: a GBK file printed a traceback, Notepad's BOM was refused, a missing comma read as missing
    # fields, and an empty file played nothing and exited 0
    cases = {
        "gbk": ('{"t": 0, "speaker": "tenant", "text": "天花板漏水了"}\n'.encode("gbk"), "不是 UTF-8"),
        "comma": ('{"t": 0 "speaker": "tenant", "text": "漏水"}\n'.encode(), "不是合法的 JSON"),
        "array": (b"[1, 2]\n", "对象"),
        "empty": (b"\n", "没有转写内容"),
        "blank": (b'{"t": 0, "speaker": "tenant", "text": " "}\n', "text 不能为空"),
    }
    for name, (raw, says) in cases.items():
        bad = tmp_path / f"{name}.jsonl"
        bad.write_bytes(raw)
        result = CliRunner().invoke(cli_app, ["assist", "replay", str(bad), "--url", "http://x"])
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output, (name, result)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + good.read_bytes())
    from cli.assist import read_transcript

    assert [x.text for x in read_transcript(bom)] == ["漏水"]
    with socket.socket() as s:  # a port nobody listens on: the message names where it tried
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = CliRunner().invoke(cli_app, ["assist", "replay", str(good)], env={"KB_PORT": str(port)})
    assert down.exit_code == 2 and f"127.0.0.1:{port}/v1/assist" in down.output and "--url" in down.output


def test_a_segment_of_personal_data_alone_stays_in_the_transcript_masked(client: TestClient) -> None:
    """An integrator's call: B座2301房 was counted (segment 2) but missing from the stored transcript, since nothing of
    it is searched; and the block written in words (三栋1502) was kept in clear."""
    for text in ("我住1502室", "B座2301房", "我是三栋1502的", "502房间空调不制冷"):
        r = client.post("/v1/assist/masked/segments", json={"speaker": "tenant", "text": text}, headers=auth(AGENT))
        assert r.status_code == 200, r.text
    shown = [s["text"] for s in client.get("/v1/assist/masked", headers=auth(AGENT)).json()["segments"]]
    assert shown == ["我住[房号]", "[房号]", "我是[房号]的", "[房号]空调不制冷"]
    assert client.post("/v1/assist/masked/end", json={}, headers=auth(AGENT)).status_code == 204
