"""The store contract in Qdrant's terms, written once for both backends.

qdrant-edge-py (`qdrant_edge`) and qdrant-client (`qdrant_client.models`) name the same concepts with different
classes; a backend's `Translator` subclass supplies only those constructors, and the logic that turns a `FilterSpec`,
an `IndexPoint` or a `ChannelQuery` into them, and their records back into `StoreHit`s, lives here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from kb_service.store.base import ChannelQuery, FilterSpec, IndexPoint, StoreHit
from kb_service.store.layout import IndexLayout, Quantization, SparseDatatype, VectorDatatype
from kb_service.store.sparse import SparseVec

# A page of records and the offset of the next page (None after the last), as both clients' scroll returns it.
Page = tuple[list[Any], Any]


class Translator(ABC):
    """Builds one backend's request objects; subclasses name the backend's classes."""

    @abstractmethod
    def sparse(self, vector: SparseVec) -> Any: ...

    @abstractmethod
    def match(self, key: str, value: str | list[str]) -> Any:
        """A condition on payload field `key`: equal to `value`, or to any of a list of values."""

    @abstractmethod
    def combine(self, must: list[Any], must_not: list[Any]) -> Any:
        """A filter from conditions (empty lists mean none of that kind)."""

    @abstractmethod
    def point(self, pid: str, vector: dict[str, Any], payload: dict[str, Any]) -> Any: ...

    @abstractmethod
    def vector_params(
        self, dim: int, *, multi: bool, quantization: Quantization, on_disk: bool, datatype: VectorDatatype, dot: bool
    ) -> Any:
        """Cosine vectors, or dot-product ones when `dot` (MaxSim multivectors when `multi`) stored as `datatype`;
        `quantization`: quantised copies kept in memory; `on_disk`: the originals stay in their files until read."""

    @abstractmethod
    def sparse_params(self, *, on_disk: bool, datatype: SparseDatatype) -> Any:
        """A sparse channel with IDF weighting; `on_disk`: its inverted index stays in its files until read;
        `datatype`: how its weights are stored."""

    def vectors(self, dim: int, layout: IndexLayout) -> dict[str, Any]:
        """The dense channels of a new generation: "dense" (one vector a chunk) and "sent" (one a sentence)."""
        out = {}
        for name in ("dense", "sent"):
            quantization, on_disk = layout.channel(name)
            datatype = layout.vector_datatype(name)
            out[name] = self.vector_params(
                dim, multi=name == "sent", quantization=quantization, on_disk=on_disk, datatype=datatype, dot=layout.dot
            )
        return out

    def sparse_vectors(self, layout: IndexLayout) -> dict[str, Any]:
        """The sparse channels of a new generation: "lex" (characters and words) and "py" (pinyin)."""
        return {
            name: self.sparse_params(on_disk=layout.sparse_on_disk(name), datatype=layout.sparse_datatype(name))
            for name in ("lex", "py")
        }

    def filter(self, flt: FilterSpec) -> Any | None:
        must: list[Any] = []
        if flt.public_only:
            must.append(self.match("audience", "public"))
        for key, values in (
            ("category", flt.categories),
            ("tags", flt.tags),
            ("sop_id", flt.sop_ids),
            ("section_kind", flt.section_kinds),
        ):
            if values:
                must.append(self.match(key, list(values)))
        must_not: list[Any] = []
        if flt.without_examples_of:
            examples = [self.match("sop_id", flt.without_examples_of), self.match("section_kind", "examples")]
            must_not.append(self.combine(examples, []))
        return self.combine(must, must_not) if must or must_not else None

    def sop_filter(self, sop_ids: Sequence[str]) -> Any:
        return self.combine([self.match("sop_id", list(sop_ids))], [])

    def query_vector(self, query: ChannelQuery) -> Any:
        if isinstance(query.vector, SparseVec):
            return self.sparse(query.vector)
        vec = np.asarray(query.vector, dtype=np.float32)
        return [vec.tolist()] if query.channel == "sent" else vec.tolist()  # "sent" is a multivector of one

    def points(self, points: Sequence[IndexPoint], batch: int) -> Iterator[list[Any]]:
        """The points as the backend's point objects, `batch` at a time."""
        for start in range(0, len(points), batch):
            yield [
                self.point(
                    p.id,
                    {
                        "dense": p.dense.tolist(),
                        "sent": p.sentences.tolist(),
                        "lex": self.sparse(p.lex),
                        "py": self.sparse(p.py),
                    },
                    p.payload,
                )
                for p in points[start : start + batch]
            ]


def stored(vector: Any) -> tuple[np.ndarray, np.ndarray]:
    """A point's passage and sentence vectors as an engine or server returns them (named vectors)."""
    return np.asarray(vector["dense"], dtype=np.float32), np.asarray(vector["sent"], dtype=np.float32)


def hits(records: Iterable[Any]) -> list[StoreHit]:
    """Scored points or plain records (score 0) as hits; payloads are copied out of the client's objects."""
    return [
        StoreHit(id=str(r.id), score=float(getattr(r, "score", 0.0) or 0.0), payload=dict(r.payload or {}))
        for r in records
    ]


def pages(fetch: Callable[[Any], Page]) -> Iterator[list[Any]]:
    """Every page of a scroll: `fetch(offset)` returns one page and the next offset."""
    offset: Any = None
    while True:
        records, offset = fetch(offset)
        yield records
        if offset is None:
            return
