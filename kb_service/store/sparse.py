"""The sparse vector the stores take: term ids and weights (the lexical encoder makes them; stores only carry them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)
