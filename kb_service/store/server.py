"""A Qdrant server (or qdrant-client's local mode in tests) through qdrant-client.

Each generation is a collection `<alias>__<name>`; the alias `<alias>` is the published pointer, switched
atomically on the server, so several API replicas behind one Qdrant see a new generation at the same moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from kb_service.errors import IndexNotReadyError
from kb_service.store.base import (
    HEAVY_FIELDS,
    KEYWORD_FIELDS,
    ChannelQuery,
    FilterSpec,
    IndexPoint,
    SearchSpec,
    StoreHit,
    StoreInfo,
)
from kb_service.store.sparse import SparseVec

_BATCH = 256


def _sparse(v: SparseVec) -> qm.SparseVector:
    return qm.SparseVector(indices=v.indices, values=v.values)


def _vector(query: ChannelQuery) -> Any:
    if isinstance(query.vector, SparseVec):
        return _sparse(query.vector)
    vec = np.asarray(query.vector, dtype=np.float32)
    return [vec.tolist()] if query.channel == "sent" else vec.tolist()


def server_filter(flt: FilterSpec) -> qm.Filter | None:
    must: list[Any] = []
    if flt.public_only:
        must.append(qm.FieldCondition(key="audience", match=qm.MatchValue(value="public")))
    for key, values in (
        ("category", flt.categories),
        ("tags", flt.tags),
        ("sop_id", flt.sop_ids),
        ("section_kind", flt.section_kinds),
    ):
        if values:
            must.append(qm.FieldCondition(key=key, match=qm.MatchAny(any=list(values))))
    must_not: list[Any] = []
    if flt.without_examples_of:
        must_not.append(
            qm.Filter(
                must=[
                    qm.FieldCondition(key="sop_id", match=qm.MatchValue(value=flt.without_examples_of)),
                    qm.FieldCondition(key="section_kind", match=qm.MatchValue(value="examples")),
                ]
            )
        )
    return qm.Filter(must=must or None, must_not=must_not or None) if must or must_not else None


class ServerStore:
    def __init__(self, client: QdrantClient, alias: str, hnsw_ef: int = 128) -> None:
        self.client = client
        self.alias = alias
        self._hnsw_ef = hnsw_ef

    def _collection(self, name: str) -> str:
        return f"{self.alias}__{name}"

    def published(self) -> str | None:
        for a in self.client.get_aliases().aliases:
            if a.alias_name == self.alias:
                return a.collection_name.removeprefix(f"{self.alias}__")
        return None

    def generations(self) -> list[str]:
        prefix = f"{self.alias}__"
        return sorted(
            c.name.removeprefix(prefix) for c in self.client.get_collections().collections if c.name.startswith(prefix)
        )

    def create(self, name: str, dim: int, copy_from: str | None) -> None:
        coll = self._collection(name)
        self.client.create_collection(
            coll,
            vectors_config={
                "dense": qm.VectorParams(size=dim, distance=qm.Distance.COSINE, datatype=qm.Datatype.FLOAT16),
                "sent": qm.VectorParams(
                    size=dim,
                    distance=qm.Distance.COSINE,
                    datatype=qm.Datatype.FLOAT16,
                    multivector_config=qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM),
                ),
            },
            sparse_vectors_config={
                "lex": qm.SparseVectorParams(modifier=qm.Modifier.IDF),
                "py": qm.SparseVectorParams(modifier=qm.Modifier.IDF),
            },
        )
        for key in KEYWORD_FIELDS:
            self.client.create_payload_index(coll, key, qm.PayloadSchemaType.KEYWORD)
        if copy_from is None:
            return
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                self._collection(copy_from), limit=_BATCH, offset=offset, with_payload=True, with_vectors=True
            )
            if records:
                self.client.upsert(
                    coll,
                    [qm.PointStruct(id=r.id, vector=r.vector, payload=r.payload) for r in records],  # type: ignore[arg-type]
                )
            if offset is None:
                return

    def upsert(self, name: str, points: Sequence[IndexPoint]) -> None:
        for start in range(0, len(points), _BATCH):
            batch = [
                qm.PointStruct(
                    id=p.id,
                    vector={
                        "dense": p.dense.tolist(),
                        "sent": p.sentences.tolist(),
                        "lex": _sparse(p.lex),
                        "py": _sparse(p.py),
                    },
                    payload=p.payload,
                )
                for p in points[start : start + _BATCH]
            ]
            self.client.upsert(self._collection(name), batch)

    def delete_sops(self, name: str, sop_ids: Sequence[str]) -> None:
        if sop_ids:
            flt = qm.Filter(must=[qm.FieldCondition(key="sop_id", match=qm.MatchAny(any=list(sop_ids)))])
            self.client.delete(self._collection(name), points_selector=qm.FilterSelector(filter=flt))

    def seal(self, name: str, optimize: bool = True) -> None:
        return None  # the server persists and optimises on its own

    def publish(self, name: str) -> None:
        ops: list[Any] = []
        if self.published() is not None:
            ops.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=self.alias)))
        ops.append(
            qm.CreateAliasOperation(
                create_alias=qm.CreateAlias(collection_name=self._collection(name), alias_name=self.alias)
            )
        )
        self.client.update_collection_aliases(change_aliases_operations=ops)

    def drop(self, name: str) -> None:
        self.client.delete_collection(self._collection(name))

    def check(self, name: str) -> None:
        if not self.client.collection_exists(self._collection(name)):  # the server keeps its own files sound
            raise IndexNotReadyError(f"索引版本 {name} 不存在 / index generation {name} does not exist")

    def info(self, name: str) -> StoreInfo:
        coll = self.client.get_collection(self._collection(name))
        vectors = coll.config.params.vectors
        dim = vectors["dense"].size if isinstance(vectors, dict) else 0
        points = self.client.count(self._collection(name), exact=True).count
        return StoreInfo(generation=name, points=points, dim=dim)

    def scroll(self, name: str, flt: FilterSpec, with_vectors: bool = False) -> list[StoreHit]:
        out: list[StoreHit] = []
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                self._collection(name),
                scroll_filter=server_filter(flt),
                limit=1000,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            out += [StoreHit(id=str(r.id), score=0.0, payload=dict(r.payload or {})) for r in records]
            if offset is None:
                return out

    def search(self, name: str, spec: SearchSpec) -> list[StoreHit]:
        flt = server_filter(spec.filter)
        params = qm.SearchParams(hnsw_ef=self._hnsw_ef)
        prefetch = [
            qm.Prefetch(query=_vector(c), using=c.channel, limit=c.limit, filter=flt, params=params)
            for c in spec.channels
        ]
        res = self.client.query_points(
            self._collection(name),
            prefetch=prefetch,
            query=(
                qm.RrfQuery(rrf=qm.Rrf(k=spec.rrf_k, weights=list(spec.weights)))
                if spec.fusion == "rrf"
                else qm.FusionQuery(fusion=qm.Fusion.DBSF)
            ),
            limit=spec.limit,
            with_payload=False,
        )
        return [StoreHit(id=str(p.id), score=float(p.score), payload={}) for p in res.points]

    def search_channel(self, name: str, query: ChannelQuery, flt: FilterSpec) -> list[StoreHit]:
        res = self.client.query_points(
            self._collection(name),
            query=_vector(query),
            using=query.channel,
            limit=query.limit,
            query_filter=server_filter(flt),
            with_payload=False,
            search_params=qm.SearchParams(hnsw_ef=self._hnsw_ef),
        )
        return [StoreHit(id=str(p.id), score=float(p.score), payload={}) for p in res.points]

    def retrieve(self, name: str, ids: Sequence[str]) -> list[StoreHit]:
        records = self.client.retrieve(
            self._collection(name), ids=list(ids), with_payload=qm.PayloadSelectorExclude(exclude=HEAVY_FIELDS)
        )
        return [StoreHit(id=str(r.id), score=0.0, payload=dict(r.payload or {})) for r in records]

    def forget(self, name: str) -> None:
        return None  # nothing held per collection

    def close(self) -> None:
        self.client.close()
