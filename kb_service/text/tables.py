"""Markdown tables read as the clauses a list would have said (a table's rows are one line each once parsed, cells
joined by ` | `)."""

from __future__ import annotations

import re

_TIME_COLUMN = re.compile(r"时限|时效|时间|期限|时长|时段")


def table_clauses(text: str) -> str:
    """A table as the clauses a list would have said: 「事项 | 时限 | 责任人」 over 「上门开锁 | 30分钟 | 管家」 reads
    「上门开锁：30分钟（责任人：管家）」 (the first time column is the value; without one, the second column). A
    time-limit section's card and the call mode's countdowns read it so, and a tenant is shown it so (a new
    customer's fee table reached the chat as 「情形 | 费用承担」)."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        run: list[list[str]] = []
        while i + len(run) < len(lines) and " | " in lines[i + len(run)]:
            run.append(lines[i + len(run)].split(" | "))
        if len(run) < 2:
            out.append(lines[i])
            i += 1
            continue
        head, rows = run[0], run[1:]
        col = next((j for j, h in enumerate(head) if j and _TIME_COLUMN.search(h)), 1 if len(head) > 1 else 0)
        for r in rows:
            cells = enumerate(zip(head, r, strict=False))
            rest = "，".join(f"{h}：{c}" for j, (h, c) in cells if j not in (0, col) and c)
            out.append(f"{r[0]}：{r[col] if col < len(r) else ''}" + (f"（{rest}）" if rest else ""))
        i += len(run)
    return "\n".join(out)
