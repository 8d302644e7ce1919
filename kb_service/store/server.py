"""A Qdrant server (or qdrant-client's local mode in tests) through qdrant-client.

Each generation is a collection `<alias>__<name>`; the alias `<alias>` is the published pointer, switched
atomically on the server, so several API replicas behind one Qdrant see a new generation at the same moment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from kb_service.errors import IndexNotReadyError
from kb_service.store.base import (
    HEAVY_FIELDS,
    KEYWORD_FIELDS,
    OVERVIEWS,
    ChannelQuery,
    FilterSpec,
    IndexPoint,
    SearchSpec,
    StoredVectors,
    StoreHit,
    StoreInfo,
    Vectors,
)
from kb_service.store.layout import QUANTILE, IndexLayout, Quantization, SparseDatatype, VectorDatatype
from kb_service.store.sparse import SparseVec
from kb_service.store.translate import Page, Translator, hits, pages, stored

_BATCH = 256


class ServerVectors:
    """A collection's vectors read from the server."""

    def __init__(self, client: QdrantClient, collection: str) -> None:
        self.client, self.collection = client, collection

    def vectors(self, ids: Sequence[str]) -> Vectors:
        records = self.client.retrieve(
            self.collection, ids=list(ids), with_payload=False, with_vectors=["dense", "sent"]
        )
        return {str(r.id): stored(r.vector) for r in records if r.vector}

    def close(self) -> None:
        return None  # the client is the store's


class ServerTranslator(Translator):
    def sparse(self, vector: SparseVec) -> qm.SparseVector:
        return qm.SparseVector(indices=vector.indices, values=vector.values)

    def match(self, key: str, value: str | list[str]) -> qm.FieldCondition:
        return qm.FieldCondition(
            key=key, match=qm.MatchAny(any=value) if isinstance(value, list) else qm.MatchValue(value=value)
        )

    def combine(self, must: list[Any], must_not: list[Any]) -> qm.Filter:
        return qm.Filter(must=must or None, must_not=must_not or None)

    def point(self, pid: str, vector: dict[str, Any], payload: dict[str, Any]) -> qm.PointStruct:
        return qm.PointStruct(id=pid, vector=vector, payload=payload)

    def vector_params(
        self, dim: int, *, multi: bool, quantization: Quantization, on_disk: bool, datatype: VectorDatatype, dot: bool
    ) -> qm.VectorParams:
        multivector = qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM) if multi else None
        return qm.VectorParams(
            size=dim,
            distance=qm.Distance.DOT if dot else qm.Distance.COSINE,
            datatype=qm.Datatype(datatype),
            multivector_config=multivector,
            quantization_config=self._codes(quantization),
            on_disk=on_disk or None,
        )

    @staticmethod
    def _codes(quantization: Quantization) -> Any:
        if quantization == "int8":
            scalar = qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, quantile=QUANTILE, always_ram=True)
            return qm.ScalarQuantization(scalar=scalar)
        if quantization == "binary":
            binary = qm.BinaryQuantizationConfig(
                always_ram=True,
                encoding=qm.BinaryQuantizationEncoding.TWO_BITS,
                query_encoding=qm.BinaryQuantizationQueryEncoding.SCALAR8BITS,
            )
            return qm.BinaryQuantization(binary=binary)
        return None

    def sparse_params(self, *, on_disk: bool, datatype: SparseDatatype) -> qm.SparseVectorParams:
        kind = None if datatype == "float32" else qm.Datatype(datatype)
        return qm.SparseVectorParams(
            index=qm.SparseIndexParams(on_disk=on_disk or None, datatype=kind), modifier=qm.Modifier.IDF
        )


_QM = ServerTranslator()


