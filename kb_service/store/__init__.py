"""Vector stores behind one seam: Qdrant's in-process engine (default) or a Qdrant server via qdrant-client."""

from kb_service.store.base import (
    ChannelQuery,
    FilterSpec,
    IndexPoint,
    SearchSpec,
    StoreHit,
    StoreInfo,
    VectorStore,
)
from kb_service.store.sparse import SparseVec

__all__ = [
    "ChannelQuery",
    "FilterSpec",
    "IndexPoint",
    "SearchSpec",
    "SparseVec",
    "StoreHit",
    "StoreInfo",
    "VectorStore",
]
