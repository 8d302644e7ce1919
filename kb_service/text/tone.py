"""Whether a tenant's message complains: dissatisfaction with the service, not a description of a fault. A complaint
the chat cannot answer is handed over with an apology rather than the neutral 「暂时没法给您准确的答复」."""

from __future__ import annotations

import re

from kb_service.text.normalize import normalize

# Words of grievance about the company or its people, and of taking it further (12345, 曝光, 差评). A fault alone
# (空调坏了) or a neighbour's noise is a request, not a complaint about the service. The hotline 12345 is a number of
# its own: inside a phone number (13812345678) it is no threat (a trial's tenant got an apology for a cold shower).
_COMPLAINT = re.compile(
    r"投诉|差评|不满意|太差|很差|真差|恶劣|敷衍|没人管|没人理|没人处理|不处理|不给处理|拖了|一直拖|推来推去|踢皮球"
    r"|说了多少次|说了好几次|打了好几次|第[二三四五几]次|又坏了|还没修|还没来|还没人|到底(?:管不管|有没有人)"
    r"|(?<!\d)12345(?!\d)|曝光|媒体|消协|律师|起诉|退钱|骗子|欺骗|坑人|黑心|垃圾公司|什么破"
)


def complains(text: str) -> bool:
    """True when the message voices dissatisfaction with the service (我已经投诉三次了都没人管, 维修拖了一个星期)."""
    return _COMPLAINT.search(normalize(text)) is not None
