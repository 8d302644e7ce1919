"""Trainers' publishing through the API: validation, versions, conflicts, example regression, history, rollback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.publishing import with_version
from tests.helpers import AGENT, KEYS, NEW, TRAINER, api_client, auth, put


@pytest.fixture
def trainer(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield c


def search_ids(c: TestClient, q: str, key: str = AGENT) -> list[str]:
    return [
        h["sop_id"] for h in c.post("/v1/search", json={"query": q, "top_k": 3}, headers=auth(key)).json()["results"]
    ]


def test_publish_new_sop_is_found_at_once_and_written_to_the_folder(trainer: TestClient) -> None:
    r = put(trainer, "wifi-router-reset", NEW)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["version"] == 1 and body["examples_checked"] == 1
    assert "wifi-router-reset" in search_ids(trainer, "路由器怎么重启")
    sops_dir: Path = trainer.app.state.kb_state.settings.sops_dir  # type: ignore[attr-defined]
    # beside the other SOP of its category (网络), not at the folder's root (a new customer's trial)
    assert body["path"] == "services/wifi-router-reset.md" and not (sops_dir / "wifi-router-reset.md").exists()
    written = (sops_dir / body["path"]).read_text(encoding="utf-8")
    assert f"version: 1\nupdated: {date.today().isoformat()}\n" in written  # stamped: a publish is an update
    # ... after the author's own fields, left in their order (a trial: version and updated landed above the title)
    assert written.startswith(NEW.split("\n---")[0] + "\nversion: 1\n"), written[:200]
    staff = trainer.get("/v1/sops/wifi-router-reset", headers=auth(AGENT)).json()["meta"]
    assert staff["updated"] == date.today().isoformat()
    # a tenant's view has no publish date or number (they would tell when staff-only text changed)
    assert trainer.get("/v1/sops/wifi-router-reset").json()["meta"]["updated"] is None
    # the internal section stays internal after publishing
    public = trainer.get("/v1/sops/wifi-router-reset").json()
    assert "kb-secret-9931" not in str(public)


def hold_the_writer_lock(data_dir: Path, purpose: str) -> subprocess.Popen[str]:
    """Another process holding the writer lock of `data_dir` (as `kb ingest` does) until its stdin closes."""
    script = (
        "import sys; from pathlib import Path; from ingest.locking import file_writer_lock\n"
        "with file_writer_lock(Path(sys.argv[1])).hold(sys.argv[2]):\n"
        "    print('held', flush=True); sys.stdin.read()"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir), purpose],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_publish_during_an_ingest_is_refused_soon_saying_what_holds_the_index(
    tmp_path: Path, sops_copy: Path
) -> None:
    """An operator's trial: a publish sent during a 9-minute `kb ingest` waited for it without a word (481 s)."""
    with api_client(tmp_path, sops_copy, api_keys=KEYS, publish_wait_seconds=0.5) as c:
        data_dir: Path = c.app.state.kb_state.settings.data_dir  # type: ignore[attr-defined]
        ingest = hold_the_writer_lock(data_dir, "同步 SOP 文件夹 /srv/sops / ingesting /srv/sops")
        try:
            started = time.monotonic()
            r = put(c, "wifi-router-reset", NEW)
            took = time.monotonic() - started
            assert r.status_code == 503, r.text  # type: ignore[attr-defined]
            error = r.json()["error"]  # type: ignore[attr-defined]
            assert error["code"] == "writer_busy" and r.headers["Retry-After"]  # type: ignore[attr-defined]
            assert "同步 SOP 文件夹 /srv/sops" in error["message"] and f"进程 {ingest.pid}" in error["message"]
            assert 0.5 <= took < 5
            assert "wifi-router-reset" not in search_ids(c, "路由器怎么重启")  # nothing was published
            assert not list(Path(c.app.state.kb_state.settings.sops_dir).rglob("wifi-router-reset.md"))  # type: ignore[attr-defined]
        finally:
            assert ingest.stdin is not None
            ingest.stdin.close()
            ingest.wait(10)
        assert put(c, "wifi-router-reset", NEW).status_code == 200  # type: ignore[attr-defined]
        assert (data_dir / "ingest.lock").read_text() == ""  # the holder's note goes with the lock


