"""Script lines written as quotations (`客服：“您好…”`, `「…」`) rather than `>` lines: what an agent says on them."""

from __future__ import annotations

import re

# A line that is a quotation (optionally after a label): “您好，这里是…” / 开场：「…」. In a script section these are
# the script lines when none is written as a `>` quote.
_QUOTED = re.compile(r"^(?:([^“”「」\"\n]{1,20})[：:]\s*)?[“「\"]([^\n]+)[”」\"]$")
# A quoted line said by the tenant (租客：“能不能便宜点？”) is what an agent hears, not a script line to read out.
_TENANT_SPEAKER = re.compile(r"租客|租户|客户|业主|住户|房客|客人|对方|来电人|投诉人|tenant", re.I)


def quoted_script(line: str) -> str | None:
    """What an agent says on a line that is one quotation (`客服：“您好…”`, `「…」`); None for other lines and for
    words the tenant says (租客：“…”)."""
    m = _QUOTED.match(line.strip())
    if m is None or (m.group(1) and _TENANT_SPEAKER.search(m.group(1))):
        return None
    return m.group(2).strip()
