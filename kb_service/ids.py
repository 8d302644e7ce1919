"""Content-derived ids: a chunk id starts with its SOP's prefix, so search groups hits per SOP without payloads.

Both the chunker (which makes the ids) and search (which reads the SOP back out of them) use these; they live here so
that the read path does not depend on the write path.
"""

from __future__ import annotations

import hashlib
import uuid


def sop_prefix(sop_id: str) -> str:
    """First 12 hex digits of every chunk id of a SOP: search groups hits by SOP without reading payloads."""
    return hashlib.sha256(sop_id.encode("utf-8")).hexdigest()[:12]


def chunk_id(sop_id: str, digest: str) -> str:
    """Content-derived id: the SOP's prefix followed by a hash of everything the chunk carries."""
    content = hashlib.sha256(digest.encode("utf-8")).digest()[:10]
    return str(uuid.UUID(bytes=bytes.fromhex(sop_prefix(sop_id)) + content, version=4))
