"""Masking personal data in logged questions: phone, ID-card (also in its groups) and bank-card numbers, e-mail
addresses, WeChat ids, room numbers and names (a surname with 女士/先生/小姐…, "我叫…", "租客…说", "我姓…",
"联系人…", "刘德明说…", and a name standing alone beside a phone or room number: "王小明 13812345678"). A bare full
name with nothing around it that says it is one (张三丰的手机) is not told from ordinary words and stays."""

from __future__ import annotations

import re

import jieba
from jieba import posseg

# The hundred commonest Chinese surnames: a name is told by a surname before an honorific, not by any character.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
    "范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂"
)
_COMPOUND = "欧阳|司马|上官|诸葛|东方|皇甫|慕容"
# A digit as typed, spoken or transcribed, and what may stand between the digits of one number however it was typed
# or transcribed (a security review's re-check: 138，1234，5678 from voice input, 138 - 1234 - 5678, 138、1234、5678,
# 一三八，一二三四，五六七八, 110105.19900307.125X), at most three characters at a time
_D = "[0-9零〇一幺壹二两贰三叁四肆五伍六陆七柒八捌九玖]"
_S = r"[\s\u200b\-.,/_·*~～、，。．／＿—–()（）]{0,3}"
_SCATTERED_ID = rf"(?<!{_D}){_D}(?:{_S}{_D}){{16}}{_S}(?:{_D}|[Xx])(?![0-9Xx])"
_SCATTERED_CARD = rf"(?<!{_D}){_D}(?:{_S}{_D}){{15,18}}(?!{_D})"
_SCATTERED_MOBILE = rf"(?<!{_D})[1一幺壹]{_S}[3-9三叁四肆五伍六陆七柒八捌九玖](?:{_S}{_D}){{9}}(?!{_D})"
_SCATTERED_LANDLINE = rf"(?:\+86{_S}|(?<!{_D})[(（]?0{_S})[1-9](?:{_S}{_D}){{8,10}}(?!{_D})"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+"), "[邮箱]"),
    (re.compile(r"(?i)(?<![a-z0-9_])wxid_[a-z0-9_]{4,30}"), "[微信号]"),
    (re.compile(r"(?i)((?:微信号?|vx号?|v信)\s*[:：]?\s*)[a-z][\w-]{5,19}"), r"\1[微信号]"),
    (re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), "[身份证号]"),
    # ... written or transcribed in its groups: 110105 19900307 1256, 110105 1990 0307 125X (a security review)
    (re.compile(r"(?<!\d)\d{6}[ -](?:\d{8}|\d{4}[ -]\d{4})[ -]\d{3}[\dXx](?![\dXx])"), "[身份证号]"),
    # A passport: after its name, or a Chinese one's E/G and eight digits (a security test: 护照E12345678)
    (
        re.compile(r"((?:护照|通行证)(?:号码?)?\s*[:：]?\s*)[A-Za-z]{1,2}\d{6,9}|(?<![A-Za-z0-9])[EG]\d{8}(?!\d)"),
        "\\1[证件号]",
    ),
    # ... and in groups of four (1101 0519 9003 0712 5X), or apart in any way (_SCATTERED_ID)
    (re.compile(r"(?<!\d)\d{4}(?:[-. ]\d{4}){3}[-. ]\d[\dXx](?![\dXx])"), "[身份证号]"),
    (re.compile(_SCATTERED_ID), "[身份证号]"),
    # A mobile, its digits apart however they were typed (138.1234.5678, 138/1234/5678, 1381 234 5678, (138)1234…:
    # a security review's forms; full-width dashes and spaces are read as these, _HALF)
    (
        re.compile(r"(?<!\d)(?:[(（]?\+?86[)）]?[-. ]?)?[(（]?1[3-9]\d[)）]?(?:[-. /_]?\d){8}(?!\d)"),
        "[手机号]",
    ),
    # ... read out digit by digit and transcribed with a space between them: 1 3 5 9 8 7 6 5 4 3 2
    (re.compile(r"(?<![\d ])1 [3-9](?: \d){9}(?![ ]?\d)"), "[手机号]"),
    # A bank card: 16 to 19 digits, or four-digit groups (after the ID card, which is 18 with a check character).
    (re.compile(r"(?<!\d)(?:\d{16,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?)(?!\d)"), "[银行卡号]"),
    (re.compile(_SCATTERED_CARD), "[银行卡号]"),  # ... apart in any other way (6222.0212.3456.7890)
    (re.compile(r"(?<!\d)[(（]?0\d{2,3}[)）]?[-. /_]?\d{3,4}[-. /_]?\d{4}(?!\d)"), "[电话]"),
    # ... and phones with their digits apart in any other way (the forms above keep their placeholders)
    (re.compile(_SCATTERED_MOBILE), "[手机号]"),
    (re.compile(_SCATTERED_LANDLINE), "[电话]"),
    # A mobile number read out and transcribed in words: 幺三八一二三四五六七八 (幺 and 两 for 1 and 2).
    (re.compile(r"[一幺][三四五六七八九]" r"[零〇一幺二两三四五六七八九\s]{9,}"), "[手机号]"),
    (
        # the block in digits, a letter or words (三栋1502: an integrator's transcript kept it)
        re.compile(
            r"(?:[A-Za-z]|\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:栋|幢|座|号楼|单元)\s*"
            r"(?:(?:\d{1,2}|[一二三四五六七八九十]{1,2})\s*单元\s*)?(?:\d{3,4}|\d{1,2}\s*-\s*\d{2,4})\s*(?:室|房|号)?"
        ),
        "[房号]",
    ),
    (re.compile(r"(?<![\d-])\d{1,2}-\d{1,2}-\d{3,4}(?![\d-])"), "[房号]"),
    # floor-room after who lives where: 我住B12-02, 住在3-1202 (a re-check of a security review)
    (re.compile(r"((?:我住|住在|我是|房号是?|房间号?是?)\s*)[A-Za-z]?\d{1,2}-\d{2,4}(?![\d-])"), r"\1[房号]"),
    # a car's plate: 京A12345, 粤B·D12345 (a new-energy one has six characters after the letter)
    (
        re.compile(
            r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z][·•\s]?[A-Z0-9]{5,6}(?![A-Za-z0-9])"
        ),
        "[车牌]",
    ),
    (re.compile(r"(?<!\d)\d{1,2}\s*楼\s*\d{1,2}\s*(?:室|号|房)"), "[房号]"),
    (re.compile(r"(?<!\d)\d{3,4}\s*(?:室|房间|号房|房(?![租费款子东价源型屋贷产]))"), "[房号]"),
    (re.compile(r"(?i)\b(?:room|rm\.?)\s*#?\s*\d{3,4}\b"), "[房号]"),
    # After 房间 / 房号 / 门牌 the number is a room whatever follows, a block letter included (房间A1502漏水: an
    # operator's trial found it in the query log)
    (
        re.compile(r"((?:房间号?|房号|门牌号?)\s*(?:是|为|[:：])?\s*)(?:[A-Za-z]|\d{1,2})?-?\d{3,4}(?![\d年元块米])"),
        r"\1[房号]",
    ),
    # A room read out in words: 七栋十五零二, 3栋一二零三
    (
        re.compile(
            r"(?:[一二三四五六七八九十]{1,3}|\d{1,2})\s*(?:栋|幢|座|号楼)\s*(?:[一二三四五六七八九十]{1,2}\s*单元\s*)?"
            r"[零〇一二三四五六七八九十幺两]{3,4}"
        ),
        "[房号]",
    ),
    # A bare room number after who lives where: 我是1203的, 我住一二零三, 房间号是1203 (read out in words too).
    (
        re.compile(
            # ... or a neighbour's flat (楼上是703, 对门1502: a trial saw the caller's room masked beside it)
            r"((?:我是|我住|住在|房号是?|房间号?是?|门牌号?是?|(?:楼上|楼下|隔壁|对门|对面)(?:是|那家|那户)?)\s*)"
            r"(?:\d{3,4}|[零〇一幺二两三四五六七八九]{3,4})(?=[的室房号家，,。！!？?\s]|$)"
        ),
        r"\1[房号]",
    ),
    (re.compile(rf"(?:{_COMPOUND}|[{_SURNAMES}])[\u4e00-\u9fff]{{0,2}}(?:女士|先生|小姐)"), "[姓名]"),
    # "我是王小红，…", "租客张晓明电话…": a surname and one or two characters after who is speaking or spoken of.
    (
        re.compile(
            rf"(?<=我是|租客|业主|房东|我叫)(?:{_COMPOUND}|[{_SURNAMES}])(?:(?!的)[\u4e00-\u9fff]){{1,2}}(?=[，,。\s的住说在家要打和跟反投]|电话|手机|$)"
        ),
        "[姓名]",
    ),
    (re.compile(r"(?<=我叫)[\u4e00-\u9fff]{2,3}"), "[姓名]"),
    # A name after a label that says one follows: 联系人赵敏, 报修人：刘德明 (the same trial)
    (
        re.compile(
            rf"((?:联系人|报修人|申请人|住户|租户|客户|姓名)\s*[:：]?\s*)(?:{_COMPOUND}|[{_SURNAMES}])"
            r"(?:(?!的)[\u4e00-\u9fff]){1,2}(?=[，,。\s的住说在家要打和跟反投]|电话|手机|$)"
        ),
        r"\1[姓名]",
    ),
    (re.compile(rf"(?<=我姓)[{_SURNAMES}]"), "[姓]"),
    (re.compile(r"(?i)(?<=my name is )[a-z]+(?: [a-z]+)?|(?<=I'm )[A-Z][a-z]+(?: [A-Z][a-z]+)?"), "[姓名]"),
)


