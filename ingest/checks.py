"""Checks over a parsed SOP that `kb lint` adds to the parser's own: things that parse but are likely mistakes."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping

from kb_service.models import Issue, Sop

_TITLE_LINE = re.compile(r"^title\s*:")


def title_issues(sop: Sop, source: str | None = None) -> list[Issue]:
    """A front-matter `title` that differs from the `#` heading: the heading is what search results and chat sources
    show, so the trainer is told which one wins. `source` (the file's text) locates the `title:` line."""
    if sop.meta.title.strip() == sop.title.strip():
        return []
    lines = (source or "").split("\n")
    line = next((n for n, text in enumerate(lines, start=1) if _TITLE_LINE.match(text)), 1)
    message = (
        f"文件头 title “{sop.meta.title}” 与正文 # 标题 “{sop.title}” 不一致，检索结果和聊天来源显示 # 标题；"
        "请把两处改成一致"
    )
    return [Issue(path=sop.path, line=line, severity="warning", message=message)]


# The new-SOP template's stand-in text (api/static/trainer/docs.js newTemplate): left in a published SOP, it is what
# agents and tenants would read.
_PLACEHOLDERS = (
    (re.compile(r"^id\s*:\s*new-sop-id\s*$"), "new-sop-id"),
    (re.compile(r"^title\s*:\s*新的 SOP 标题\s*$|^#\s+新的 SOP 标题\s*$"), "新的 SOP 标题"),
    (re.compile(r"^tags\s*:.*关键词\d"), "关键词1"),
    (re.compile(r"^\s*\d+\.\s*(第[一二三四五六七八九十]步)\s*$"), ""),  # named as written (第二步)
    (re.compile(r"[“\"]……[”\"]|，……\s*$"), "……"),
    (re.compile(r"什么情况下(?:使用这份 SOP|升级给谁)"), "什么情况下…"),
)


def placeholder_issues(path: str, text: str) -> list[Issue]:
    """Warnings for the template's stand-in text still in the file, one per line."""
    issues = []
    for number, line in enumerate(text.split("\n"), start=1):
        hit = next(((m, shown) for pattern, shown in _PLACEHOLDERS if (m := pattern.search(line))), None)
        if hit is not None:
            found = hit[1] or hit[0].group(1)  # a trial read 「第一步」 for its line 「2. 第二步」
            msg = f"模板占位文字“{found}”还没有替换成实际内容，发布后坐席和租客会看到它"
            issues.append(Issue(path=path, line=number, severity="warning", message=msg))
    return issues


def emergency_issues(sops: Iterable[Sop], urgent_categories: Collection[str]) -> list[Issue]:
    """An emergency procedure that no tenant-visible text can back up in the chat: the chat answers an emergency with
    the number and a safety instruction from public passages (the emergency categories' documents and the matched
    SOP's own); when there are none, a tenant who smells gas is told only the number (a fourth company's documents:
    every emergency procedure staff-only, 39 of 40 urgent answers without an instruction)."""
    sops = list(sops)
    pool = any(
        s.meta.category in urgent_categories and any(sec.audience == "public" for sec in s.sections) for s in sops
    )
    if pool:
        return []
    message = (
        "紧急类文档，但知识库里没有租客可见的安全提示：租客在聊天中报告这类情况时只会看到紧急电话，看不到现在该怎么做。"
        f"请写一篇 audience: public 的安全指南（分类 {'、'.join(sorted(urgent_categories))}），"
        "或把本文给租客的步骤写成租客可见的小节"
    )
    return [
        Issue(path=s.path, line=1, severity="warning", message=message)
        for s in sops
        if s.urgent(urgent_categories) and not any(sec.audience == "public" for sec in s.sections)
    ]


def _plain(text: str) -> str:
    """Text compared for sameness: without spaces and punctuation, lower case."""
    return re.sub(r"[\W_]+", "", text).lower()


def _line_of(source: str | None, text: str) -> int:
    return next((n for n, line in enumerate((source or "").split("\n"), start=1) if text in line), 1)


def duplicate_issues(
    sops: Iterable[Sop], sources: Mapping[str, str | None] | None = None, known: Iterable[Sop] = ()
) -> list[Issue]:
    """Warnings for a SOP that repeats another one's title, whole content or an example question (a trainer's trial:
    a copied file published under a new id was never flagged). Each of `sops` is compared with the ones before it
    and with `known` (the published SOPs a draft joins; its own id left out); `sources` (path → the file's text)
    locates an example's line."""
    titles: dict[str, Sop] = {}
    bodies: dict[str, Sop] = {}
    examples: dict[str, Sop] = {}

    def add(sop: Sop) -> None:
        titles.setdefault(_plain(sop.title), sop)
        bodies.setdefault("\n".join(_plain(s.text) for s in sop.sections), sop)
        for example in sop.meta.examples:
            examples.setdefault(_plain(example), sop)

    sops = list(sops)
    mine = {s.meta.id for s in sops}
    for sop in known:
        if sop.meta.id not in mine:
            add(sop)
    issues: list[Issue] = []
    for sop in sops:
        said = lambda o: f"{o.path}（{o.meta.id}）"  # noqa: E731
        if (o := titles.get(_plain(sop.title))) is not None:
            msg = f"标题与 {said(o)} 相同：坐席和租客在结果里分不清这两份文档；同一流程请合并，不同的请在标题里写明区别"
            issues.append(Issue(path=sop.path, line=1, severity="warning", message=msg))
        body = "\n".join(_plain(s.text) for s in sop.sections)
        if body and (o := bodies.get(body)) is not None:
            msg = f"内容与 {said(o)} 完全相同：复制后忘了修改？相同的两份文档会在检索结果里并列"
            issues.append(Issue(path=sop.path, line=1, severity="warning", message=msg))
        for example in sop.meta.examples:
            if (o := examples.get(_plain(example))) is not None and o.meta.id != sop.meta.id:
                line = _line_of((sources or {}).get(sop.path), example)
                msg = f"示例问法“{example}”也写在 {said(o)} 里：一句话只应示例一份 SOP，检索不知把哪份排第一；请删一处"
                issues.append(Issue(path=sop.path, line=line, severity="warning", message=msg))
        add(sop)
    return issues


_ID_SHAPED = re.compile(r"(?<![A-Za-z0-9-])[a-z0-9]+(?:-[a-z0-9]+)+(?![A-Za-z0-9-])")


def reference_issues(
    sops: Iterable[Sop], known_ids: Collection[str], sources: Mapping[str, str | None] | None = None
) -> list[Issue]:
    """A SOP's text naming another SOP by an id that no SOP has (a trial's 「见 access-smartlock」 for
    access-smart-lock): agents would read the bare id where the console shows a known one as a link. Only words
    shaped like this knowledge base's ids count (their first part, e.g. access-, is one an id has), not wi-fi.
    `sources` (path → the file's text) locates the word's line; without it, its section's."""
    heads = {i.split("-")[0] for i in known_ids}
    issues: list[Issue] = []
    for sop in sops:
        told: set[str] = set()  # a word named in several sections is told once, at its first line
        for section in sop.sections:
            for word in dict.fromkeys(_ID_SHAPED.findall(section.text)):
                if word in known_ids or word in told or word.split("-")[0] not in heads:
                    continue
                told.add(word)
                near = difflib.get_close_matches(word, list(known_ids), n=1, cutoff=0.8)
                hint = f"，是不是 {near[0]}？" if near else "（检查的文档里没有这个 id）"
                msg = f"引用的 SOP id “{word}” 不存在{hint}坐席看到的会是这串字母，不是可点开的标题"
                line = _line_of((sources or {}).get(sop.path), word) if sources else section.line_start
                issues.append(Issue(path=sop.path, line=line, severity="warning", message=msg))
    return issues
