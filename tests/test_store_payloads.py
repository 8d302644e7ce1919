"""A sealed generation keeps its payloads in a file beside the engine's, read by offset: a serving process reads the
payloads of the chunks and SOPs it shows without mapping the engine's payload file (at 100k chunks 126 MB of it
became resident in every process), and reads exactly what the engine holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.errors import IndexCorruptError, IndexNotReadyError
from kb_service.search.catalog import indexed_sops
from kb_service.store import manifest, payload_file
from kb_service.store.base import OVERVIEWS, FilterSpec
from kb_service.store.edge import EdgeStore
from tests.test_store_overviews import _resident_kb


def _everything(store: EdgeStore, generation: str, light: bool = False) -> dict[str, dict]:
    return {h.id: h.payload for h in store.scroll(generation, FilterSpec(), light=light)}


def _published(kb: KnowledgeBase) -> tuple[EdgeStore, str]:
    """The knowledge base indexed, its store and the generation it published."""
    kb.ingest()
    assert isinstance(kb.store, EdgeStore)
    return kb.store, str(kb.store.published())


def _add_a_line(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("。", "。\n\n补充：以管家通知为准。", 1), encoding="utf-8")


def _from_engine(root: Path, generation: str) -> EdgeStore:
    """A store reading `generation` as a release before the payload file would: from the engine's payloads."""
    payload_file.remove(root / generation)
    manifest.write(root / generation)
    return EdgeStore(root)


def test_payloads_are_read_from_the_recorded_file_as_the_engine_holds_them(hash_kb: KnowledgeBase) -> None:
    store, generation = _published(hash_kb)
    root = store.root / generation
    assert {payload_file.DATA, payload_file.TABLE} <= set(manifest.read(root))  # checked when opened

    fresh = EdgeStore(store.root)
    try:
        fresh.info(generation)  # opened: the engine reads the head of its payload file when it loads
        before = _resident_kb(root, "/payload_storage/")
        everything = _everything(fresh, generation)
        ids = list(everything)
        some = fresh.retrieve(generation, [*ids[::3], ids[0], "00000000-0000-4000-8000-000000000000"])
        only = fresh.retrieve(generation, ids[:5], fields=["sop_id", "heading"])
        light = _everything(fresh, generation, light=True)
        overviews = {h.id: h.payload for h in fresh.scroll(generation, OVERVIEWS)}
        sops = list(indexed_sops(fresh, generation))
        touched = _resident_kb(root, "/payload_storage/") - before
    finally:
        fresh.close()
    assert touched == 0, f"reading payloads mapped {touched} KB of the engine's payload file"

    engine = _from_engine(store.root, generation)
    try:
        assert everything == _everything(engine, generation) and len(everything) > 100
        # in the order asked, each once, unknown ids left out: as the engine returns them
        asked = [*ids[::3], ids[0]]
        assert [(h.id, h.payload) for h in some] == [(h.id, h.payload) for h in engine.retrieve(generation, asked)]
        assert all("sop" not in h.payload for h in some)  # the heavy fields are left out, as the engine leaves them
        assert [h.payload for h in only] == [
            h.payload for h in engine.retrieve(generation, ids[:5], ["sop_id", "heading"])
        ]
        assert all(set(h.payload) <= {"sop_id", "heading"} for h in only)
        assert light == _everything(engine, generation, light=True)
        assert overviews == {h.id: h.payload for h in engine.scroll(generation, OVERVIEWS)}
        assert sops == list(indexed_sops(engine, generation)) and sops
    finally:
        engine.close()


def test_a_publish_records_the_changed_payloads_and_copies_the_others(
    hash_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, first = _published(hash_kb)
    files = sorted(hash_kb.settings.sops_dir.rglob("*.md"))
    removed, edited = files[0], files[1]
    gone = {h.payload["sop_id"] for h in store.scroll(first, OVERVIEWS) if h.payload["path"].endswith(removed.name)}
    removed.unlink()
    _add_a_line(edited)
    encoded: list[dict] = []
    encode = payload_file.encode
    monkeypatch.setattr(payload_file, "encode", lambda payload: encoded.append(payload) or encode(payload))
    hash_kb.ingest()
    second = str(store.published())
    assert second != first
    root = store.root / second
    assert not (root / payload_file.SOURCE).exists() and not any(payload_file.SOURCE in f for f in manifest.read(root))
    recorded = payload_file.PayloadFile.open_at(root)
    before = payload_file.PayloadFile.open_at(store.root / first)
    assert recorded is not None and before is not None
    try:
        now = _everything(store, second)
        copied = sum(recorded.record(i) == before.record(i) for i in now)
    finally:
        recorded.close()
        before.close()
    assert gone and not {p["sop_id"] for p in now.values()} & gone
    assert any("以管家通知为准" in str(p.get("text", "")) for p in now.values())  # the edit, read from the engine
    # Only the edited document's new points were encoded; the others' records were copied as they were.
    assert encoded and {p["sop_id"] for p in encoded} == {
        p["sop_id"] for p in now.values() if "以管家通知为准" in str(p)
    }
    assert len(encoded) < len(now) and copied >= len(now) - len(encoded)
    engine = _from_engine(store.root, second)
    try:
        assert now == _everything(engine, second)
    finally:
        engine.close()


def test_a_publish_on_a_generation_sealed_before_the_file_writes_it(hash_kb: KnowledgeBase) -> None:
    store, first = _published(hash_kb)
    _from_engine(store.root, first).close()  # as an earlier release sealed it: no payload file
    store.forget(first)
    edited = sorted(hash_kb.settings.sops_dir.rglob("*.md"))[1]
    _add_a_line(edited)
    hash_kb.ingest()
    second = str(store.published())
    assert second != first and payload_file.PayloadFile.open_at(store.root / first) is None
    now = _everything(store, second)
    assert payload_file.PayloadFile.open_at(store.root / second) is not None
    engine = _from_engine(store.root, second)
    try:
        assert now == _everything(engine, second) and any("以管家通知为准" in str(p) for p in now.values())
    finally:
        engine.close()


def test_a_record_damaged_after_the_check_is_an_index_error_not_a_crash(hash_kb: KnowledgeBase) -> None:
    """An operator's trial zeroed bytes inside payloads.bin under a running server (same size, so the live size
    check passes): searches failed with zlib's error as 500s. A damaged record is the index's error (503)."""
    store, generation = _published(hash_kb)
    ids = list(_everything(store, generation))
    data = store.root / generation / payload_file.DATA
    with open(data, "r+b") as fh:
        fh.write(bytes(data.stat().st_size))  # every record zeroed, the size kept
    with pytest.raises(IndexCorruptError, match=r"payloads\.bin 已损坏"):
        store.retrieve(generation, ids[:3])
    os.truncate(data, 10)
    with pytest.raises(IndexCorruptError, match=r"payloads\.bin 已损坏"):
        store.retrieve(generation, ids[-3:])
    # The health check and every later request see it too, not only the reads that found it (a trial's /healthz
    # said all was well until a restart); the generation is opened again, verified, only once it is replaced.
    with pytest.raises(IndexCorruptError, match=r"payloads\.bin 已损坏"):
        store.check(generation)
    assert hash_kb.searcher.status().generation is None
    with pytest.raises(IndexNotReadyError, match="repair it: kb ingest"):  # what a search's 503 says to do
        hash_kb.searcher.search("天花板漏水")
