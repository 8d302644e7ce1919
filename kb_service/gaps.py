"""The gap report: what agents and tenants asked that the knowledge base could not answer well."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydantic import BaseModel

from kb_service.embedders import Embedder
from kb_service.logbook import Logbook
from kb_service.models import Sop

SIMILAR = 0.75  # cosine above which two questions count as the same need (USE-multilingual)


class CountedQuery(BaseModel):
    query: str
    count: int


class GapGroup(BaseModel):
    representative: str
    count: int
    examples: list[str]
    reasons: dict[str, int]


class SopFeedback(BaseModel):
    sop_id: str
    title: str
    up: int
    down: int


class ReviewDue(BaseModel):
    sop_id: str
    title: str
    review_by: str
    owner: str


class GapReport(BaseModel):
    since: float
    until: float
    total_queries: int
    top_queries: list[CountedQuery]
    unanswered: list[GapGroup]
    never_found: list[str]
    review_overdue: list[ReviewDue]
    feedback: list[SopFeedback]


@dataclass
class GapReporter:
    logbook: Logbook
    embedder: Embedder
    low_confidence: float

    def report(self, since: float, until: float, catalog: Mapping[str, Sop], today: date | None = None) -> GapReport:
        rows = self.logbook.rows("SELECT * FROM queries WHERE ts >= ? AND ts < ? ORDER BY ts", (since, until))
        down = self.logbook.rows(
            "SELECT q.query AS query FROM feedback f JOIN queries q ON q.id = f.query_id "
            "WHERE f.vote = -1 AND f.ts >= ? AND f.ts < ?",
            (since, until),
        )
        counts = Counter(r["query"] for r in rows)
        reasons: dict[str, Counter[str]] = {}
        for r in rows:
            why = None
            if not json.loads(r["result_ids"]):
                why = "无结果"
            elif r["handoff"]:
                why = "转人工"
            elif r["confidence"] is not None and r["confidence"] < self.low_confidence:
                why = "低置信度"
            if why:
                reasons.setdefault(r["query"], Counter())[why] += 1
        for d in down:
            reasons.setdefault(d["query"], Counter())["点踩"] += 1
        found: set[str] = set()
        for r in rows:
            found.update(json.loads(r["result_ids"])[:3])
        fb = self.logbook.rows(
            "SELECT sop_id, SUM(vote = 1) AS up, SUM(vote = -1) AS down FROM feedback WHERE ts >= ? AND ts < ? "
            "GROUP BY sop_id ORDER BY down DESC, up DESC",
            (since, until),
        )
        today = today or date.today()
        return GapReport(
            since=since,
            until=until,
            total_queries=len(rows),
            top_queries=[CountedQuery(query=q, count=c) for q, c in counts.most_common(20)],
            unanswered=self._group(reasons, counts),
            never_found=sorted(set(catalog) - found),
            review_overdue=[
                ReviewDue(sop_id=s.meta.id, title=s.title, review_by=s.meta.review_by.isoformat(), owner=s.meta.owner)
                for s in sorted(catalog.values(), key=lambda s: s.meta.id)
                if s.meta.review_by is not None and s.meta.review_by < today
            ],
            feedback=[
                SopFeedback(
                    sop_id=f["sop_id"],
                    title=catalog[f["sop_id"]].title if f["sop_id"] in catalog else f["sop_id"],
                    up=int(f["up"] or 0),
                    down=int(f["down"] or 0),
                )
                for f in fb
            ],
        )

    def _group(self, reasons: dict[str, Counter[str]], counts: Counter[str]) -> list[GapGroup]:
        """Greedy grouping by meaning: each question joins the first group whose leader is similar enough."""
        queries = sorted(reasons, key=lambda q: -(counts.get(q, 0) or sum(reasons[q].values())))
        if not queries:
            return []
        vectors = self.embedder.embed(queries)
        leaders: list[int] = []
        members: dict[int, list[int]] = {}
        for i in range(len(queries)):
            sims = [float(np.dot(vectors[i], vectors[j])) for j in leaders]
            best = int(np.argmax(sims)) if sims else -1
            if best >= 0 and sims[best] >= SIMILAR:
                members[leaders[best]].append(i)
            else:
                leaders.append(i)
                members[i] = [i]
        groups = []
        for leader, idx in members.items():
            total: Counter[str] = Counter()
            for i in idx:
                total.update(reasons[queries[i]])
            count = sum(max(counts.get(queries[i], 0), sum(reasons[queries[i]].values())) for i in idx)
            groups.append(
                GapGroup(
                    representative=queries[leader],
                    count=count,
                    examples=[queries[i] for i in idx[:5]],
                    reasons=dict(total),
                )
            )
        return sorted(groups, key=lambda g: -g.count)


def to_csv(report: GapReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "item", "count", "detail"])
    for q in report.top_queries:
        w.writerow(["热门问题", q.query, q.count, ""])
    for g in report.unanswered:
        detail = "；".join(f"{k}{v}" for k, v in g.reasons.items()) + " | " + " / ".join(g.examples)
        w.writerow(["未解决问题", g.representative, g.count, detail])
    for sop_id in report.never_found:
        w.writerow(["从未被检索到的SOP", sop_id, 0, ""])
    for r in report.review_overdue:
        w.writerow(["复核过期", r.sop_id, "", f"{r.title} 复核日期 {r.review_by} 负责人 {r.owner}"])
    for f in report.feedback:
        w.writerow(["反馈", f.sop_id, f.up - f.down, f"👍{f.up} 👎{f.down} {f.title}"])
    return buf.getvalue()
