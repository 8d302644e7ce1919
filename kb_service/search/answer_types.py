"""What kind of answer a tenant's question asks for, and whether a passage holds one.

A question's words say what it is about; its question words say what the answer looks like: 几点 wants a time, 多少钱 an
amount, 在哪 a place or channel, 能不能 a yes or no. Of two passages about 健身房, the one with `06:00–23:00` answers
`健身房几点开门`. The classes are the general shapes of Chinese questions, not topics; a question can ask for several.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AnswerType:
    name: str
    question: re.Pattern[str]  # a question asking for this kind of answer
    answer: re.Pattern[str]  # a passage holding one


_NUM = r"[0-9０-９一二两三四五六七八九十半几]+"
# Words that ask for a sum (多少钱, 赔多少, 交多少): an `amount` question, and the price gate's (`asks_price`).
# 押金要多少, 电费一度多少, 停车费多少一个月: 多少 after a sum's own noun (not 多少天, 多少个, 多少次).
_SUM_ASKED = (
    r"多少钱|多少费|价格|价钱|扣多少|赔多少|退多少|交多少|付多少"
    r"|(?:押金|租金|房租|费|钱)[^，。？?！!\s]{0,2}多少(?![天个小时分钟次遍人])"
)
TYPES = (
    AnswerType(
        "time",
        # 好几天 says how long something has lasted (垃圾放了好几天了): no question for a time
        re.compile(r"几点|什么时候|啥时候|多久|多长时间|(?<!好)几天|哪天|几号|时间|营业|开门|关门|期限|时限"),
        # 半年付 says how often rent is paid, not a time
        re.compile(
            rf"\d{{1,2}}[:：]\d{{2}}|{_NUM}\s*(?:个)?(?:小时|分钟|天|日|号|周|星期|个月|月|工作日|年)(?!付)"
            r"|当天|次日|立即|马上|随时|全天|24小时"
        ),
    ),
    AnswerType(
        "amount",
        re.compile(rf"{_SUM_ASKED}|收费|费用|要钱|花钱|交钱|付钱|贵不贵|免费|收钱"),
        re.compile(rf"{_NUM}\s*(?:元|块|%|％|折)|免费|不收费|不收取|收取|自费|承担|按.{{0,6}}计"),
    ),
    AnswerType(
        "how",  # 房租发票怎么开, 如何申请: the way to do it, as steps (1. APP—“我的账单”—…), not a list of cases
        re.compile(r"怎么(?!办|样|回事|收费|算|这么|那么|还)|如何|怎样(?!收费)|流程|步骤|手续|方法"),
        re.compile(r"(?m)^\s*(?:\d+\s*[.、．)）]|[一二三四五六七八九十]+、|第[一二三四五六七八九十\d]+步)|—|→|>"),
    ),
    AnswerType(
        "count",  # 几台 of 最多能连几台设备: a number of things, not a sum or a time
        re.compile(r"(?:几|多少)(?:个(?!小时|工作日|月|星期|礼拜)|台|次|人|位|张|间|把|辆|只|件|辆|份)"),
        re.compile(rf"{_NUM}\s*(?:个|台|次|人|位|张|间|把|辆|只|件|份)"),
    ),
    AnswerType(
        "place",
        re.compile(r"哪里|哪儿|在哪|去哪|找谁|谁来|联系谁|怎么联系|什么地方|哪个部门|电话多少"),
        re.compile(r"App|APP|小程序|前台|管家|大堂|服务中心|楼下|门口|电话|热线|\d{3,}[-\d]*|柜|区|室|处"),
    ),
    AnswerType(
        "yes_no",
        re.compile(
            r"能不能|可不可以|可以吗|能吗|行吗|行不行|让不让|允不允许|允许吗|是否可以|要不要|需不需要|需要吗|会不会"
        ),
        re.compile(
            r"^\s*(?:可以|不可以|能|不能|不行|行|允许|不允许|需要|不需要|不用|会|不会|禁止|严禁|不得)|禁止|严禁|不得|不允许"
        ),
    ),
)


# A question for a duration (多久能修好, 几个工作日到账), not a point in time (几点开门, 几号交): what a time-limit
# section answers, the time each step of the procedure takes.
# Money that has not come back yet (押金还没到账怎么办) asks how long it takes as well (a trial got the moving-out
# cautions; the time limits say 7个工作日内原路退回).
_DURATION = re.compile(
    r"多久|多长时间|多少天|多少小时|(?<!好)几个小时|几个工作日|(?<!好)几天(?:能|可以|到|内)|(?:还没|还没有)(?:到账|退回|退还)"
)


def asks_duration(question: str) -> bool:
    return _DURATION.search(question) is not None


def asked(question: str) -> list[AnswerType]:
    """The kinds of answer the question asks for (none for a plain description such as 马桶堵了)."""
    return [t for t in TYPES if t.question.search(question)]


# Kinds whose answer is a value written beside what it is about (a time, a sum, a count, a place): held where the
# question's subject is named. A way (numbered steps) and a yes or no are read from the whole passage.
NEAR_KINDS = frozenset({"time", "amount", "count", "place"})


def holds(kinds: list[AnswerType], passage: str, near: str | None = None) -> float:
    """Share of the asked kinds the passage holds an answer of (0 when nothing is asked). `near`: the passage's lines
    about the question's subject, where a value-kind answer must be (电费在哪里充值 is not answered by a section that
    names the App beside the price and 充值 beside the night-time rule)."""
    if not kinds:
        return 0.0
    held = (t.answer.search(near if near is not None and t.name in NEAR_KINDS else passage) for t in kinds)
    return sum(1 for h in held if h) / len(kinds)


# A question asking for a sum, and a passage naming one: a number with its unit (免费 alone answers 要钱吗, not 多少钱).
_PRICE_ASKED = re.compile(rf"{_SUM_ASKED}|收费标准|怎么收费|几块|多少块")
_PRICE_HELD = re.compile(rf"{_NUM}\s*(?:元|块|%|％|折)")


# What asks for a sum, not what it is a sum of: 遛狗服务多少钱 prices 遛狗服务.
_PRICE_WORDS = re.compile(r"多少钱|多少|几块钱?|价格|价钱|怎么收费|收费标准|收费|费用|要钱|花钱|贵不贵|一共")


def priced_subject(question: str) -> str:
    """The question without its words that ask for a sum: what the sum is of."""
    return _PRICE_WORDS.sub(" ", question)


# A question for when (几点锁门, 什么时候退, 多久能修好): a passage that gives no time at all does not answer it
# (晚交几天会怎么样 says a few days late: 几天 asks only before 能, 到, 内 or the question's end)
_WHEN_ASKED = re.compile(r"几点|什么时候|啥时候|多久|多长时间|(?<!好)几天(?=能|可以|到|内|[？?吗]|$)|哪天|几号")


def asks_when(question: str) -> bool:
    return _WHEN_ASKED.search(question) is not None


_TIME_HELD = next(t.answer for t in TYPES if t.name == "time")
# 几点 asks for a time of day: 马上 or 3天 does not give one (单元门晚上几点锁 got 请马上联系管家补给)
_CLOCK_ASKED = re.compile(r"几点")
_CLOCK_HELD = re.compile(rf"\d{{1,2}}[:：]\d{{2}}|{_NUM}\s*点|全天|24小时")


# 几号之前要交 asks for a day, a deadline: 账单日…前付清, 每月25日 or 到期前30天 gives one; 按月收取 does not.
_DAY_ASKED = re.compile(r"几号|哪天|哪一天|截止|最晚|最迟|(?:什么|啥)时候[交缴付还]")
_DAY_HELD = re.compile(
    rf"{_NUM}\s*[号日](?![常子用])|[日期][前后]\s*{_NUM}\s*(?:个)?(?:工作)?[天日]|前(?:付清|缴清|交清|结清)|截止|最晚|最迟|不晚于"
)


def asks_day(question: str) -> bool:
    return _DAY_ASKED.search(question) is not None


def holds_day(text: str) -> bool:
    return _DAY_HELD.search(text) is not None


# 几号 asks for a date: 3个工作日内 does not give one (房租几号交 got 房租可以开发票吗？'s 3个工作日内发送到您的邮箱)
_DATE_ASKED = re.compile(r"几号")
# ... and a day of the week gives one (下周几号停水: 下周三)
_WEEKDAY = re.compile(r"(?:周|星期|礼拜)[一二三四五六日天]|今天|明天|后天")


def holds_time(passage: str, question: str = "") -> bool:
    if _CLOCK_ASKED.search(question):
        return _CLOCK_HELD.search(passage) is not None
    if _DATE_ASKED.search(question):
        return holds_day(passage) or _WEEKDAY.search(passage) is not None
    return _TIME_HELD.search(passage) is not None


def asks_price(question: str) -> bool:
    return _PRICE_ASKED.search(question) is not None


# Whether a fee applies (合同更名要手续费吗, 收费吗, 要不要钱): the chat answers it with 免费 as well as with a sum, so
# it is no price question there; an agent's card shows the priced line first all the same (a trial: the 200元 of
# 合同更名 was not brought forward).
_FEE_ASKED = re.compile(
    r"(?:要|收|交|付|扣|有)(?:不要|不收|没有)?[^，。？?！!\s]{0,3}(?:费用?|钱)(?:吗|么|不|没)|收不收费|要不要钱|免费的?吗|收费吗"
)


def asks_fee(question: str) -> bool:
    """A question for a sum, or for whether a fee applies."""
    return asks_price(question) or _FEE_ASKED.search(question) is not None


# A fee's name (押金, 电费, 停车费): what a line's sum is of
_FEE = re.compile(r"[\u4e00-\u9fff]{1,3}费|押金|租金|房租|保证金|违约金|定金|订金")
# Money held or owed under the lease (not a service's fee, which its parts may price: 维修费 as 人工费 and 材料费)
_HELD_MONEY = re.compile(r"押金|租金|房租|保证金|违约金|定金|订金")
_SAME_MONEY = {"房租": "租金", "保证金": "押金", "订金": "定金"}
_LINE = re.compile(r"[\n。；;]")


def holds_price(passage: str, question: str = "") -> bool:
    """Whether the passage names a sum; for a question about money held or owed under the lease (押金是多少), a sum
    of it: a line naming only other fees (收取保洁费150元 in the deposit refund rules, a trial) names none of it."""
    if _PRICE_HELD.search(passage) is None:
        return False
    asked = [_SAME_MONEY.get(m, m) for m in _HELD_MONEY.findall(priced_subject(question))] if question else []
    if not asked:
        return True
    for line in _LINE.split(passage):
        if _PRICE_HELD.search(line) is None:
            continue
        fees = [_SAME_MONEY.get(f, f) for f in _FEE.findall(line)]
        if not fees or any(a in f or f in a for a in asked for f in fees):
            return True
    return False


# A question that asks yes or no: 能不能 / 可以吗 (the yes_no type), an A-not-A (有没有, 是不是) or a closing 吗.
_YES_NO = next(t.question for t in TYPES if t.name == "yes_no")
_A_NOT_A = re.compile(r"(\w)[没不]\1")
_CLOSING_MA = re.compile(r"[吗么嘛][？?！!。~～\s]*$")
_BARE_YES = re.compile(r"^\s*(?:可以|能|是的|会|行|需要|有)[。，,！!；;]\s*")


_BARE_NO = re.compile(r"^\s*(?:不可以|不能|不行|不允许|不用|不需要|不会|没有)[。，,！!；;]")


def asks_yes_no(question: str) -> bool:
    return bool(_YES_NO.search(question) or _A_NOT_A.search(question) or _CLOSING_MA.search(question))


def unasked_no(question: str, answer: str, asked_words: Sequence[str]) -> bool:
    """Whether an FAQ answer opens with a bare no (「不可以。」) that the question did not ask for, about what the
    tenant does not name (`asked_words`: the pair's own question's words): it refuses what its own question asked
    (楼道里可以放鞋柜或者自行车吗？), not what the tenant asks (附近哪里能租到储物间, a hard out-of-scope question that
    got 「不可以。走廊和楼梯间是消防通道…」). About the same things it corrects the question (健身房怎么预约:
    「不需要，…刷脸入场即可」 of 健身房需要预约吗？)."""
    if asks_yes_no(question) or _BARE_NO.match(answer) is None:
        return False
    return not all(w in question for w in asked_words)


def unasked_yes(question: str, answer: str) -> str:
    """An FAQ answer without its bare yes (「可以。」) when the question did not ask yes or no: 怎么开发票 was answered
    「可以。已支付的房租…」 from the FAQ 房租可以开发票吗？ (a trial)."""
    if asks_yes_no(question):
        return answer
    rest = _BARE_YES.sub("", answer, count=1)
    return rest if rest.strip() else answer
