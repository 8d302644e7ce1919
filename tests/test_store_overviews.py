"""A sealed generation records its overview points' light payloads beside the engine's files, so a serving process
reads its catalogue without touching the payload file (at 100k chunks its 132 MB stayed resident in every process)."""

from __future__ import annotations

from pathlib import Path

from ingest.knowledge_base import KnowledgeBase
from kb_service.search.catalog import indexed_docs
from kb_service.store import manifest, overviews
from kb_service.store.base import OVERVIEWS
from kb_service.store.edge import EdgeStore


def _light(store: EdgeStore, generation: str) -> dict[str, dict]:
    return {h.id: h.payload for h in store.scroll(generation, OVERVIEWS, light=True)}


def _resident_kb(root: Path, part: str) -> int:
    """Resident KB of this process's mappings of files under `root` whose path contains `part`."""
    total, counting = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()
            if head and "-" in head[0] and ":" not in head[0]:
                counting = len(head) > 5 and head[5].startswith(f"{root}/") and part in head[5]
            elif counting and head and head[0] == "Rss:":
                total += int(head[1])
    return total


def test_sealing_records_the_overviews_and_the_catalogue_is_read_from_them(hash_kb: KnowledgeBase) -> None:
    hash_kb.ingest()
    store = hash_kb.store
    assert isinstance(store, EdgeStore)
    generation = str(store.published())
    root = store.root / generation
    # A fresh process reads its catalogue without touching the payload file's pages.
    before = _resident_kb(root, "/payload_storage/")
    fresh = EdgeStore(store.root)
    try:
        docs = indexed_docs(fresh, generation)
        touched = (_resident_kb(root, "/payload_storage/") - before) * 1024
    finally:
        fresh.close()
    payload_bytes = sum(p.stat().st_blocks * 512 for p in root.rglob("payload_storage/*") if p.is_file())
    assert payload_bytes > 256 * 1024 and touched < payload_bytes / 4, "reading the catalogue touched the payloads"

    recorded = overviews.read(root)
    assert recorded is not None and {h.id: h.payload for h in recorded} == _light(store, generation)
    assert all("sop" not in h.payload for h in recorded) and len(recorded) == len(docs)
    assert overviews.FILE in manifest.read(root)  # checked with the engine's files when the generation is opened


def test_a_publish_records_the_changed_catalogue_and_an_older_generation_is_read_from_the_engine(
    hash_kb: KnowledgeBase,
) -> None:
    hash_kb.ingest()
    store = hash_kb.store
    assert isinstance(store, EdgeStore)
    first = str(store.published())
    sops_dir: Path = hash_kb.settings.sops_dir
    removed = sorted(sops_dir.rglob("*.md"))[0]
    removed_id = next(d.sop_id for d in indexed_docs(store, first).values() if d.path.endswith(removed.name))
    removed.unlink()
    hash_kb.ingest()
    second = str(store.published())
    assert second != first
    assert removed_id not in indexed_docs(store, second) and removed_id in indexed_docs(store, first)
    assert {h.id: h.payload for h in overviews.read(store.root / second) or []} == _light(store, second)

    # A generation sealed before the overviews were recorded: the catalogue comes from the engine, the same.
    expected = indexed_docs(store, second)
    older = store.root / second
    overviews.remove(older)
    manifest.write(older)
    store.forget(second)
    assert overviews.read(older) is None and indexed_docs(EdgeStore(store.root), second) == expected