def test_a_sops_source_is_unavailable_not_unknown_while_the_index_is_damaged(tmp_path: Path, sops_copy: Path) -> None:
    """An operator's trial: with the published index damaged, opening any SOP in the workspace said 404 "unknown SOP",
    as if it had been deleted; it is 503 with the reason and the repair."""
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        index = Path(c.app.state.kb_state.settings.data_dir) / "index"  # type: ignore[attr-defined]
        live = index / (index / "CURRENT").read_text().strip()
        assert c.get("/v1/sops/repair-leak-ceiling/source", headers=auth(TRAINER)).status_code == 200
        os.truncate(next(live.glob("segments/*/vector_storage-dense/vectors/chunk_0.mmap")), 4096)
        deadline = time.monotonic() + 10
        while c.get("/healthz").status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        r = c.get("/v1/sops/repair-leak-ceiling/source", headers=auth(TRAINER))
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "index_not_ready" and "kb ingest" in r.json()["error"]["message"]


def test_only_trainers_may_publish(trainer: TestClient) -> None:
    r = trainer.put(
        "/v1/sops/wifi-router-reset", content=NEW.encode(), headers={**auth(AGENT), "content-type": "text/markdown"}
    )
    assert r.status_code == 403
    assert (
        trainer.put(
            "/v1/sops/wifi-router-reset", content=NEW.encode(), headers={"content-type": "text/markdown"}
        ).status_code
        == 401  # no key at all (an agent's key above: 403)
    )
    assert trainer.delete("/v1/sops/repair-leak-ceiling", headers=auth(AGENT)).status_code == 403
    assert trainer.get("/v1/sops/repair-leak-ceiling/history", headers=auth(AGENT)).status_code == 403


def test_invalid_document_reports_file_line_and_changes_nothing(trainer: TestClient) -> None:
    before = trainer.get("/healthz").json()["generation"]
    bad = NEW.replace("audience: public", "audience: everyone")
    r = put(trainer, "wifi-router-reset", bad)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "wifi-router-reset.md:5:" in r.json()["error"]["message"]  # type: ignore[attr-defined]
    assert trainer.get("/healthz").json()["generation"] == before
    assert trainer.get("/v1/sops/wifi-router-reset", headers=auth(AGENT)).status_code == 404
    mismatch = put(trainer, "other-id", NEW)
    assert mismatch.status_code == 422 and "不一致" in mismatch.json()["error"]["message"]  # type: ignore[attr-defined]


