"""Procedures written for staff, read by the tenant they are about.

Companies mark whole SOPs public, and their steps name the tenant in the third person (请租客提供截图,
管家联系租客了解续租意向, 不得与租客争执). The chat quotes such a passage to that tenant; it reads as addressed to them
when 租客 (住户, 承租人: the same person in other companies' words; 业主 is the landlord here) becomes 您. Only where
the word means the tenant asking: not in compounds that name something else (租客App, 租客须知), nor after a word that
makes it another person (其他租客, 楼上住户, 同住租客, 被投诉的租客). Only the text shown to the tenant changes; the
passage is chosen and cited as written.
"""

from __future__ import annotations

import re

_PERSON = "租客|住户|承租人"
# Words before it that make it someone other than the tenant asking.
_OTHER = (
    "其他|其它|别的|另一|另外|同住|合租|楼上|楼下|隔壁|邻居|对门|相邻|新|老|原|前|上一任|下一任|该|此|每位|每个|所有|全体|"
    "被投诉|投诉|涉事|对方|外来|非登记|登记|意向|潜在|准|的|位|名|户|长租|短租"
)
# Words after it that make a compound (a thing, not the person).
_COMPOUND = r"App|APP|app|端|须知|手册|群|公约|服务中心|信息|档案|名单|资料|满意度|评价|身份"
_TENANT = re.compile(rf"(?<!{_OTHER.replace('|', ')(?<!')})(?:{_PERSON})(?!{_COMPOUND})")


# ... or a few place words before it (联系楼上房间租客开门 read 联系楼上房间您开门 to a new customer's tenant)
_OTHER_NEAR = re.compile(
    r"(?:楼上|楼下|隔壁|对门|邻居|相邻|其他|其它|别的|同住|合租)(?:房间|房|那户|那位|那家|家|住的|的|\d{2,4}(?:室|号)?)+$"
)


def _you(m: re.Match[str]) -> str:
    return m.group(0) if _OTHER_NEAR.search(m.string[max(0, m.start() - 8) : m.start()]) else "您"


def addressed_to_tenant(text: str) -> str:
    """The text with the tenant named as 您 where it names the tenant asking."""
    return _TENANT.sub(_you, text)


# Words of a line that tells staff what to do or not to do: checking identity, the staff systems, tickets, reporting up,
# guiding or calming the tenant, what not to do to the tenant or promise (核实租客身份…在系统中查看, 任何员工不得…,
# 调取近3个月用电记录, 不得在租客不在场时单方验房定损, 不口头承诺未经审批的价格). A rule for the tenant (车位不得占用)
# names no tenant and is no such line.
_STAFF_LINE = re.compile(
    r"核实|核对|系统中|系统里|员工|关单|调取|建单|派单|工单|上报|回访|按公司|安抚|不(?:口头)?承诺|"
    rf"(?:告知|引导|联系|提醒|询问|指导)(?:{_PERSON})|不得[^。；\n]{{0,30}}?(?:{_PERSON})"
)
STAFF_SHARE = 0.5


def speaks_to_staff(text: str) -> bool:
    """At least half of the text's lines are instructions to staff: no answer for a tenant, however 您 is put in."""
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and sum(bool(_STAFF_LINE.search(line)) for line in lines) >= STAFF_SHARE * len(lines)
