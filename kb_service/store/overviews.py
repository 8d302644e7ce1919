"""The overview points' light payloads of a sealed generation, kept in a file beside the engine's.

Every process that serves a generation first reads its catalogue: each document's id, path, content hash and how it
was indexed, from the document's overview point. The engine reads a point's whole payload to return part of it, and an
overview point's payload holds the whole SOP as JSON, so that one read touched every page of the payload file: at 100k
chunks its 132 MB stayed resident in every serving process (mapped pages count in RSS until the kernel needs them),
although searches afterwards read the payloads of the few SOPs they return. Sealing writes the light payloads here
(about 0.8 KB a document), before the manifest, so they are checked with the engine's files; a generation sealed by
an earlier release has no such file and its catalogue is read from the engine as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from kb_service.store.base import StoreHit

FILE = "overviews.jsonl"


def write(root: Path, overviews: Iterable[StoreHit]) -> None:
    """One line per overview point (id and light payload), written durably under its final name."""
    tmp = root / f".{FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for hit in overviews:
            fh.write(json.dumps({"id": hit.id, "payload": hit.payload}, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / FILE)


def read(root: Path) -> list[StoreHit] | None:
    """The recorded overview points, or None when the generation has none recorded (sealed before this file)."""
    try:
        with open(root / FILE, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return None
    return [StoreHit(str(row["id"]), 0.0, row["payload"]) for row in rows]


def remove(root: Path) -> None:
    """A copied generation about to be changed: its overviews are recorded again when it is sealed."""
    (root / FILE).unlink(missing_ok=True)