def test_versions_conflicts_history_diff_and_rollback(trainer: TestClient) -> None:
    leak = trainer.get("/v1/sops/repair-leak-ceiling", headers=auth(AGENT)).json()
    v = leak["meta"]["version"]
    sops_dir: Path = trainer.app.state.kb_state.settings.sops_dir  # type: ignore[attr-defined]
    original = (sops_dir / leak["path"]).read_text(encoding="utf-8")
    changed = original.replace("## 注意事项", "## 注意事项\n- 新规定：夜间漏水由值班工程师直接上门。", 1)

    # Before any change through the API, the folder's version is the history, as the source says (it was empty, and
    # version 1 a 404, while /source reported version 1).
    [before] = trainer.get("/v1/sops/repair-leak-ceiling/history", headers=auth(TRAINER)).json()
    assert (before["version"], before["action"], before["author"]) == (v, "import", "system")
    shown = trainer.get(f"/v1/sops/repair-leak-ceiling/versions/{v}", headers=auth(TRAINER)).json()
    assert shown["content"] == original
    assert put(trainer, "repair-leak-ceiling", changed).status_code == 409  # type: ignore[attr-defined]
    imported = trainer.get("/v1/sops/repair-leak-ceiling/history", headers=auth(TRAINER)).json()
    r = put(trainer, "repair-leak-ceiling", changed, base_version=v)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    assert r.json()["version"] == v + 1  # type: ignore[attr-defined]
    # a second trainer still editing the old version cannot silently overwrite
    stale = put(trainer, "repair-leak-ceiling", changed.replace("新规定", "另一版"), base_version=v)
    assert stale.status_code == 409  # type: ignore[attr-defined]
    # ... and is told who published the newer version (a trial's conflict named no colleague)
    author = trainer.get("/v1/sops/repair-leak-ceiling/history", headers=auth(TRAINER)).json()[-1]["author"]
    assert f"由 {author} 在 0 分钟前发布" in stale.json()["error"]["message"]  # type: ignore[attr-defined]

    # the same text again is no new version (an operator's trial published it twice and got two)
    again = put(trainer, "repair-leak-ceiling", changed, base_version=v + 1)
    assert (again.json()["action"], again.json()["version"]) == ("unchanged", v + 1)  # type: ignore[attr-defined]
    hit = trainer.post("/v1/search", json={"query": "夜间漏水 值班工程师直接上门"}, headers=auth(AGENT)).json()
    assert hit["results"][0]["sop_id"] == "repair-leak-ceiling"
    history = trainer.get("/v1/sops/repair-leak-ceiling/history", headers=auth(TRAINER)).json()
    assert [h["version"] for h in history] == [v, v + 1] and history[0]["action"] == "import"
    assert history[0]["ts"] == imported[0]["ts"]  # the folder's version keeps its time (it took the publish's)
    diff = trainer.get("/v1/sops/repair-leak-ceiling/diff", params={"from": v, "to": v + 1}, headers=auth(TRAINER))
    assert "+- 新规定" in diff.json()

    rb = trainer.post(
        "/v1/sops/repair-leak-ceiling/rollback", json={"to_version": v, "base_version": v + 1}, headers=auth(TRAINER)
    )
    assert rb.status_code == 200 and rb.json()["version"] == v + 2
    restored = trainer.get("/v1/sops/repair-leak-ceiling", headers=auth(AGENT)).json()
    assert "新规定" not in str(restored) and restored["meta"]["version"] == v + 2
    # the history says which version came back (a trainer's trial read 「v3 回滚」 only)
    history = trainer.get("/v1/sops/repair-leak-ceiling/history", headers=auth(TRAINER)).json()
    assert [(h["action"], h["restored"]) for h in history] == [("import", None), ("publish", None), ("rollback", v)]


def test_example_regression_blocks_unless_forced(trainer: TestClient) -> None:
    assert put(trainer, "wifi-router-reset", NEW).status_code == 200  # type: ignore[attr-defined]
    drifted = (
        NEW.replace("路由器重启指引", "设备说明")
        .replace("拔掉路由器电源", "拔掉电源")
        .replace("路由器断电", "设备断电")
        .replace("[路由器, 重启]", "[设备]")
        .replace("examples: [路由器怎么重启]", "examples: [空调遥控器没反应怎么办]")
    )
    r = put(trainer, "wifi-router-reset", drifted, base_version=1)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert r.json()["error"]["code"] == "example_regression"  # type: ignore[attr-defined]
    assert trainer.get("/v1/sops/wifi-router-reset", headers=auth(AGENT)).json()["meta"]["version"] == 1
    forced = put(trainer, "wifi-router-reset", drifted, base_version=1, force="true")
    assert forced.status_code == 200 and forced.json()["version"] == 2  # type: ignore[attr-defined]


def test_delete_removes_from_index_and_folder_and_can_be_rolled_back(trainer: TestClient) -> None:
    assert put(trainer, "wifi-router-reset", NEW).status_code == 200  # type: ignore[attr-defined]
    r = trainer.delete("/v1/sops/wifi-router-reset", params={"base_version": 1}, headers=auth(TRAINER))
    assert r.status_code == 200 and r.json()["action"] == "delete"
    assert "wifi-router-reset" not in search_ids(trainer, "路由器怎么重启")
    sops_dir: Path = trainer.app.state.kb_state.settings.sops_dir  # type: ignore[attr-defined]
    assert not (sops_dir / "services" / "wifi-router-reset.md").exists()
    # listed as deleted with its title, for the workspace to open and restore it (a trial lost one after a reload)
    gone = trainer.get("/v1/deleted-sops", headers=auth(TRAINER)).json()
    assert [(d["sop_id"], d["title"], d["version"]) for d in gone] == [("wifi-router-reset", "路由器重启指引", 2)]
    assert trainer.get("/v1/deleted-sops", headers=auth(AGENT)).status_code == 403
    rb = trainer.post(
        "/v1/sops/wifi-router-reset/rollback", json={"to_version": 1, "base_version": 2}, headers=auth(TRAINER)
    )
    assert rb.status_code == 200, rb.text
    assert "wifi-router-reset" in search_ids(trainer, "路由器怎么重启")
    assert trainer.get("/v1/deleted-sops", headers=auth(TRAINER)).json() == []


