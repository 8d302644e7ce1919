"""Class nouns that documents use and the members tenants name instead (宠物: 猫, 狗): a question about 朋友的猫 names
the 宠物 of an FAQ heading 朋友的宠物也要登记吗, though it shares no character with it. Written from domain
knowledge (what a rental flat holds and what tenants keep), not from any query set."""

from __future__ import annotations

_MEMBERS: dict[str, tuple[str, ...]] = {
    "宠物": ("猫", "狗", "犬", "鸟", "鹦鹉", "兔", "仓鼠", "龙猫", "鱼", "龟", "蜥蜴", "蛇", "刺猬"),
    "家电": ("冰箱", "洗衣机", "空调", "热水器", "电视", "微波炉", "油烟机", "燃气灶", "电磁炉", "烤箱", "洗碗机"),
    "家具": ("床", "床垫", "沙发", "衣柜", "桌", "椅", "柜子", "书架", "鞋柜"),
    "车辆": ("电动车", "电瓶车", "汽车", "自行车", "摩托", "单车", "车"),
    "访客": ("朋友", "亲戚", "家人", "父母", "爸妈", "同学", "同事", "男朋友", "女朋友", "表妹", "表弟"),
    "快递": ("包裹", "外卖", "文件"),
}


def names_kind(noun: str, question: str) -> bool:
    """Whether the question names the class noun itself (any of its characters) or one of its members."""
    return any(ch in question for ch in noun) or any(m in question for m in _MEMBERS.get(noun, ()))


def class_named(word: str, text: str) -> bool:
    """Whether the text names a class noun one of whose members the word holds (养猫 → 宠物)."""
    return any(noun in text for noun, members in _MEMBERS.items() if any(m in word for m in members))


def member_named(noun: str, question: str) -> bool:
    """Whether the question names one of the class noun's members (导盲犬 of 宠物)."""
    return any(m in question for m in _MEMBERS.get(noun, ()))
