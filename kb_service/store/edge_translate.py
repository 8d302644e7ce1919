"""How the service's points, filters and vector settings are written for Qdrant's in-process engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import qdrant_edge as qe

from kb_service.store import parts
from kb_service.store.base import FilterSpec, Vectors
from kb_service.store.layout import QUANTILE, IndexLayout, Quantization, SparseDatatype, VectorDatatype
from kb_service.store.sparse import SparseVec
from kb_service.store.translate import Translator, stored

_VECTOR_TYPES = {"float16": qe.VectorStorageDatatype.Float16, "turbo8": qe.VectorStorageDatatype.Turbo8}
_SPARSE_TYPES = {
    "float32": None,  # the engine's default, as generations before the setting were built
    "float16": qe.VectorStorageDatatype.Float16,
    "uint8": qe.VectorStorageDatatype.Uint8,
}


class EngineVectors:
    """A generation's vectors read from the engine (one that records none apart: `vector_file.py`)."""

    def __init__(self, shard: qe.EdgeShard) -> None:
        self.shard = shard

    def vectors(self, ids: Sequence[str]) -> Vectors:
        records = self.shard.retrieve(list(ids), with_payload=False, with_vector=["dense", "sent"])
        out = {str(r.id): stored(r.vector) for r in records if isinstance(r.vector, dict) and "dense" in r.vector}
        # a split point's other sentence rows are in its parts (parts.py), part 1, 2, ... until one is missing
        more: dict[str, list[np.ndarray]] = {i: [] for i in out}
        todo, k = list(out), 1
        while todo:
            asked = {parts.part_id(i, k): i for i in todo}
            found = self.shard.retrieve(list(asked), with_payload=False, with_vector=["sent"])
            for r in found:
                vector: Any = r.vector
                more[asked[str(r.id)]].append(np.asarray(vector["sent"], dtype=np.float32))
            todo, k = [asked[str(r.id)] for r in found], k + 1
        return {i: (dense, np.vstack([sent, *more[i]])) for i, (dense, sent) in out.items()}

    def close(self) -> None:
        return None  # the shard is the store's


class EdgeTranslator(Translator):
    def sparse(self, vector: SparseVec) -> qe.SparseVector:
        return qe.SparseVector(indices=vector.indices, values=vector.values)

    def match(self, key: str, value: str | list[str]) -> qe.FieldCondition:
        return qe.FieldCondition(key=key, match=qe.MatchAny(value) if isinstance(value, list) else qe.MatchValue(value))

    def combine(self, must: list[Any], must_not: list[Any]) -> qe.Filter:
        return qe.Filter(must=must or None, must_not=must_not or None)

    def owned(self, flt: FilterSpec) -> qe.Filter:
        """`flt` leaving out parts (parts.py): every point but a part has a passage vector."""
        return qe.Filter(must=[c for c in (self.filter(flt), qe.HasVectorCondition("dense")) if c is not None])

    def point(self, pid: str, vector: dict[str, Any], payload: dict[str, Any]) -> qe.Point:
        return qe.Point(id=pid, vector=vector, payload=payload)

    def config(self, dim: int, layout: IndexLayout, indexing_threshold_kb: int | None) -> qe.EdgeConfig:
        """A new generation's settings (`indexing_threshold_kb`: the engine's, KB of vectors; None: its default)."""
        return qe.EdgeConfig(
            # Float16 storage halves the memory of the dense and per-sentence vectors; on the labeled queries every
            # recall and MRR figure was identical to Float32 (README, "Search latency ... and memory").
            vectors=self.vectors(dim, layout),
            sparse_vectors=self.sparse_vectors(layout),
            # Generations are written once, flushed when sealed and never changed after publishing, so a WAL
            # adds nothing; without it the engine takes no lock, and the server, `kb ingest` and `kb search`
            # processes can all open the published generation at the same time.
            wal_enabled=False,
            # Concurrency comes from parallel requests; splitting one small search over threads only added CPU
            # (measured: 0.49 vs 0.70 ms per fused query on the sample corpus).
            max_search_threads=1,
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb)
            if indexing_threshold_kb
            else None,
        )

    def vector_params(
        self, dim: int, *, multi: bool, quantization: Quantization, on_disk: bool, datatype: VectorDatatype, dot: bool
    ) -> qe.EdgeVectorParams:
        maxsim = qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)
        return qe.EdgeVectorParams(
            dim,
            qe.Distance.Dot if dot else qe.Distance.Cosine,
            datatype=_VECTOR_TYPES[datatype],
            multivector_config=maxsim if multi else None,
            quantization_config=self._codes(quantization),
            memory=qe.Memory.Cold if on_disk else None,  # Cold: mapped, read on demand; None: loaded
        )

    @staticmethod
    def _codes(quantization: Quantization) -> Any:
        if quantization == "int8":
            return qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=QUANTILE, memory=qe.Memory.Pinned)
        if quantization == "binary":
            return qe.BinaryQuantizationConfig(
                encoding=qe.BinaryQuantizationEncoding.TwoBits,
                query_encoding=qe.BinaryQuantizationQueryEncoding.Scalar8Bits,
                memory=qe.Memory.Pinned,
            )
        return None

    def sparse_params(self, *, on_disk: bool, datatype: SparseDatatype) -> qe.EdgeSparseVectorParams:
        return qe.EdgeSparseVectorParams(
            modifier=qe.Modifier.Idf,
            memory=qe.Memory.Cold if on_disk else None,
            datatype=_SPARSE_TYPES[datatype],
        )
