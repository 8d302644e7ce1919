"""The SOP catalogue of a published generation, read from its overview points.

Documents are kept as compact JSON and parsed on demand (with a bounded cache): at 100k chunks a fully parsed
catalogue of ~9,000 SOPs took 580 MB; searches only ever need the few SOPs they return.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping

from kb_service.models import Sop

PARSED_CACHE_SIZE = 2_000


class Catalog(Mapping[str, Sop]):
    def __init__(self, documents: dict[str, str], paths: dict[str, str]) -> None:
        self._json = documents
        self._paths = paths
        self._parsed: OrderedDict[str, Sop] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, sop_id: str) -> Sop:
        with self._lock:
            sop = self._parsed.get(sop_id)
            if sop is not None:
                self._parsed.move_to_end(sop_id)
                return sop
        sop = Sop.model_validate_json(self._json[sop_id])  # KeyError for an unknown id, as a Mapping should
        with self._lock:
            self._parsed[sop_id] = sop
            while len(self._parsed) > PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        return sop

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __contains__(self, sop_id: object) -> bool:
        return sop_id in self._json

    def path_of(self, sop_id: str) -> str | None:
        """The document's file path, without parsing it."""
        return self._paths.get(sop_id)

    def has_path(self, path: str) -> bool:
        return path in self._paths.values()