class ServerStore:
    def __init__(self, client: QdrantClient, alias: str, hnsw_ef: int = 128, layout: IndexLayout | None = None) -> None:
        self.client = client
        self.alias = alias
        self.layout = layout or IndexLayout()
        rescore = qm.QuantizationSearchParams(rescore=self.layout.rescore, oversampling=self.layout.rescored)
        self._params = qm.SearchParams(hnsw_ef=hnsw_ef, quantization=rescore)
        # a channel alone: its scores are read as cosines, rescored whatever the layout's ranking does
        exact = qm.QuantizationSearchParams(rescore=True, oversampling=self.layout.exact_oversampling)
        self._exact = qm.SearchParams(hnsw_ef=hnsw_ef, quantization=exact)

    def _collection(self, name: str) -> str:
        return f"{self.alias}__{name}"

    def published(self) -> str | None:
        for a in self.client.get_aliases().aliases:
            if a.alias_name == self.alias:
                return a.collection_name.removeprefix(f"{self.alias}__")
        return None

    def lost(self) -> str | None:
        return None  # the server drops an alias with its collection

    def generations(self) -> list[str]:
        prefix = f"{self.alias}__"
        return sorted(
            c.name.removeprefix(prefix) for c in self.client.get_collections().collections if c.name.startswith(prefix)
        )

    def create(self, name: str, dim: int, copy_from: str | None) -> None:
        coll = self._collection(name)
        self.client.create_collection(
            coll,
            vectors_config=_QM.vectors(dim, self.layout),
            sparse_vectors_config=_QM.sparse_vectors(self.layout),
        )
        for key in KEYWORD_FIELDS:
            self.client.create_payload_index(coll, key, qm.PayloadSchemaType.KEYWORD)
        if copy_from is None:
            return
        source = self._collection(copy_from)

        def fetch(offset: Any) -> Page:
            return self.client.scroll(source, limit=_BATCH, offset=offset, with_payload=True, with_vectors=True)

        for records in pages(fetch):
            if records:
                self.client.upsert(coll, [_QM.point(r.id, r.vector, r.payload) for r in records])

    def upsert(self, name: str, points: Sequence[IndexPoint]) -> None:
        for batch in _QM.points(points, _BATCH):
            self.client.upsert(self._collection(name), batch)

    def delete_sops(self, name: str, sop_ids: Sequence[str]) -> None:
        if sop_ids:
            selector = qm.FilterSelector(filter=_QM.sop_filter(sop_ids))
            self.client.delete(self._collection(name), points_selector=selector)

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

    def sealed_at(self, name: str) -> float | None:
        return None  # the server keeps no seal time: generations are dropped as soon as they are superseded

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

    def scroll(self, name: str, flt: FilterSpec, with_vectors: bool = False, light: bool = False) -> Iterator[StoreHit]:
        coll, condition = self._collection(name), _QM.filter(flt)
        payload = qm.PayloadSelectorExclude(exclude=HEAVY_FIELDS) if light else True

        def fetch(offset: Any) -> Page:
            return self.client.scroll(
                coll,
                scroll_filter=condition,
                limit=1000,
                offset=offset,
                with_payload=payload,
                with_vectors=with_vectors,
            )

        return (hit for page in pages(fetch) for hit in hits(page))

    def overviews(self, name: str) -> Iterator[StoreHit]:
        return self.scroll(name, OVERVIEWS, light=True)  # read by the server's process, not this one

    def search(self, name: str, spec: SearchSpec) -> list[StoreHit]:
        flt = _QM.filter(spec.filter)
        prefetch = [
            qm.Prefetch(query=_QM.query_vector(c), using=c.channel, limit=c.limit, filter=flt, params=self._params)
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
        return hits(res.points)

    def search_channel(self, name: str, query: ChannelQuery, flt: FilterSpec) -> list[StoreHit]:
        res = self.client.query_points(
            self._collection(name),
            query=_QM.query_vector(query),
            using=query.channel,
            limit=query.limit,
            query_filter=_QM.filter(flt),
            with_payload=False,
            search_params=self._exact,
        )
        return hits(res.points)

    def retrieve(self, name: str, ids: Sequence[str], fields: Sequence[str] = ()) -> list[StoreHit]:
        selector = (
            qm.PayloadSelectorInclude(include=list(fields))
            if fields
            else qm.PayloadSelectorExclude(exclude=HEAVY_FIELDS)
        )
        records = self.client.retrieve(self._collection(name), ids=list(ids), with_payload=selector)
        return hits(records)

    def stored_vectors(self, name: str) -> StoredVectors:
        return ServerVectors(self.client, self._collection(name))

    def forget(self, name: str) -> None:
        return None  # nothing held per collection

    def close(self) -> None:
        self.client.close()
