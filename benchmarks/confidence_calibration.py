"""Fit the calibrated search confidence (kb_service/search/confidence.py) and choose its weak-match threshold.

Positives: labelled queries whose first result is right. Negatives: labelled queries whose first result is wrong, and
out-of-scope queries (nonsense, greetings, off-topic; every first result is wrong). The logistic weights are fitted on
the tuning half (evaluation.split_of) and the out-of-scope file's even lines, and reported on the held-out half and the
odd lines. Never run on eval/blind to choose anything.

    python benchmarks/confidence_calibration.py eval/queries.jsonl eval/search_out_of_scope.jsonl \
        eval/chat_out_of_scope.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import sample_kb

from kb_service.search.confidence import Calibration, Confidence
from kb_service.trainer.evaluation import load_queries, split_of

HITS = 3  # results per query the weights are fitted on (the ratio and margin of lower results matter too)
RIGHT_KEPT = 0.99  # the share of the tuning half's right first results that must stay above the threshold


def _fit(x: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method (with a little L2 so separable data stays finite)."""
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + l2 * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("out_of_scope", type=Path, nargs="+")
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    ap.add_argument("--fit", choices=("first", "top3"), default="top3", help="fit on first results only, or top 3")
    ap.add_argument("--rows", type=Path, help="keep the measured features in this file (and reuse them)")
    args = ap.parse_args()
    if args.rows and args.rows.exists():
        rows = [tuple(r) for r in json.loads(args.rows.read_text())]
    else:
        rows = _measure(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    _report(rows, args.fit)  # type: ignore[arg-type]


Row = tuple[str, tuple[float, float, float, float], int, str, int, str]


def _measure(args: argparse.Namespace) -> list[Row]:
    kb = sample_kb(args.sops)
    conf = Confidence()
    catalog = kb.searcher.catalog
    # One row per result of the first HITS of each query: split, features, right, kind, rank, query.
    rows: list[Row] = []

    def add(split: str, query: str, audience: str, expected: tuple[str, ...], kind: str) -> None:
        resp = kb.searcher.search(query, top_k=HITS, audience=audience, with_confidence=True)  # type: ignore[arg-type]
        sops = {h.sop_id: catalog[h.sop_id] for h in resp.results}
        found = [(e.found, e.synonyms) for e in resp.expansions]
        feats = conf.features(query, resp.results, sops, found) or [(0.0, 0.0, 0.0, 0.0)]
        for rank, (hit, f) in enumerate(zip(resp.results or [None], feats, strict=False)):
            rows.append((split, f, int(hit is not None and hit.sop_id in expected), kind, rank, query))

    for q in load_queries(args.queries):
        add(split_of(q.query), q.query, q.audience, q.expected, q.kind or "")
    for path in args.out_of_scope:
        lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        for i, obj in enumerate(lines):
            if obj.get("kind") == "staff_only_topic":
                continue  # agents' searches do cover these (the chat's file)
            add("tune" if i % 2 == 0 else "heldout", obj["query"], "agent", (), "out_of_scope")
    kb.close()
    return rows


def _report(rows: list[Row], fit: str) -> None:
    every = np.array([r[1] for r in rows])
    fit_on = np.array([r[0] == "tune" and (fit == "top3" or r[4] == 0) for r in rows])
    if fit == "first":
        every[:, 2] = 0.0  # the ratio of a first result is always 1: no weight can be fitted for it
    w = _fit(every[fit_on], np.array([r[2] for r in rows], dtype=float)[fit_on])
    rows = [r for r in rows if r[4] == 0]  # the first results: what the threshold and the figures are about
    x = np.array([r[1] for r in rows])
    y = np.array([r[2] for r in rows], dtype=float)
    tune = np.array([r[0] == "tune" for r in rows])
    names = ("intercept", "cosine", "coverage", "ratio", "margin")
    print("weights:", ", ".join(f"{n}={v:.3f}" for n, v in zip(names, w, strict=True)))
    probe = Confidence(Calibration(*map(float, w), threshold=0.0))
    p = np.array([probe.probability(tuple(f)) for f in x])  # type: ignore[arg-type]
    right_tune = np.sort(p[tune & (y == 1)])
    threshold = float(right_tune[int((1 - RIGHT_KEPT) * len(right_tune))])
    print(f"threshold (keeps {RIGHT_KEPT:.0%} of the tuning half's right first results): {threshold:.3f}")
    kinds = np.array([r[3] for r in rows])
    for split in ("tune", "heldout"):
        m = np.array([r[0] == split for r in rows])
        oos = m & (kinds == "out_of_scope")
        wrong = m & (y == 0) & (kinds != "out_of_scope")
        right = m & (y == 1)
        print(
            f"{split:<8} right first kept {np.mean(p[right] >= threshold):.3f} (n={right.sum()})  "
            f"wrong first flagged weak {np.mean(p[wrong] < threshold):.3f} (n={wrong.sum()})  "
            f"out-of-scope flagged weak {np.mean(p[oos] < threshold):.3f} (n={oos.sum()})"
        )
    for kind in sorted(set(kinds)):
        m = kinds == kind
        print(f"  {kind:<16} n={m.sum():>3} flagged weak {np.mean(p[m] < threshold):.3f}")
    missed = [f"{r[5]} ({p[i]:.2f})" for i, r in enumerate(rows) if r[3] == "out_of_scope" and p[i] >= threshold]
    print("out-of-scope queries not flagged:", "; ".join(missed) or "none")
    print("threshold sweep: right first kept / out-of-scope flagged, tune | heldout")
    for t in np.arange(0.2, 0.75, 0.05):
        cells = []
        for split in ("tune", "heldout"):
            m = np.array([r[0] == split for r in rows])
            right, oos = m & (y == 1), m & (kinds == "out_of_scope")
            cells.append(f"{np.mean(p[right] >= t):.3f} / {np.mean(p[oos] < t):.3f}")
        print(f"  {t:.2f}: {' | '.join(cells)}")


if __name__ == "__main__":
    main()
