"""Lexical sparse vectors for Chinese: character uni+bi-grams, optional jieba words, and pinyin.

Term weights follow BM25's saturation and length normalisation with a fixed reference length (so a chunk's
vector depends only on its own text and ids stay content-derived); Qdrant applies IDF at query time.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import jieba

from kb_service.store.sparse import SparseVec
from kb_service.text.glossary import Expansion, Glossary
from kb_service.text.normalize import char_terms, normalize, pinyin_terms, strip_fillers

K1 = 1.2
B = 0.75
# BM25's average document length. A full build measures it on the corpus (as BM25 defines it) and records it in the
# index; incremental changes reuse the recorded value, so a chunk's vector depends only on its text and that value.
DEFAULT_REF_LENGTH = 120.0


def term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


def _to_sparse(weights: dict[str, float]) -> SparseVec:
    merged: dict[int, float] = {}
    for term, w in weights.items():
        tid = term_id(term)
        merged[tid] = merged.get(tid, 0.0) + w
    items = sorted(merged.items())
    return SparseVec([i for i, _ in items], [v for _, v in items])


@lru_cache(maxsize=8192)
def _terms(text: str, use_words: bool) -> tuple[str, ...]:
    """Cached: a full build reads every chunk's terms twice (BM25's reference length, then the vectors), and a
    query's glossary words recur. `warm_up` clears it when it adds words to jieba's dictionary."""
    terms = char_terms(text)
    if use_words:
        terms += [f"w:{w}" for w in jieba.cut_for_search(normalize(text)) if len(w) > 1 and not w.isspace()]
    return tuple(terms)


def _bm25(counts: Counter[str], ref_length: float) -> dict[str, float]:
    length = sum(counts.values()) or 1
    norm = K1 * (1 - B + B * length / ref_length)
    return {t: tf * (K1 + 1) / (tf + norm) for t, tf in counts.items()}


@dataclass
class LexicalEncoder:
    """Builds the `lex` (characters and words) and `pinyin` sparse vectors for documents and queries."""

    glossary: Glossary
    use_words: bool = True
    expansion_weight: float = 0.3
    meaning_weight: float = 0.6
    ref_length: float = DEFAULT_REF_LENGTH

    def __post_init__(self) -> None:
        self._ready = False

    def warm_up(self) -> None:
        """Load jieba's dictionary and the glossary words (0.4 s): at start-up, or on first use."""
        if self._ready:
            return
        self._ready = True
        jieba.setLogLevel(60)
        jieba.initialize()
        for term in self.glossary.terms:
            jieba.add_word(term)
        for group in self.glossary.groups:
            for word in group:
                if len(word) > 1:
                    jieba.add_word(word)
        _terms.cache_clear()  # words cut before these were added would be cut differently now

    def terms(self, text: str) -> list[str]:
        """The lexical terms of a text (characters, character pairs, jieba words)."""
        self.warm_up()
        return list(_terms(text, self.use_words))

    def doc_vectors(self, text: str) -> tuple[SparseVec, SparseVec]:
        lex = _bm25(Counter(self.terms(text)), self.ref_length)
        return _to_sparse(lex), _to_sparse(_bm25(Counter(pinyin_terms(text)), self.ref_length))

    def query_vectors(
        self, query: str, expand: bool = True, colloquial: bool = True, pinyin: bool = True
    ) -> tuple[SparseVec, SparseVec, list[Expansion]]:
        """Query vectors; glossary synonyms join the lexical vector at a reduced weight (`pinyin` False: the pinyin
        vector is left empty, for searches that do not use it: ~1 ms a query)."""
        text = strip_fillers(normalize(query))
        weights: dict[str, float] = dict.fromkeys(self.terms(text), 1.0)
        expansions = self.glossary.expansions(text) if expand and self.expansion_weight > 0 else []
        for exp in expansions:
            for syn in exp.synonyms:
                for term in self.terms(syn):
                    weights.setdefault(term, self.expansion_weight)
        if colloquial and self.meaning_weight > 0:
            meanings = self.glossary.meanings(text)
            for exp in meanings:
                for word in exp.synonyms:
                    for term in self.terms(word):
                        weights[term] = max(weights.get(term, 0.0), self.meaning_weight)
            expansions = [*expansions, *meanings]
        syllables = dict.fromkeys(pinyin_terms(text), 1.0) if pinyin else {}
        return _to_sparse(weights), _to_sparse(syllables), expansions
