"""Ranking experiments without the index: every chunk of a SOP folder scored in numpy with the same model and the
same lexical terms as the engine, so scoring ideas can be compared on several query sets in seconds.

    python benchmarks/quality_lab.py --no-examples --set tune=eval/queries.jsonl:sops:tune \
        --set held=eval/queries.jsonl:sops:heldout

Prints R@1 / R@3 / MRR per set (and per kind with --kinds) for each scoring variant. Variants are defined in
VARIANTS below; the engine's own behaviour is measured by `retrieval_quality.py`, not here.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import pickle
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.chunker import chunk_sop, embedding_text, lexical_text  # noqa: E402
from ingest.documents import load_corpus  # noqa: E402
from kb_service.embedding.embedders import UseEmbedder  # noqa: E402
from kb_service.text import glossary  # noqa: E402
from kb_service.text.lexical import LexicalEncoder  # noqa: E402
from kb_service.text.normalize import normalize, pinyin_terms, strip_fillers  # noqa: E402
from kb_service.trainer.evaluation import LabeledQuery, load_queries  # noqa: E402

CACHE = Path("/tmp/kb-quality-lab")
MEANING_W = float(os.environ.get("LAB_MEANING_W", "0"))
AUG = os.environ.get("LAB_AUG") == "1"
CLAUSES = os.environ.get("LAB_CLAUSES") == "1"
CLAUSE_MIX = float(os.environ.get("LAB_CLAUSE_MIX", "0.5"))


@dataclass
class Corpus:
    chunk_sop: list[str]  # sop id of each chunk
    chunk_kind: list[str]
    chunk_audience: list[str]
    dense: np.ndarray  # (C, d)
    sent: list[np.ndarray]  # per chunk (S_i, d)
    lex: list[Counter[str]]  # term -> bm25 doc weight
    py: list[Counter[str]]
    py_idf: dict[str, float]
    doc_lex: dict[str, Counter[str]]  # whole-SOP bm25 weights
    idf: dict[str, float]
    doc_idf: dict[str, float]
    sop_ids: list[str]


@dataclass
class Query:
    q: LabeledQuery
    vec: np.ndarray
    terms: dict[str, float]
    py: dict[str, float]
    clauses: np.ndarray | None = None


def _embed(emb: UseEmbedder, texts: list[str]) -> np.ndarray:
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"emb-{key}.npy"
    if path.exists():
        return np.load(path)
    out = np.concatenate([emb.embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    CACHE.mkdir(exist_ok=True)
    np.save(path, out)
    return out


def _bm25(counts: Counter[str], ref: float, k1: float = 1.2, b: float = 0.75) -> Counter[str]:
    length = sum(counts.values()) or 1
    norm = k1 * (1 - b + b * length / ref)
    return Counter({t: tf * (k1 + 1) / (tf + norm) for t, tf in counts.items()})


def _idf(docs: list[Counter[str]]) -> dict[str, float]:
    n = len(docs)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    return {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}


def build(sops_dir: Path, emb: UseEmbedder, lexical: LexicalEncoder, examples: bool = True) -> Corpus:
    corpus = load_corpus([sops_dir], root=sops_dir)
    chunks = [c for sop in corpus.sops.values() for c in chunk_sop(sop) if examples or c.section_kind != "examples"]
    texts = [lexical_text(c) for c in chunks]
    lexical.ref_length = float(np.mean([len(lexical.terms(t)) for t in texts]))
    passages = [embedding_text(c) for c in chunks]
    sent_lists = [c.sentences or [c.heading] for c in chunks]
    flat = passages + [s for sl in sent_lists for s in sl]
    vecs = _embed(emb, flat)
    dense, rest = vecs[: len(chunks)], vecs[len(chunks) :]
    sent, off = [], 0
    for sl in sent_lists:
        sent.append(rest[off : off + len(sl)])
        off += len(sl)
    term_lists = [lexical.terms(t) for t in texts]
    lex = [_bm25(Counter(t), lexical.ref_length) for t in term_lists]
    py = [_bm25(Counter(pinyin_terms(t)), lexical.ref_length) for t in texts]
    by_doc: dict[str, Counter[str]] = defaultdict(Counter)
    for c, t in zip(chunks, term_lists, strict=True):
        by_doc[c.sop_id].update(t)
    doc_ref = float(np.mean([sum(v.values()) for v in by_doc.values()]))
    doc_lex = {k: _bm25(v, doc_ref) for k, v in by_doc.items()}
    return Corpus(
        [c.sop_id for c in chunks],
        [c.section_kind for c in chunks],
        [c.audience for c in chunks],
        dense,
        sent,
        lex,
        py,
        _idf(py),
        doc_lex,
        _idf(lex),
        _idf(list(doc_lex.values())),
        list(corpus.sops),
    )


def _clauses(text: str) -> list[str]:
    parts = [p for p in re.split(r"[，,。！？!?；;、\s]+", text) if len(p) >= 2]
    return parts or [text]


def encode_queries(queries: list[LabeledQuery], emb: UseEmbedder, lexical: LexicalEncoder) -> list[Query]:
    vecs = _embed(emb, [strip_fillers(normalize(q.query)) for q in queries])
    out = []
    aug: list[str] = []
    for q, v in zip(queries, vecs, strict=True):
        # the query's terms as strings (the encoder hashes them): the same logic as LexicalEncoder.query_vectors
        text = strip_fillers(normalize(q.query))
        terms = dict.fromkeys(lexical.terms(text), 1.0)
        for exp in lexical.glossary.expansions(text):
            for syn in exp.synonyms:
                for t in lexical.terms(syn):
                    terms.setdefault(t, lexical.expansion_weight)
        means = lexical.glossary.meanings(text) if MEANING_W > 0 else []
        for exp in means:
            for word in exp.synonyms:
                for t in lexical.terms(word):
                    terms[t] = max(terms.get(t, 0.0), MEANING_W)
        aug.append(text + "；" + "、".join(w for e in means for w in e.synonyms) if means else text)
        out.append(Query(q, v, terms, dict.fromkeys(pinyin_terms(text), 1.0)))
    if CLAUSES:
        pieces = [_clauses(strip_fillers(normalize(q.query))) for q in queries]
        flat = [p for ps in pieces for p in ps]
        vecs2 = _embed(emb, flat)
        off = 0
        for o, ps in zip(out, pieces, strict=True):
            o.clauses = vecs2[off : off + len(ps)]
            off += len(ps)
    if AUG:
        for o, v in zip(out, _embed(emb, aug), strict=True):
            o.vec = v
    return out


# -- scoring -------------------------------------------------------------------------------------------------
Features = dict[str, np.ndarray]  # per chunk arrays


def chunk_features(c: Corpus, q: Query) -> Features:
    dense = c.dense @ q.vec
    sent = np.array([float((s @ q.vec).max()) for s in c.sent])
    if q.clauses is not None and len(q.clauses) > 1:
        whole = sent
        per = np.array([float((s @ q.clauses.T).max(axis=0).mean()) for s in c.sent])
        sent = CLAUSE_MIX * per + (1 - CLAUSE_MIX) * whole
    lex = np.array([sum(w * c.idf.get(t, 0.0) * d.get(t, 0.0) for t, w in q.terms.items()) for d in c.lex])
    py = np.array([sum(w * c.py_idf.get(t, 0.0) * d.get(t, 0.0) for t, w in q.py.items()) for d in c.py])
    return {"dense": dense, "sent": sent, "lex": lex, "py": py}


def dbsf(x: np.ndarray, top: int = 40) -> np.ndarray:
    sel = np.sort(x)[::-1][:top]
    mu, sd = sel.mean(), sel.std() or 1.0
    lo, hi = mu - 3 * sd, mu + 3 * sd
    return np.clip((x - lo) / (hi - lo), 0, None)


def zs(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def sop_max(c: Corpus, chunk_scores: np.ndarray, allowed: np.ndarray) -> dict[str, float]:
    best: dict[str, float] = {}
    for i, s in enumerate(chunk_scores):
        if not allowed[i]:
            continue
        k = c.chunk_sop[i]
        if s > best.get(k, -1e9):
            best[k] = float(s)
    return best


def sop_topsum(c: Corpus, chunk_scores: np.ndarray, allowed: np.ndarray, n: int, decay: float) -> dict[str, float]:
    per: dict[str, list[float]] = defaultdict(list)
    for i, s in enumerate(chunk_scores):
        if allowed[i]:
            per[c.chunk_sop[i]].append(float(s))
    out = {}
    for k, v in per.items():
        v.sort(reverse=True)
        out[k] = sum(x * decay**j for j, x in enumerate(v[:n]))
    return out


def doc_bm25(c: Corpus, q: Query) -> dict[str, float]:
    return {k: sum(w * c.doc_idf.get(t, 0.0) * d.get(t, 0.0) for t, w in q.terms.items()) for k, d in c.doc_lex.items()}


Variant = Callable[[Corpus, Query, Features, np.ndarray], dict[str, float]]


def v_shipped_like(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
    return sop_max(c, dbsf(f["sent"]) + dbsf(f["lex"]), allowed)


def v_sum(n: int, decay: float) -> Variant:
    def run(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
        return sop_topsum(c, dbsf(f["sent"]) + dbsf(f["lex"]), allowed, n, decay)

    return run


def v_doc(weight: float) -> Variant:
    def run(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
        base = sop_max(c, dbsf(f["sent"]) + dbsf(f["lex"]), allowed)
        d = doc_bm25(c, q)
        vals = np.array([d.get(k, 0.0) for k in base])
        norm = dbsf(vals, top=10)
        return {k: s + weight * n for (k, s), n in zip(base.items(), norm, strict=True)}

    return run


def v_combo(
    sent: float = 1.0,
    lex: float = 1.0,
    dense: float = 0.0,
    py: float = 0.0,
    n: int = 1,
    decay: float = 0.5,
    doc: float = 0.0,
    boost: dict[str, float] | None = None,
) -> Variant:
    def run(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
        x = sent * dbsf(f["sent"]) + lex * dbsf(f["lex"])
        if dense:
            x = x + dense * dbsf(f["dense"])
        if py:
            x = x + py * dbsf(f["py"])
        if boost:
            x = x * np.array([boost.get(k, 1.0) for k in c.chunk_kind])
        base = sop_topsum(c, x, allowed, n, decay)
        if doc:
            d = doc_bm25(c, q)
            vals = dbsf(np.array([d.get(k, 0.0) for k in base]), top=10)
            base = {k: s + doc * v for (k, s), v in zip(base.items(), vals, strict=True)}
        return base

    return run


def v_prf(beta: float, k: int, lex_terms: int = 0) -> Variant:
    """Pseudo-relevance feedback (Rocchio): the query vector moved toward the centroid of the first ranking's top
    `k` chunks, the sentence channel scored again; `lex_terms` > 0 also adds the top chunks' rarest shared terms."""

    def run(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
        x = dbsf(f["sent"]) + dbsf(f["lex"])
        top = np.argsort(-np.where(allowed, x, -1e9))[:k]
        v2 = q.vec + beta * c.dense[top].mean(axis=0)
        v2 = v2 / (np.linalg.norm(v2) or 1.0)
        sent2 = np.array([float((s @ v2).max()) for s in c.sent])
        lex = f["lex"]
        if lex_terms:
            shared: Counter[str] = Counter()
            for i in top:
                shared.update(t for t in c.lex[i] if t not in q.terms)
            extra = {t: 0.3 for t, _ in sorted(shared.items(), key=lambda tc: -tc[1] * c.idf.get(tc[0], 0))[:lex_terms]}
            lex = lex + np.array([sum(w * c.idf.get(t, 0.0) * d.get(t, 0.0) for t, w in extra.items()) for d in c.lex])
        return sop_topsum(c, dbsf(sent2) + dbsf(lex), allowed, 3, 0.5)

    return run


def _hubness(c: Corpus, k: int = 10) -> tuple[list[np.ndarray], np.ndarray]:
    """Per sentence and per chunk: the mean cosine to its k nearest sentences of other SOPs (how generic it is)."""
    key = id(c)
    if key in _HUB:
        return _HUB[key]
    flat = np.concatenate(c.sent)
    owner = np.concatenate([[c.chunk_sop[i]] * len(s) for i, s in enumerate(c.sent)])
    sims = flat @ flat.T
    sims[owner[:, None] == owner[None, :]] = -1.0
    top = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
    per_sent, off = [], 0
    for s_ in c.sent:
        per_sent.append(top[off : off + len(s_)])
        off += len(s_)
    chunk = np.array([float(h.mean()) for h in per_sent])
    _HUB[key] = (per_sent, chunk)
    return _HUB[key]


_HUB: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}