def test_preview_shows_chunks_audience_and_glossary(trainer: TestClient) -> None:
    r = trainer.post("/v1/preview", content=NEW.encode(), headers={**auth(TRAINER), "content-type": "text/markdown"})
    assert r.status_code == 200
    chunks = r.json()["chunks"]
    assert {c["kind"] for c in chunks} >= {"overview", "steps", "script"}
    internal = next(c for c in chunks if c["heading_path"][-1] == "密码规则")
    assert internal["audience"] == "agent"
    leak = NEW.replace("路由器重启指引", "天花板漏水")
    r = trainer.post("/v1/preview", content=leak.encode(), headers={**auth(TRAINER), "content-type": "text/markdown"})
    assert any("吊顶漏水" in g for c in r.json()["chunks"] for g in c["glossary"])


def test_preview_warns_on_an_emergency_procedure_without_public_safety_text(tmp_path: Path, sops_copy: Path) -> None:
    """As `kb lint` does (a fourth company's documents: the chat answered emergencies with the number alone)."""
    gas = (sops_copy / "emergency" / "emergency-gas-leak.md").read_bytes()
    warning = "知识库里没有租客可见的安全提示"
    md = {**auth(TRAINER), "content-type": "text/markdown"}
    with api_client(tmp_path / "with", sops_copy, api_keys=KEYS) as c:  # the public safety guide backs it up
        assert not [i for i in c.post("/v1/preview", content=gas, headers=md).json()["issues"] if warning in i]
    (sops_copy / "emergency" / "safety-guide-public.md").unlink()
    with api_client(tmp_path / "without", sops_copy, api_keys=KEYS) as c:
        issues = c.post("/v1/preview", content=gas, headers=md).json()["issues"]
        assert [i for i in issues if warning in i and i.startswith("preview.md:1:")], issues
        everyday = (sops_copy / "billing" / "invoice-request.md").read_bytes()  # not an emergency: nothing to say
        assert not [i for i in c.post("/v1/preview", content=everyday, headers=md).json()["issues"] if warning in i]


def test_a_draft_is_hit_tested_without_being_published(trainer: TestClient) -> None:
    """A trainer's trial had to publish a new SOP to learn whether agents' words find it."""
    kb = trainer.app.state.kb_state.services.kb  # type: ignore[attr-defined]
    published, generations = kb.store.published(), kb.store.generations()
    body = {"markdown": NEW, "queries": ["路由器怎么重启", "天花板漏水了"]}
    assert trainer.post("/v1/preview/hits", json=body, headers=auth(AGENT)).status_code == 403
    r = trainer.post("/v1/preview/hits", json=body, headers=auth(TRAINER))
    assert r.status_code == 200, r.text
    found = {x["query"]: x for x in r.json()["results"]}
    assert r.json()["sop_id"] == "wifi-router-reset" and found["路由器怎么重启"]["rank"] == 1
    assert found["路由器怎么重启"]["top"][0]["title"] == r.json()["title"]
    assert found["天花板漏水了"]["rank"] is None and found["天花板漏水了"]["top"]
    # nothing published, no index left behind
    assert "wifi-router-reset" not in search_ids(trainer, "路由器怎么重启")
    assert kb.store.published() == published and kb.store.generations() == generations
    bad = trainer.post("/v1/preview/hits", json={**body, "markdown": "没有文件头"}, headers=auth(TRAINER))
    assert bad.status_code == 422 and "草稿有错误" in bad.json()["error"]["message"]
    empty = trainer.post("/v1/preview/hits", json={**body, "queries": ["  "]}, headers=auth(TRAINER))
    assert empty.status_code == 422


