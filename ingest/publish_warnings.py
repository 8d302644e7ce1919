"""Warnings a publish or delete returns about the knowledge base around the SOP (it goes through all the same)."""

from __future__ import annotations

from kb_service.models import Issue, Sop
from kb_service.search.catalog import Catalog


def same_title(catalog: Catalog, sop: Sop, rel: str, text: str) -> list[Issue]:
    """Another SOP with this title: agents see two results with one name and cannot tell them apart."""
    same = [o.meta.id for o in catalog.every() if o.meta.id != sop.meta.id and o.title == sop.title]
    if not same:
        return []
    line = next((n for n, t in enumerate(text.split("\n"), start=1) if t.startswith("# ")), 1)
    msg = f"标题“{sop.title}”与 SOP {'、'.join(same)} 相同：坐席在结果里分不清两份文档，建议改成能区分的标题"
    return [Issue(path=rel, line=line, severity="warning", message=msg)]


def category_left_empty(catalog: Catalog, sop_id: str) -> list[str]:
    """Deleting the last SOP of its category: the category's exam and training tasks have nothing left to ask (a
    trainer's trial deleted one, and agents met 「没有分类」 errors from the exam and the task they were given)."""
    category = catalog[sop_id].meta.category
    if any(o.meta.category == category and o.meta.id != sop_id for o in catalog.every()):
        return []
    return [f"分类“{category}”已没有其他 SOP：按这个分类设的考试和培训任务无法进行，请在「培训」里撤下或改派"]