def v_hub_sent(alpha: float) -> Variant:
    """CSLS-like: each sentence's cosine minus alpha times its hubness, then the shipped fusion and evidence sum."""

    def run(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
        per_sent, _ = _hubness(c)
        sent = np.array([float((s @ q.vec - alpha * h).max()) for s, h in zip(c.sent, per_sent, strict=True)])
        return sop_topsum(c, dbsf(sent) + dbsf(f["lex"]), allowed, 3, 0.5)

    return run


def v_hub_chunk(alpha: float) -> Variant:
    def run(c: Corpus, q: Query, f: Features, allowed: np.ndarray) -> dict[str, float]:
        _, chunk = _hubness(c)
        z = (chunk - chunk.mean()) / (chunk.std() or 1.0)
        return sop_topsum(c, dbsf(f["sent"]) + dbsf(f["lex"]) - alpha * z, allowed, 3, 0.5)

    return run


FIELD = {"overview": 1.15, "scenario": 1.1, "qa": 1.05, "steps": 0.95, "notes": 0.95, "time_limit": 0.9}

VARIANTS: dict[str, Variant] = {
    "hub_sent0.3": v_hub_sent(0.3),
    "hub_sent0.6": v_hub_sent(0.6),
    "hub_sent1.0": v_hub_sent(1.0),
    "hub_chunk0.05": v_hub_chunk(0.05),
    "hub_chunk0.1": v_hub_chunk(0.1),
    "prf_b0.3_k3": v_prf(0.3, 3),
    "prf_b0.5_k3": v_prf(0.5, 3),
    "prf_b0.3_k5": v_prf(0.3, 5),
    "prf_b0.3_k3_t5": v_prf(0.3, 3, 5),
    "sum3+py0.3": v_combo(n=3, py=0.3),
    "sum3+py0.6": v_combo(n=3, py=0.6),
    "sum3+doc0.5": v_combo(n=3, doc=0.5),
    "sum4_d0.5": v_combo(n=4),
    "sum3_d0.7": v_combo(n=3, decay=0.7),
    "sum5_d0.6": v_combo(n=5, decay=0.6),
    "sum3+dense0.5": v_combo(n=3, dense=0.5),
    "sum3+field": v_combo(n=3, boost=FIELD),
    "sum3+lex0.7": v_combo(n=3, lex=0.7),
    "sum3+lex1.3": v_combo(n=3, lex=1.3),
    "shipped_like": v_shipped_like,
    "sum3_d0.5": v_sum(3, 0.5),
    "sum2_d0.3": v_sum(2, 0.3),
    "doc0.5": v_doc(0.5),
    "doc1.0": v_doc(1.0),
}


def rank_of(scores: dict[str, float], expected: tuple[str, ...]) -> int | None:
    order = sorted(scores, key=lambda k: -scores[k])
    for i, k in enumerate(order[:10], start=1):
        if k in expected:
            return i
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", required=True, help="name=queries.jsonl:sops_dir[:split]")
    ap.add_argument("--variants", nargs="*")
    ap.add_argument("--kinds", action="store_true")
    ap.add_argument("--no-examples", action="store_true", help="leave out the trainers' example-query chunks")
    args = ap.parse_args()
    emb = UseEmbedder(threads=1)
    emb.warm_up()
    names = args.variants or list(VARIANTS)
    table: dict[tuple[str, str, str], list[int | None]] = defaultdict(list)
    for spec in args.set:
        name, rest = spec.split("=", 1)
        parts = rest.split(":")
        qpath, sdir = Path(parts[0]), Path(parts[1])
        split = parts[2] if len(parts) > 2 else "all"
        lexical = LexicalEncoder(glossary.load(sdir))
        corpus = build(sdir, emb, lexical, examples=not args.no_examples)
        queries = encode_queries(load_queries(qpath, split), emb, lexical)  # type: ignore[arg-type]
        public = np.array([a == "public" for a in corpus.chunk_audience])
        for q in queries:
            f = chunk_features(corpus, q)
            allowed = public if q.q.audience == "public" else np.ones(len(public), bool)
            for v in names:
                r = rank_of(VARIANTS[v](corpus, q, f, allowed), q.q.expected)
                table[(name, v, "all")].append(r)
                if args.kinds:
                    table[(name, v, q.q.kind or "-")].append(r)
    print(f"{'set':<10}{'variant':<16}{'kind':<16}{'n':>4} {'R@1':>6} {'R@3':>6} {'MRR':>6}")
    for (s, v, k), ranks in sorted(table.items()):
        n = len(ranks)
        r1 = sum(1 for r in ranks if r == 1) / n
        r3 = sum(1 for r in ranks if r and r <= 3) / n
        mrr = sum(1 / r for r in ranks if r) / n
        print(f"{s:<10}{v:<16}{k:<16}{n:>4} {r1:>6.3f} {r3:>6.3f} {mrr:>6.3f}")
    _ = pickle


if __name__ == "__main__":
    main()