def test_source_returns_the_markdown_and_rollback_after_delete_restores_the_original_path(trainer: TestClient) -> None:
    src = trainer.get("/v1/sops/parking/source", headers=auth(TRAINER)).json()
    assert src["path"] == "services/parking.md" and src["content"].startswith("---")
    assert trainer.get("/v1/sops/parking/source", headers=auth(AGENT)).status_code == 403
    v = src["version"]
    r = trainer.delete("/v1/sops/parking", params={"base_version": v}, headers=auth(TRAINER))
    assert r.status_code == 200
    rb = trainer.post("/v1/sops/parking/rollback", json={"to_version": v, "base_version": v + 1}, headers=auth(TRAINER))
    assert rb.status_code == 200 and rb.json()["path"] == "services/parking.md"
    sops_dir: Path = trainer.app.state.kb_state.settings.sops_dir  # type: ignore[attr-defined]
    assert (sops_dir / "services" / "parking.md").is_file() and not (sops_dir / "parking.md").exists()


def test_validation_errors_are_listed_one_per_detail(trainer: TestClient) -> None:
    bad = NEW.replace("audience: public", "audience: everyone").replace("1. 拔掉", "拔掉").replace("2. 重新", "重新")
    r = put(trainer, "wifi-router-reset", bad)
    details = r.json()["error"]["details"]  # type: ignore[attr-defined]
    assert len(details) == 2 and all(d.startswith("wifi-router-reset.md:") for d in details)


def test_a_second_sop_with_an_existing_title_is_published_with_a_warning(trainer: TestClient) -> None:
    """A trainer's trial: a second SOP titled exactly like another went live without a word; agents then see two
    results with one name."""
    title = "门禁卡丢失补办、门禁卡失效与人脸识别录入"  # the title of access-door-card
    doc = NEW.replace("id: wifi-router-reset", "id: door-card-copy")
    doc = "\n".join(
        f"title: {title}" if line.startswith("title:") else f"# {title}" if line.startswith("# ") else line
        for line in doc.split("\n")
    )
    r = put(trainer, "door-card-copy", doc, force=True)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    warned = [w for w in r.json()["warnings"] if "access-door-card" in w]  # type: ignore[attr-defined]
    assert warned and "相同" in warned[0]
    plain = put(trainer, "wifi-router-reset", NEW)
    assert not [w for w in plain.json()["warnings"] if "相同" in w]  # type: ignore[attr-defined]


def test_the_version_is_written_into_the_front_matter_however_it_ends() -> None:
    """A third security round: a front matter closed with `...` got version and updated above a `---` rule in the body
    (then refused as a setext heading), and a file of `\\r` line ends got them at its end, as public text, while GET
    kept saying version 1 (every save with that base version was a 409)."""
    today = date(2026, 12, 4)
    dots = "---\nid: a\ntitle: x\n...\n# x\n\n## s\n文字\n\n---\n\n更多\n"
    assert with_version(dots, 5, today) == dots.replace("...\n", "version: 5\nupdated: 2026-12-04\n...\n", 1)
    cr = "---\rid: a\rtitle: x\rversion: 3\r---\r# x\r"
    assert with_version(cr, 4, today) == "---\rid: a\rtitle: x\rversion: 4\rupdated: 2026-12-04\r---\r# x\r"
    crlf = "---\r\nid: a\r\nupdated: 2026-01-01\r\n---\r\n# x\r\n"
    assert with_version(crlf, 2, today) == "---\r\nid: a\r\nupdated: 2026-12-04\r\nversion: 2\r\n---\r\n# x\r\n"