# Who said something, at a clause's start: 刘德明说楼上漏水 (an operator's trial found it in the query log). A surname
# and one or two characters before 说 are a name unless they are a word of the dictionary (方便说, 周末说, 马上说).
_SPEAKER = re.compile(
    rf"(?:^|(?<=[，,。！!？?；;：:\s]))((?:{_COMPOUND}|[{_SURNAMES}])[\u4e00-\u9fff]{{1,2}})(?=说|反映|投诉|来电|打电话)"
)


# A name written as a clause of its own beside a phone, room or ID number a rule above masked: 王小明 13812345678,
# 5栋1203 刘德明 (a trial's bare full name went through beside its masked phone). The same exception for words of the
# dictionary (马上, 方便).
_NUMBERS = "手机号|电话|房号|身份证号|证件号|银行卡号|邮箱|微信号"  # the placeholders of the rules above
_PLACEHOLDER = rf"\[(?:{_NUMBERS})\]"
_NAME = rf"(?:{_COMPOUND}|[{_SURNAMES}])[\u4e00-\u9fff]{{1,2}}"
_BESIDE = re.compile(
    rf"(?:^|(?<=[，,。！!？?；;：:\s]))({_NAME})(?=[\s，,；;：:]*{_PLACEHOLDER})"
    rf"|({_PLACEHOLDER})([\s，,；;：:]*)({_NAME})(?=$|[，,。！!？?；;\s])"
)


