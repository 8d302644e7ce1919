"""How a generation keeps its vectors: in memory as Float16, or quantised in memory (int8, or binary at two bits a
dimension) with the originals on disk (read only to rescore the few best candidates); and where the channels that
only hit tests read (the passage vector, the pinyin terms) live.

The layout is part of what an index is: every overview point records it (`LAYOUT_FIELD`), and the indexer builds on
a published generation only when its layout is the configured one; otherwise `kb ingest` re-indexes cleanly (see
`ingest/indexer.py`), so two layouts never meet in one generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Quantization = Literal["none", "int8", "binary"]
SparseDatatype = Literal["float32", "float16", "uint8"]
VectorDatatype = Literal["float16", "turbo8"]
LAYOUT_FIELD = "index_layout"
# int8 codes span this central share of the values (outliers are clipped; rescoring uses the originals anyway).
QUANTILE = 0.99
# Coarser codes need more candidates rescored for the same ranking (binary: measured in docs/benchmarks.md).
OVERSAMPLING = {"none": 1.0, "int8": 2.0, "binary": 4.0}
# What generations sealed before layouts were recorded hold (Float16, everything in memory).
LEGACY = "f16-ram"


@dataclass(frozen=True)
class IndexLayout:
    """`quantization`: "int8" keeps one byte a dimension in memory (Qdrant's scalar quantisation), "binary" two bits
    a dimension (Qdrant's binary quantisation, the query kept at 8 bits); either rescores the best
    `oversampling` × limit candidates with the Float16 originals. `vectors_on_disk` leaves those originals in
    memory-mapped files the operating system pages in on demand instead of loading them. `aux_on_disk` keeps the
    channels the ranking does not fuse (the passage vector and the pinyin terms, read by hit tests only) in mapped
    files, unquantised, instead of in memory."""

    quantization: Quantization = "binary"
    vectors_on_disk: bool = True
    oversampling: float | None = None  # None: OVERSAMPLING for the quantisation
    aux_on_disk: bool = True
    # False: the ranking search reads the codes alone; a channel searched alone is rescored all the same
    # (exact_oversampling). A search setting, not part of the layout's name
    rescore: bool = True
    # How the ranked lexical channel's term weights are stored in its in-memory inverted index (the engine's sparse
    # datatype): one byte each by default; at 100k chunks float32 weights took 72 MB more (docs/benchmarks.md)
    lexical_datatype: SparseDatatype = "uint8"
    # How the ranked sentence vectors' originals (read to rescore) are stored: Float16, or eight-bit TurboQuant codes
    # (the engine's primary-storage quantisation: half the bytes)
    originals: VectorDatatype = "float16"
    # True: vectors compared by their dot product, not their cosine. Shortened USE vectors (KB_EMBED_DIMENSIONS) keep
    # the length their projection leaves them (below 1), so their dot product estimates the full vectors' cosine;
    # renormalised, every cosine rose (at 128 dimensions by 0.085 between close texts) and the chat's thresholds,
    # fitted on full vectors, answered out-of-scope questions they hand over (docs/benchmarks.md, session 51)
    dot: bool = False
    # True: sealing also records the originals in a file of the generation's own (store/vector_file.py), from which
    # the embedded engine's searches rescore their candidates by `pread` instead of mapping the engine's originals;
    # the passage vector then gets codes too (hit tests and the learned ranker search it on every query)
    vectors_file: bool = True
    # Where the originals are recorded, the engine keeps a point's first this many sentence rows and parts of their
    # own hold the others, as many each (store/parts.py: the max-sim of a graph search read up to 64 rows of every
    # example list it visited); None: every row in the point
    sentence_rows: int | None = 16

    @property
    def recorded(self) -> bool:
        """Whether the generation's originals are recorded in its vector file (only where there are codes)."""
        return self.vectors_file and self.quantization != "none"

    @property
    def rescored(self) -> float | None:
        """How many times `limit` candidates are rescored with the originals (None: no rescoring)."""
        if not self.rescore:
            return None
        return self.exact_oversampling

    @property
    def exact_oversampling(self) -> float:
        """The rescoring of a single-channel search, rescored whatever `rescore` says: two-bit codes score on a
        scale of their own (hundreds below zero, not cosines), and the confidence, the learned ranker and hit tests
        read a channel's scores as cosines (with `KB_INDEX_RESCORE=false` they read codes until session 35: R@1 on the
        tuning half 0.568 instead of 0.935, docs/benchmarks.md)."""
        return self.oversampling if self.oversampling is not None else OVERSAMPLING[self.quantization]

    @property
    def name(self) -> str:
        """Recorded in every overview point; a change of name means the index must be rebuilt."""
        if (
            self.quantization == "none"
            and not self.vectors_on_disk
            and not self.aux_on_disk
            and self.lexical_datatype == "float32"
            and self.originals == "float16"
        ):
            return LEGACY
        codes = {"none": "", "int8": "+int8", "binary": "+bin2"}[self.quantization]
        aux = "+aux-disk" if self.aux_on_disk else ""
        lex = {"float32": "", "float16": "+lex16", "uint8": "+lex8"}[self.lexical_datatype]
        originals = "" if self.originals == "float16" else "+t8"
        dot = "+dot" if self.dot else ""
        recorded = "+vf" if self.recorded else ""
        rows = f"+rows{self.sentence_rows}" if self.recorded and self.sentence_rows else ""
        return f"f16-{'disk' if self.vectors_on_disk else 'ram'}{codes}{aux}{lex}{originals}{dot}{recorded}{rows}"

    def channel(self, name: str) -> tuple[Quantization, bool]:
        """How vector channel `name` is stored: its quantisation and whether its originals stay on disk."""
        if self.aux_on_disk and name not in RANKED and not (self.recorded and name == "dense"):
            return "none", True
        return self.quantization, self.vectors_on_disk

    def vector_datatype(self, name: str) -> VectorDatatype:
        """How vector channel `name` stores its originals (only the ranked sentence vectors are ever narrowed)."""
        return self.originals if name == "sent" else "float16"

    def sparse_datatype(self, name: str) -> SparseDatatype:
        """How sparse channel `name` stores its weights (only the ranked lexical channel is ever narrowed)."""
        return self.lexical_datatype if name == "lex" else "float32"

    def sparse_on_disk(self, name: str) -> bool:
        """Whether sparse channel `name`'s inverted index stays in its mapped files (else it is loaded)."""
        return self.aux_on_disk and name not in RANKED


# The channels the shipped ranking fuses (kb_service/search/config.py); the others serve hit tests only.
RANKED = ("sent", "lex")


PREVIOUS = IndexLayout(quantization="none", vectors_on_disk=False, aux_on_disk=False, lexical_datatype="float32")
# The default before session 13: int8 codes for every vector channel, originals on disk.
INT8 = IndexLayout(quantization="int8", aux_on_disk=False, lexical_datatype="float32", vectors_file=False)
# The default of sessions 13-17: two-bit codes, hit-test channels on disk, float32 lexical weights.
BINARY_F32 = IndexLayout(lexical_datatype="float32", vectors_file=False)
# The default of sessions 18-56: the engine rescores from its mapped originals, the passage vector unquantised.
ENGINE_RESCORED = IndexLayout(vectors_file=False)
