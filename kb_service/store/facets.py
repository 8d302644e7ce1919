"""What a search filters a recorded point by, kept in its generation's vector table: whether tenants may see it and
its section's kind.

With them a search among a few SOPs' chunks (the learned ranker's and the confidence's: `within.py`) is answered from
the recorded originals alone, exactly, without asking the engine (four such searches took 3.7 of 16 ms a search at
100k chunks, docs/benchmarks.md, session 59). The SOP of a point is its id's prefix (kb_service.ids); category and tags
are not recorded (a filter on them is left to the engine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PUBLIC, KIND, KINDS = "public", "kind", "kinds"  # the table's arrays: per point, per point (codes), their names
EXAMPLES = "examples"  # the section kind of a SOP's example questions (FilterSpec.without_examples_of)

Facet = tuple[bool, str]  # tenants may see it, its section kind


def of(payload: Mapping[str, Any]) -> Facet:
    """A point's facets as its payload holds them (the engine filters on the same fields)."""
    return payload.get("audience") == "public", str(payload.get("section_kind", ""))


def arrays(values: Sequence[Facet]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The table's arrays for these facets (one a point, in the order of the table's keys): per point, and the kinds'
    names the codes index."""
    names = sorted({kind for _, kind in values})
    if len(names) > 255:
        raise ValueError(f"{len(names)} section kinds: more than a byte holds")
    code = {name: i for i, name in enumerate(names)}
    public = np.array([p for p, _ in values], dtype=bool)
    kind = np.array([code[k] for _, k in values], dtype=np.uint8)
    return {PUBLIC: public, KIND: kind}, {KINDS: np.array(names, dtype=str)}


@dataclass(frozen=True)
class Facets:
    """The recorded facets of a generation's points, by table position."""

    public: np.ndarray
    kind: np.ndarray
    kinds: tuple[str, ...]

    @classmethod
    def from_table(cls, extra: Mapping[str, np.ndarray], points: int) -> Facets | None:
        """The table's facets; None when it has none (sealed before they were recorded) or they do not fit."""
        if not {PUBLIC, KIND, KINDS} <= set(extra):
            return None
        public, kind = np.asarray(extra[PUBLIC], dtype=bool), np.asarray(extra[KIND], dtype=np.uint8)
        kinds = tuple(str(k) for k in extra[KINDS])
        if len(public) != points or len(kind) != points or (len(kind) and int(kind.max()) >= len(kinds)):
            return None
        return cls(public, kind, kinds)

    def at(self, positions: np.ndarray) -> list[Facet]:
        return [(bool(p), self.kinds[k]) for p, k in zip(self.public[positions], self.kind[positions], strict=True)]

    def codes(self, names: Sequence[str]) -> np.ndarray:
        """The codes of those of these kinds the table has."""
        return np.array([i for i, k in enumerate(self.kinds) if k in set(names)], dtype=np.uint8)