def test_an_edit_made_to_the_file_outside_the_workspace_is_never_saved_over_unseen(trainer: TestClient) -> None:
    """A new customer's trial: a colleague added a rule to the folder's file by hand (same `version:`); a trainer's
    save based on the text before it returned 200 and the rule was gone, once after `kb ingest` had put it live."""
    sop_id = "repair-leak-ceiling"
    loaded = trainer.get(f"/v1/sops/{sop_id}/source", headers=auth(TRAINER)).json()
    v = loaded["version"]
    sops_dir: Path = trainer.app.state.kb_state.settings.sops_dir  # type: ignore[attr-defined]
    path = sops_dir / trainer.get(f"/v1/sops/{sop_id}", headers=auth(AGENT)).json()["path"]
    rule = "- 【2026-12 新增】夜间漏水先打值班电话。"
    path.write_text(
        path.read_text(encoding="utf-8").replace("## 注意事项", f"## 注意事项\n{rule}", 1), encoding="utf-8"
    )
    mine = loaded["content"].replace("## 注意事项", "## 注意事项\n- 培训师的修改。", 1)

    refused = put(trainer, sop_id, mine, base_version=v)
    assert refused.status_code == 409, refused.text  # type: ignore[attr-defined]
    assert "工作台之外被改过" in refused.text and f"版本 {v + 1}" in refused.text  # type: ignore[attr-defined]
    history = trainer.get(f"/v1/sops/{sop_id}/history", headers=auth(TRAINER)).json()
    assert (history[-1]["version"], history[-1]["action"], history[-1]["author"]) == (v + 1, "import", "system")
    again = trainer.get(f"/v1/sops/{sop_id}/source", headers=auth(TRAINER)).json()
    assert again["version"] == v + 1 and rule in again["content"]  # the trainer sees the edit, and saves on it
    assert rule in path.read_text(encoding="utf-8")
    merged = again["content"].replace("## 注意事项", "## 注意事项\n- 培训师的修改。", 1)
    ok = put(trainer, sop_id, merged, base_version=v + 1)
    assert ok.status_code == 200, ok.text  # type: ignore[attr-defined]
    text = path.read_text(encoding="utf-8")
    assert rule in text and "培训师的修改" in text

    # Opening the source after a hand edit keeps it as a version first: the save built on it is no conflict
    path.write_text(text.replace(rule, rule + "\n- 第二处手改。"), encoding="utf-8")
    seen = trainer.get(f"/v1/sops/{sop_id}/source", headers=auth(TRAINER)).json()
    assert seen["version"] == v + 3 and "第二处手改" in seen["content"]
    assert (
        put(
            trainer, sop_id, seen["content"].replace("第二处手改", "第二处手改（已核）"), base_version=v + 3
        ).status_code
        == 200
    )  # type: ignore[attr-defined]


def test_a_hand_edit_put_live_by_kb_ingest_is_never_saved_over_unseen(trainer: TestClient) -> None:
    """A re-check trial: a SOP never changed through the workspace, opened by a trainer, edited by hand and put live
    by `kb ingest`: the save built on the opened text returned 200 and the edit was gone."""
    sop_id = "repair-air-conditioner"
    loaded = trainer.get(f"/v1/sops/{sop_id}/source", headers=auth(TRAINER)).json()
    v = loaded["version"]
    history = trainer.get(f"/v1/sops/{sop_id}/history", headers=auth(TRAINER)).json()
    assert [(h["version"], h["action"]) for h in history] == [(v, "import")]  # what the trainer opened is kept
    sops_dir: Path = trainer.app.state.kb_state.settings.sops_dir  # type: ignore[attr-defined]
    path = sops_dir / trainer.get(f"/v1/sops/{sop_id}", headers=auth(AGENT)).json()["path"]
    rule = "- 【同事手改】空调外机噪音先登记再派单。"
    path.write_text(
        path.read_text(encoding="utf-8").replace("## 注意事项", f"## 注意事项\n{rule}", 1), encoding="utf-8"
    )
    kb = trainer.app.state.kb_state.services.kb  # type: ignore[attr-defined]
    assert kb.ingest().ok  # `kb ingest`: the edit is live, with the same version number
    mine = loaded["content"].replace("## 注意事项", "## 注意事项\n- 培训师的修改。", 1)
    refused = put(trainer, sop_id, mine, base_version=v)
    assert refused.status_code == 409 and "工作台之外被改过" in refused.text, refused.text  # type: ignore[attr-defined]
    diff = trainer.get(f"/v1/sops/{sop_id}/diff", params={"from": v, "to": v + 1}, headers=auth(TRAINER))
    assert diff.status_code == 200 and "同事手改" in diff.text  # the trainer can see what changed
    assert rule in path.read_text(encoding="utf-8")


