"""How a generation keeps its dense vectors: in memory as Float16, or int8-quantised in memory with the originals
on disk (read only to rescore the few best candidates).

The layout is part of what an index is: every overview point records it (`LAYOUT_FIELD`), and the indexer builds on
a published generation only when its layout is the configured one; otherwise `kb ingest` re-indexes cleanly (see
`ingest/indexer.py`), so two layouts never meet in one generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Quantization = Literal["none", "int8"]
LAYOUT_FIELD = "index_layout"
# int8 codes span this central share of the values (outliers are clipped; rescoring uses the originals anyway).
QUANTILE = 0.99
# What generations sealed before layouts were recorded hold (Float16, everything in memory).
LEGACY = "f16-ram"


@dataclass(frozen=True)
class IndexLayout:
    """`quantization`: "int8" keeps one byte a dimension in memory (Qdrant's scalar quantisation) and rescores the
    best `oversampling` × limit candidates with the Float16 originals; `vectors_on_disk` leaves those originals in
    memory-mapped files the operating system pages in on demand instead of loading them."""

    quantization: Quantization = "int8"
    vectors_on_disk: bool = True
    oversampling: float = 2.0

    @property
    def name(self) -> str:
        """Recorded in every overview point; a change of name means the index must be rebuilt."""
        if self.quantization == "none" and not self.vectors_on_disk:
            return LEGACY
        return f"f16-{'disk' if self.vectors_on_disk else 'ram'}" + ("+int8" if self.quantization == "int8" else "")


PREVIOUS = IndexLayout(quantization="none", vectors_on_disk=False)
