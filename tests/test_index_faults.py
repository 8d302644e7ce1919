"""Faults in the embedded index: checksums recorded at seal time, a damaged or missing generation refused instead of
opened, and a searcher that recovers on its own when a good generation is published (kb_service/store/manifest.py,
kb_service/search/searcher.py). The real engine throughout; the hash embedder, as these are mechanics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.errors import IndexCorruptError, IndexNotReadyError
from kb_service.store import files, manifest
from kb_service.store.base import VectorStore
from tests.helpers import DIM, ROOT, hash_settings, point


def _kb(tmp_path: Path, sops: Path) -> KnowledgeBase:
    return KnowledgeBase.from_settings(hash_settings(tmp_path, sops), embedder=HashEmbedder())


@pytest.fixture
def built(tmp_path: Path, sops_copy: Path) -> Iterator[Path]:
    """The sample corpus indexed and published; yields the published generation's directory (no handle open)."""
    kb = _kb(tmp_path, sops_copy)
    assert kb.ingest().ok
    generation = kb.store.published()
    kb.close()
    assert generation is not None
    yield tmp_path / "data" / "index" / generation


def vector_file(generation: Path) -> Path:
    return next(generation.glob("segments/*/vector_storage-dense/vectors/chunk_0.mmap"))


def rebuild(tmp_path: Path, sops: Path) -> subprocess.CompletedProcess[str]:
    """`kb ingest --rebuild` in its own process, as an operator would run it next to a running server."""
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "data"), "KB_SOPS_DIR": str(sops), "KB_EMBEDDER": "hash"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", "--rebuild"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_seal_records_every_file_and_opening_the_generation_keeps_it_matching(built: Path, tmp_path: Path) -> None:
    recorded = manifest.read(built)
    on_disk = {str(p.relative_to(built)) for p in built.rglob("*") if p.is_file() and p.name != manifest.MANIFEST}
    assert set(recorded) == on_disk and any(r.endswith("chunk_0.mmap") for r in recorded)
    # The engine rewrites some files whenever it opens a generation: none of that may look like damage.
    for _ in range(3):
        kb = _kb(tmp_path, tmp_path / "sops")
        kb.warm_up()
        assert kb.searcher.search("天花板漏水", top_k=1).results
        kb.close()
        manifest.check(built, full=True)


def test_digest_follows_content_not_sparseness(tmp_path: Path) -> None:
    sparse, dense = tmp_path / "sparse.dat", tmp_path / "dense.dat"
    with open(sparse, "wb") as fh:
        fh.truncate(1 << 20)
        fh.seek(300_000)
        fh.write(b"payload")
    dense.write_bytes(sparse.read_bytes())  # the same bytes with the holes written out as zeros
    assert manifest.digest(sparse) == manifest.digest(dense)
    data = bytearray(dense.read_bytes())
    data[300_000:300_007] = bytes(7)  # the only data block becomes zeros: it must not vanish unnoticed
    dense.write_bytes(bytes(data))
    assert manifest.digest(sparse) != manifest.digest(dense)


def test_a_truncated_file_fails_the_cheap_check_and_an_overwritten_one_the_full_check(built: Path) -> None:
    target = vector_file(built)
    original = target.read_bytes()
    with open(target, "r+b") as fh:  # same size, different bytes: only the content digest sees it
        fh.seek(64)
        fh.write(b"\x13" * 512)
    manifest.check(built, full=False)
    with pytest.raises(IndexCorruptError, match=r"chunk_0\.mmap"):
        manifest.check(built, full=True)
    target.write_bytes(original)
    manifest.check(built, full=True)
    os.truncate(target, 4096)
    with pytest.raises(IndexCorruptError, match="4096"):
        manifest.check(built, full=False)
    (built / "edge_config.json").unlink()
    with pytest.raises(IndexCorruptError, match=r"edge_config\.json"):
        manifest.check(built, full=False)


def test_a_damaged_live_generation_is_refused_then_a_rebuild_is_served_without_a_new_searcher(
    built: Path, tmp_path: Path, sops_copy: Path
) -> None:
    os.truncate(vector_file(built), 4096)
    kb = _kb(tmp_path, sops_copy)
    with pytest.raises(IndexCorruptError, match="repair it: kb ingest"):
        kb.warm_up()  # `kb search` and friends stop with the reason; the server goes on (tests/test_serving.py)
    status = kb.searcher.status()
    assert not status.ready and "chunk_0.mmap" in (status.reason or "")
    result = rebuild(tmp_path, sops_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    status = kb.searcher.status()
    assert status.ready and status.reason is None and status.generation != built.name
    assert kb.searcher.search("天花板漏水", top_k=1).results
    assert not built.exists()  # the rebuild removed the damaged generation
    kb.close()


def test_a_damaged_new_generation_is_not_opened_and_the_previous_one_keeps_serving(
    built: Path, tmp_path: Path, sops_copy: Path
) -> None:
    kb = _kb(tmp_path, sops_copy)
    kb.warm_up()
    # Another process publishes a generation whose vector file is then damaged before this one opens it.
    copy = built.parent / "g-damaged"
    files.copy_tree(built, copy)
    with open(vector_file(copy), "r+b") as fh:
        fh.write(b"\xff" * 256)
    kb.store.publish("g-damaged")
    kb.searcher.refresh(force=True)  # checks are rate-limited (once a second): check now
    status = kb.searcher.status()
    assert status.ready and status.generation == built.name
    assert "g-damaged" in (status.reason or "") and built.name in (status.reason or "")
    assert kb.searcher.search("天花板漏水", top_k=1).generation == built.name
    kb.close()


def test_a_deleted_live_generation_makes_search_not_ready_until_one_is_published(
    built: Path, tmp_path: Path, sops_copy: Path
) -> None:
    kb = _kb(tmp_path, sops_copy)
    kb.warm_up()
    assert kb.searcher.status().ready
    shutil.rmtree(built)
    kb.searcher.refresh(force=True)
    status = kb.searcher.status()
    assert not status.ready and built.name in (status.reason or "")
    assert rebuild(tmp_path, sops_copy).returncode == 0
    kb.searcher.refresh(force=True)
    assert kb.searcher.status().ready
    kb.close()


def test_a_generation_sealed_before_checksums_still_opens(built: Path, tmp_path: Path, sops_copy: Path) -> None:
    (built / manifest.MANIFEST).unlink()
    kb = _kb(tmp_path, sops_copy)
    kb.warm_up()
    assert kb.searcher.status().ready
    next(sops_copy.rglob("*.md")).unlink()
    assert kb.ingest().ok  # the next ingest builds on it and seals a new generation, with checksums
    published = kb.store.published()
    assert published is not None and manifest.exists(tmp_path / "data" / "index" / published)
    kb.close()


def test_check_refuses_a_missing_generation_on_every_backend(store: VectorStore) -> None:
    store.create("g1", DIM, None)
    store.upsert("g1", [point("a", 0)])
    store.seal("g1")
    store.check("g1")
    store.drop("g1")
    with pytest.raises(IndexNotReadyError):
        store.check("g1")
