"""A sealed generation's payloads, kept in a file beside the engine's and read by offset.

The engine maps its payload file into every serving process and returns payloads from the mapped pages. A search
reads the payloads of the few chunks and SOPs it shows, but each read maps the pages around it too (the kernel maps
up to 64 KB of cached neighbours per fault), so over a few hundred varied questions the whole file became resident in
every process: at 100k chunks 126 of its 160 MB counted in each worker's RSS (docs/benchmarks.md, session 56).
Sealing therefore writes every point's payload here as well, compressed, with a sorted table of ids and offsets
(three small arrays, 28 bytes a point, loaded in memory); reads copy the few records asked for with `pread`, so the
pages stay in the page cache, shared and free for the kernel to reclaim, and never in the process's own memory.

The engine keeps its copy: it filters on the payload's keyword fields, a generation being built (before sealing)
is read from it, and a generation sealed by an earlier release has no such file.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from kb_service.store import facets, record_file
from kb_service.store.base import StoreHit

DATA = "payloads.bin"
TABLE = "payloads.idx.npz"
SOURCE = ".payloads-source"  # a copied generation's source records, until it is sealed
_LEVEL = 1  # zlib's fastest level: 2.1 KB of JSON a chunk to about 1 KB, sealing 100k points in a few seconds


def encode(payload: dict[str, Any]) -> bytes:
    """One point's record as the file keeps it."""
    return zlib.compress(json.dumps(payload, ensure_ascii=False).encode(), _LEVEL)


def write(root: Path, records: Iterable[tuple[str, bytes]]) -> bool:
    """Write every point's record (id, `encode`d payload) and the id table durably under their final names. False
    (and nothing written) when a point's id is not a UUID: the generation is then read from the engine alone."""
    return record_file.write(root, DATA, TABLE, records)


def remove(root: Path) -> None:
    """A generation about to be changed without its source's records: they are written again when it is sealed."""
    for name in (TABLE, DATA):
        (root / name).unlink(missing_ok=True)


def set_aside(root: Path) -> None:
    """A copied generation about to be changed: its payload file (the source's, checked with the copy) moves to a
    directory of its own, from which sealing copies the records of the points the change left alone."""
    aside = root / SOURCE
    shutil.rmtree(aside, ignore_errors=True)
    if not ((root / DATA).is_file() and (root / TABLE).is_file()):
        remove(root)
        return
    aside.mkdir()
    for name in (DATA, TABLE):
        os.replace(root / name, aside / name)


def set_aside_file(root: Path) -> PayloadFile | None:
    """The source records `set_aside` kept (None: none)."""
    return PayloadFile.open_at(root / SOURCE)


def discard_aside(root: Path) -> None:
    shutil.rmtree(root / SOURCE, ignore_errors=True)


def read_facets(root: Path) -> Callable[[list[str]], dict[str, facets.Facet]]:
    """What reads the facets of a sealed generation's points from its payload file (none where it has none)."""

    def read(ids: list[str]) -> dict[str, facets.Facet]:
        recorded = PayloadFile.open_at(root)
        if recorded is None:
            return {}
        try:
            return {hit.id: facets.of(hit.payload) for hit in recorded.read(ids, ("audience", "section_kind"))}
        finally:
            recorded.close()

    return read


class PayloadFile(record_file.RecordFile):
    """The recorded payloads of one sealed generation (open with `open_at`)."""

    @classmethod
    def open_at(cls, root: Path) -> PayloadFile | None:
        """The generation's payload file, or None when it has none (being built, or sealed before this file)."""
        data, table = root / DATA, root / TABLE
        return cls(data, table) if data.is_file() and table.is_file() else None

    def read(self, ids: Sequence[str], fields: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[StoreHit]:
        """The payloads of the ids that are recorded, in the order asked (unknown ids left out, as the engine
        does); `fields`: only these fields, else all but `exclude`."""
        out: list[StoreHit] = []
        for point_id in dict.fromkeys(ids):  # each point once, as the engine returns them
            payload = self._payload(point_id)
            if payload is None:
                continue
            if fields:
                payload = {k: payload[k] for k in fields if k in payload}
            else:
                for k in exclude:
                    payload.pop(k, None)
            out.append(StoreHit(id=point_id, score=0.0, payload=payload))
        return out

    def _payload(self, point_id: str) -> dict[str, Any] | None:
        raw = self.record(point_id)
        if raw is None:
            return None
        try:
            payload: dict[str, Any] = json.loads(zlib.decompress(raw))
        except (zlib.error, ValueError) as exc:  # changed on disk since it was checked (an operator's trial)
            raise self.damaged(f"record {point_id}: {exc}") from exc
        return payload