def test_trainers_see_every_documents_problems_as_kb_lint_prints_them(trainer: TestClient) -> None:
    """A trainer without a shell saw problems one document at a time, in the preview of the one in the editor."""
    assert trainer.get("/v1/lint", headers=auth(AGENT)).status_code == 403
    body = trainer.get("/v1/lint", headers=auth(TRAINER)).json()
    assert body["documents"] == 46 and body["errors"] == 0
    overdue = [i for i in body["issues"] if "复核日期" in i["message"]]
    assert overdue and overdue[0]["sop_id"] == "repair-appliance" and overdue[0]["path"] == "repair/repair-appliance.md"
    marked = "## 补偿标准（内部）\n- 最多补偿一个月网费。\n\n## 密码规则 [内部]"
    near_miss = NEW.replace("## 密码规则 [内部]", marked, 1)
    assert near_miss != NEW
    assert put(trainer, "wifi-router-reset", near_miss).status_code == 200  # type: ignore[attr-defined]
    after = trainer.get("/v1/lint", headers=auth(TRAINER)).json()
    assert after["documents"] == 47 and after["warnings"] == body["warnings"] + 1
    new = [i for i in after["issues"] if i["sop_id"] == "wifi-router-reset"]
    assert len(new) == 1 and new[0]["severity"] == "warning" and "补偿标准（内部）" in new[0]["message"]


def test_a_time_limit_changed_while_other_lines_keep_the_old_time_is_told_before_and_at_publishing(
    trainer: TestClient,
) -> None:
    """A training lead's trial changed 30分钟内挪车 to 20 in 时限要求; a step, the script and an FAQ answer went on
    saying 30 分钟 and neither the preview nor the publish said so."""
    src = trainer.get("/v1/sops/parking/source", headers=auth(TRAINER)).json()
    changed = src["content"].replace("30分钟内挪车", "20分钟内挪车", 1)
    lines = changed.split("\n")
    stale = {n for n, line in enumerate(lines, start=1) if "30分钟内联系" in line}
    assert len(stale) == 3  # the step, the script line and the FAQ answer
    preview = trainer.post(
        "/v1/preview", content=changed.encode(), headers={**auth(TRAINER), "content-type": "text/markdown"}
    )
    told = [i for i in preview.json()["issues"] if "已经改了" in i]
    assert {int(i.split(":")[1]) for i in told} == stale and all("「20分钟内」" in i for i in told)
    out = put(trainer, "parking", changed, base_version=src["version"], force=True)
    assert out.status_code == 200 and len([w for w in out.json()["warnings"] if "已经改了" in w]) == 3  # type: ignore[attr-defined]
    fixed = changed.replace("30分钟内联系", "20分钟内联系")
    again = put(trainer, "parking", fixed, base_version=out.json()["version"], force=True)  # type: ignore[attr-defined]
    assert not [w for w in again.json()["warnings"] if "已经改了" in w]  # type: ignore[attr-defined]


def test_a_section_made_staff_only_whose_sums_public_lines_still_state_is_told_before_and_at_publishing(
    trainer: TestClient,
) -> None:
    """A trial moved the parking SOP's 收费标准 under [内部]: an FAQ answer and a script line went on telling tenants
    the e-bike charge (1元/4小时, 1块钱), and nothing said so."""
    src = trainer.get("/v1/sops/parking/source", headers=auth(TRAINER)).json()
    changed = src["content"].replace("## 收费标准\n", "## 收费标准 [内部]\n", 1)
    assert changed != src["content"]
    lines = changed.split("\n")
    said = {n for n, line in enumerate(lines, start=1) if ("1元/4小时" in line or "1块钱" in line) and n > 30}
    preview = trainer.post(
        "/v1/preview", content=changed.encode(), headers={**auth(TRAINER), "content-type": "text/markdown"}
    )
    told = [i for i in preview.json()["issues"] if "已改为内部" in i]
    assert said and {int(i.split(":")[1]) for i in told} == said
    out = put(trainer, "parking", changed, base_version=src["version"], force=True)
    assert out.status_code == 200  # type: ignore[attr-defined]
    assert len([w for w in out.json()["warnings"] if "已改为内部" in w]) == len(said)  # type: ignore[attr-defined]
    # Published as it is, the next edit is against that version: nothing new was made staff-only
    again = put(trainer, "parking", changed.replace("每户限办1张", "每户限办2张"), base_version=out.json()["version"])  # type: ignore[attr-defined]
    assert not [w for w in again.json()["warnings"] if "已改为内部" in w]  # type: ignore[attr-defined]