# Whose name it is: after a family member or housemate (我老公陈大明的电话; 孩子他爸刘德华, a later trial), after a
# placeholder and 的 (我是[房号]的张秀英), and a name opening the message with a bare room number beside it (张秀英，
# 1502，…): a trainer's trial found all three in the gap report. The same exception for words of the dictionary, also
# as a name's first two characters (我朋友马上到).
_KIN = (
    "老公|老婆|爱人|丈夫|妻子|媳妇|男朋友|女朋友|男友|女友|对象|未婚夫|未婚妻|室友|舍友|同事|朋友|邻居"
    "|我妈|我爸|妈妈|爸爸|母亲|父亲|儿子|女儿|闺女|他爸|他妈|孩子爸|孩子妈|婆婆|公公|岳父|岳母|丈母娘"
    "|哥哥|姐姐|弟弟|妹妹|表哥|表姐|表弟|表妹|堂哥|堂姐|家属|亲戚|保姆"
)
_GIVEN = rf"(?:{_COMPOUND}|[{_SURNAMES}])(?:(?!的)[\u4e00-\u9fff]){{1,2}}"
_END = r"(?=[，,。！!？?；;\s的住说在家要打和跟反投来]|电话|手机|[上下]午|[今明昨]天|晚上|早上|$)"
_OWNED = re.compile(
    rf"((?:{_KIN})|{_PLACEHOLDER}的)({_GIVEN}){_END}|^({_GIVEN})([，,\s]+)\d{{3,4}}(?=[，,。！!？?；;\s]|$)"
)


def _word(text: str) -> bool:
    """A word of the dictionary that is not a person's name (its tag nr: 王小明 is in it, as 李娜 is)."""
    return bool(jieba.dt.FREQ.get(text)) and posseg.dt.word_tag_tab.get(text) != "nr"


def _names(text: str) -> str:
    """The names `_SPEAKER` and `_BESIDE` find, masked (words of the dictionary kept: 方便说, 马上 13812345678)."""

    def named(m: re.Match[str]) -> str:
        return m.group(0) if _word(m.group(1)) else "[姓名]"

    def beside(m: re.Match[str]) -> str:
        if _word(m.group(1) or m.group(4)):
            return m.group(0)
        return "[姓名]" if m.group(1) else m.group(2) + m.group(3) + "[姓名]"

    def owned(m: re.Match[str]) -> str:
        name = m.group(2) or m.group(3)
        if _word(name) or _word(name[:2]):  # 马上到 is no name
            return m.group(0)
        return m.group(1) + "[姓名]" if m.group(2) else "[姓名]" + m.group(4) + "[房号]"

    if _SPEAKER.search(text) is None and _BESIDE.search(text) is None and _OWNED.search(text) is None:
        return text
    jieba.dt.check_initialized()  # the dictionary's words, loaded once per process
    return _BESIDE.sub(beside, _OWNED.sub(owned, _SPEAKER.sub(named, text)))


# Full-width digits and letters (１３９…, Ａ) as the rules read them: a phone typed on a Chinese keyboard's full-width
# mode went through unmasked (a security test)
# ... and its dashes and spaces (138－1234－5678, 139　8765　4321: the same keyboard, a security review)
_HALF = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF5B) if chr(c - 0xFEE0).isalnum()}
    | {c: "-" for c in "\uff0d\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63"}
    | {c: " " for c in "\u3000\u00a0\u2002\u2003\u2009\u202f"}
    | {"＠": "@", "．": ".", "／": "/", "＿": "_"}  # an e-mail or a number typed in full width (its re-check)
)


def mask(text: str) -> str:
    """The text with phone, ID-card and room numbers and names replaced by placeholders."""
    text = text.translate(_HALF)
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return _names(text)


# What no agent needs to call a tenant back or fix a problem: identity-document and bank-card numbers (the rules of
# _RULES that put these placeholders, in their order). A tenant typing 身份证号… into the chat had it shown to every
# agent in the queue and sent in the webhook (a supervisor's trial).
_DOCUMENT_RULES = tuple(rule for rule in _RULES if rule[1].endswith(("[身份证号]", "[证件号]", "[银行卡号]")))


def documents_masked(text: str) -> str:
    """The text with identity-document and bank-card numbers replaced by placeholders, and nothing else changed:
    what a hand-over case keeps of the tenant's words (the names, phones and rooms in it are what agents need)."""
    half = text.translate(_HALF)
    out = half
    for pattern, placeholder in _DOCUMENT_RULES:
        out = pattern.sub(placeholder, out)
    return text if out == half else out


_PLACEHOLDERS = re.compile(rf"\[(?:姓名|姓|{_NUMBERS})\]")


def redact(text: str) -> str:
    """The text with that personal data left out (a placeholder's own words, 手机号, would be searched): what a live
    call keeps of the tenant's words."""
    return _PLACEHOLDERS.sub("", mask(text))


def masked_something(masked: str) -> bool:
    """Whether a masked text had personal data taken out (it holds a placeholder)."""
    return _PLACEHOLDERS.search(masked) is not None
