"""Meaningful section headings, their accepted synonyms, and the staff-only `[内部]` marker."""

from __future__ import annotations

import re
import unicodedata

from ingest.frontmatter import clip
from kb_service.models import Audience, SectionKind

# The marker: `[内部]` at the end of a heading. Brackets may be half- or full-width (`［内部］`, the form a Chinese
# input method types) or lenticular (`【内部】`), with spaces inside; formatting around it (`**[内部]**`) is already
# gone from the heading text.
# Every pattern here runs on headings and lines of any length: each starts at a bracket or is anchored, and no two
# `\s*` can trade characters, so matching stays linear (a leading `\s*` took minutes on 100 KB of spaces).
# The Traditional form 內部 counts too (a trainer typing with a Traditional input method means the same thing).
INTERNAL_MARK = re.compile(r"[\[［【]\s*[内內]\s*部\s*[\]］】]$")  # [内 部]: a space typed inside counts
# Characters that show as nothing (zero-width spaces and joiners, the BOM, soft hyphens, bidi controls): a heading is
# read without them, so a marker pasted with one inside (`[内\u200b部]`) still counts and a kind is still recognised.
# Any format character (Unicode category Cf) and the marks and fillers that show as nothing too: variation selectors,
# the combining grapheme joiner, Hangul fillers, Khmer and Mongolian invisibles, musical formatting (a security test
# slipped U+FE0F into [内部] and the section went public).
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164"
    "\ufe00-\ufe0f\ufeff\uffa0\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
# An ordinal before a heading's words, as Chinese documents number them: 一、 / （二） / 第三部分 / 3. / 3、 / 3.1
_ORDINAL = re.compile(
    r"^(?:第[一二三四五六七八九十百零\d]{1,4}[部分章节条步]{0,2}[、.．:：\s]*"
    r"|[一二三四五六七八九十百零]{1,4}[、.．:：]\s*"
    r"|[（(][一二三四五六七八九十\d]{1,3}[）)]\s*"
    r"|\d{1,2}(?:\.\d{1,2})*[、.．)）]?\s*(?=\D))"
)

# Things a trainer may write meaning "staff only" that are NOT the marker (the section stays public): the word in
# an HTML comment, a marker that is not at the end, the word in other brackets or with more text inside them, the
# bare word after a separator, or a heading that is only such a label. Each is reported, never silently accepted.
_OPEN = r"[\[［【(（〔〖「『《<＜{｛〈〚⁅﹝﹙﹛⦅〘]"  # 〚 ⁅ ﹝: lookalikes a third security round found unwarned
_CLOSE = r"[\]］】)）〕〗」』》>＞}｝〉〛⁆﹞﹚﹜⦆〙]"
_LABEL = r"(?:仅限?员工(?:可见)?|员工专用|[内內]部(?:使用|资料|备注|信息)?)"
_WORD = r"(?:(?:(?:仅限?|只限?)\s*)?(?:[内內]部|员工)(?:使用|资料|备注|信息|专用|可见)?|internal|staff(?:[\s-]*only)?)"
# Bounded gaps: an unbounded `.*?` between `<!--` and `-->` is quadratic on a long hostile heading (48 s for 56 KB).
_COMMENT = re.compile(r"<!--[\s\S]{0,40}?(?:内部|员工)[\s\S]{0,40}?-->")  # over lines too (a security review)
_NEAR_MISSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_COMMENT, "HTML 注释里的标记不起作用"),
    (re.compile(r"[\[［【]\s*[内內]\s*部\s*[\]］】]"), "[内部] 必须写在标题的最后"),
    (
        re.compile(rf"{_OPEN}\s*{_WORD}\s*{_CLOSE}", re.I),
        "只有方括号里只写“内部”两个字才是内部标记",
    ),
    (re.compile(r"(?:^|[\s\-—–:：|｜/·,，、])[内內]部$"), "“内部”两字要放在方括号里"),
    (re.compile(rf"^{_LABEL}(?:\s*[:：])?$"), "标题本身不是内部标记"),
)
# A body line that holds only a marker or a staff-only label (e.g. `[内部]` on the line below the heading, or
# `**内部**：` before staff notes): it makes nothing internal.
_MARKER_LINE = re.compile(rf"^{_OPEN}?\s*{_LABEL}(?:\s*{_CLOSE})?(?:\s*[:：])?$")

# What a company writes meaning "staff only" without the marker (a new customer's Word documents: ## 内部说明,
# ## 六、内部处理口径（不要告诉租客）, a line **注意：以下内容仅员工可见** above the notes): such a heading, and the
# rest of a section after such a line, is read as staff-only — fail-closed, with a warning that says so — because
# the text under it went to tenants while `kb lint` said nothing (session 37). Every near miss above counts too.
_ROLE = r"(?:员工|坐席|客服|管家|店长|门店|工作人员)"
_STAFF_WORDS = (
    rf"(?:仅限?|只限?|限|仅供|只供)\s*(?:{_ROLE}|内部|[内內]勤|本公司)"
    rf"|{_ROLE}(?:专用|可见|内部|须知|参考|注意|提示|权限|口径|版|掌握|备注)|员工(?:价|折扣|优惠|福利)"
    r"|[内內]部(?:使用|资料|备注|信息|说明|口径|流程|规定|处理|联系|电话|通讯录|参考|须知|操作|标准|权限|知悉|掌握"
    r"|提示|注意|要求|优惠|价格|渠道|专用|版|用)"
    r"|后台(?:操作|处理)|内控|机密|保密(?:资料|信息|内容)|不公开|勿念"
    r"|(?:不要|不能|不得|不可|切勿|勿|禁止|请勿)\s*(?:向|对|跟)?\s*(?:租客|客户|住户)?\s*(?:告诉|告知|透露|外传|对外|转告|公开|念)"
    r"|不对外|对[内內](?!容)|不对(?:租客|客户|住户)公开|(?:租客|客户|住户)不可见|internal|staff[\s-]*only"
)
_STAFF_HEADING = re.compile(rf"^[内內]部|^(?:保密|机密)|{_STAFF_WORDS}", re.I)
# A bracketed staff-only label, a comment or a misplaced marker: dropped from the heading that is shown and whose kind
# is read (处理步骤（仅员工） is a steps section)
_STAFF_LABEL = re.compile(
    rf"<!--[^\n]{{0,80}}?-->|{_OPEN}[^\n]{{0,12}}?(?:{_WORD}|{_STAFF_WORDS})[^\n]{{0,12}}?{_CLOSE}", re.I
)
# A short line announcing that what follows is staff-only (以下内容仅员工可见, 注意：下面是内部处理口径, 以下内容保密),
# or a line that is only a label or a marker (**内部**：, [内部], 员工须知：, 内部提示, 补偿标准 [内部] with its ##
# forgotten), or one that opens with such a label (- 员工提示：优惠码…)
_ANNOUNCE = re.compile(
    rf"^(?:注意|提示|说明|备注|重要|特别提醒|特别说明|注)?\s*[:：，,]?\s*(?:以下|下面|下列|下述|后面|此段|本段|这部分|此部分)"
    rf"[^。！!？?\n]{{0,14}}?(?:{_STAFF_WORDS}|[内內]部|保密)",
    re.I,
)
_LABEL_START = re.compile(
    rf"^(?:注意|提示|注|特别提醒)?\s*[:：]?\s*(?:{_STAFF_WORDS}|[内內]部|{_ROLE}(?:提醒|说明))[^:：。\n]{{0,6}}[:：]",
    re.I,
)
_LABEL_ONLY = re.compile(
    rf"^(?:注意|提示|注)?(?:{_STAFF_WORDS}|[内內]部)(?:注意|提示|须知|说明|备注|信息|参考)?$", re.I
)
# A staff-only aside inside a line: （内部：退余额收手续费 8.8 元）; the marker anywhere in a line (- [内部] 成本价…,
# 2. 【内部】后台改价…, > （内部）…, a table cell, mid-sentence: a security review's findings, all public before);
# a line opening with the bare word (- 内部 成本价…); a bracketed announcement inside a line (（以下内容不要对外）…)
_ASIDE = re.compile(
    rf"{_OPEN}\s*(?:[内內]部|仅限?员工|{_ROLE})[^{_CLOSE[1:-1]}\n]{{0,4}}[:：]"
    rf"|{_OPEN}\s*[内內]\s*部\s*{_CLOSE}|^\W{{0,3}}[内內]部(?:\s|[:：])"
    rf"|{_OPEN}\s*(?:以下|下面|下列|此段|本段)[^{_CLOSE[1:-1]}\n]{{0,14}}?(?:{_STAFF_WORDS}|[内內]部|保密)"
)
_SYMBOLS = re.compile(r"[\s*_~⚠️❗！!#>•·\-—]+")
ANNOUNCE_CHARS = 40  # a longer line is content, not a label


def reads_staff_only(heading: str) -> tuple[str, str] | None:
    """(what reads as staff-only, the heading without a staff-only label) for an unmarked section heading that is
    evidently meant for staff; None for an ordinary heading."""
    heading = visible(heading).strip()
    words = _ORDINAL.sub("", heading).strip()
    found = next((m.group(0) for p, _ in _NEAR_MISSES if (m := p.search(heading))), None)
    if found is None and (m := _STAFF_HEADING.search(words)) is not None:
        found = m.group(0)
    if found is None:
        return None
    shown = _STAFF_LABEL.sub("", heading)
    shown = re.sub(r"[\[［【]\s*[内內]部\s*[\]］】]", "", shown).strip(" \t-—–:：|｜/·,，、") or heading
    return found.strip(), shown


def announces_staff_only(line: str) -> bool:
    """Whether a body line says that what follows it is staff-only (or is only a staff-only label or marker)."""
    line = visible(line).strip()
    if not line:
        return False
    bare = _SYMBOLS.sub("", line)
    if _LABEL_START.match(bare):  # 员工提示：… opens a note, however long the note
        return True
    if len(line) > ANNOUNCE_CHARS:
        return False
    unwrapped = re.sub(rf"^{_OPEN}(.*){_CLOSE}[:：]?$", r"\1", bare).rstrip(":：")
    return bool(
        _ANNOUNCE.match(line)
        or _ANNOUNCE.match(unwrapped)
        or _LABEL_ONLY.match(unwrapped)
        or _MARKER_LINE.match(line)
        or _COMMENT.fullmatch(line)
        or INTERNAL_MARK.search(line)
    )


# The heading vocabulary on a line, wherever it sits (a re-check of the security review: （仅限内部）, [仅员工],
# [内部资料], [内部使用], [对内], (staff only), （不要告诉租客）, 仅限员工知晓, ——内部 and a table cell 内部价 were
# public while the same words in a heading were not). Unbracketed only in forms that speak to staff: 请勿告知他人密码
# is a tenant's instruction, 不要告诉租客 is not.
_LINE_STAFF = re.compile(
    rf"{_OPEN}[^\n]{{0,12}}?(?:{_WORD}|{_STAFF_WORDS})[^\n]{{0,12}}?{_CLOSE}"  # not any comment: it is never shown
    r"|(?:不要|不能|不得|不可|切勿|勿|禁止|请勿)\s*(?:向|对|跟)?\s*(?:租客|客户|住户)\s*(?:告诉|告知|透露|转告|公开|念|说)"
    r"|(?:仅|只)限?\s*(?:员工|内部|坐席|客服|管家|店长)\s*(?:知晓|可见|掌握|参考|使用)"
    r"|[内內]部(?:价|价格|折扣|优惠|资料|使用|口径|电话|通讯录|权限)"
    r"|(?:^|[\s\-—–:：|｜/·,，、])[内內]部\s*$|\binternal\b|staff[\s-]*only",
    re.I,
)


def has_staff_aside(line: str) -> bool:
    """Whether a line holds a staff-only aside (（内部：…）, a marker or staff-only label anywhere in it) that cannot
    be cut out of it."""
    line = visible(line)
    return _ASIDE.search(line) is not None or _LINE_STAFF.search(line) is not None


# The first four of each kind are the ones messages suggest; the rest are what company documents (often converted
# from Word) call the same sections, added after new customers' trials.
SECTION_SYNONYMS: dict[SectionKind, tuple[str, ...]] = {
    "scenario": (
        *("适用场景", "适用范围", "场景说明", "适用情形", "场景", "适用对象", "目的", "编制目的", "目的与适用范围"),
        *("目的和适用范围", "目的及适用范围", "目的与范围", "适用", "受理范围", "业务范围", "服务范围"),
        *("情形", "适用情况", "情况说明", "问题描述"),  # a terse company's 情形 (a trainer's trial)
    ),
    "steps": (
        *("处理步骤", "操作步骤", "处理流程", "操作流程", "流程", "步骤", "处理办法", "处理方法", "工作程序"),
        *("作业程序", "处理程序", "工作流程", "作业流程", "办理流程", "服务流程", "办理步骤", "操作规程"),
        *("处置流程", "处置步骤", "工作步骤", "执行流程", "具体流程", "服务程序"),
    ),
    "script": (
        *("标准话术", "话术", "参考话术", "沟通话术", "服务话术", "标准用语", "话术参考", "服务用语"),
        *("沟通用语", "参考用语", "规范用语", "常用话术", "话术示例", "应答话术", "话术模板"),
    ),
    "time_limit": (
        *("时限要求", "时限", "时效要求", "响应时限", "服务时限", "时效", "处理时限", "完成时限", "服务时效"),
        *("时限及责任人", "时限与责任人", "时限和责任人", "时效及责任人", "时间要求", "时限标准", "时效标准"),
    ),
    "notes": (
        *("注意事项", "注意", "温馨提示", "重要提示", "提示", "注意要点", "禁止事项", "禁忌事项"),
        *("禁忌", "禁止", "红线", "服务禁忌"),
    ),
    "escalation": (
        *("升级处理", "升级路径", "上报流程", "升级流程", "升级", "升级机制", "升级规则", "上报机制"),
        *("上报", "升级上报", "上报处理", "上报路径", "上报规则", "上报要求", "逐级上报"),
    ),
    "faq": ("常见问题", "faq", "常见问答", "问答", "常见问题解答", "常见问题及解答", "q&a", "qa"),
}

_TRAILING = ":：" + "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_LOOKUP = {name.lower(): kind for kind, names in SECTION_SYNONYMS.items() for name in names}


# CJK compatibility ideographs: 內 written as U+2F814 reads as 內 (NFKC), as a marker must
_COMPAT = re.compile("[\uf900-\ufaff\U0002f800-\U0002fa1f]")


def visible(text: str) -> str:
    """`text` without the characters that show as nothing (format characters, and combining marks: a security review
    put U+0301 inside [内部]), with compatibility ideographs read as the ideographs they show."""
    text = _INVISIBLE.sub("", text)
    if text.isascii():
        return text
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Mn"))
    return _COMPAT.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


def strip_comments(text: str, keep_lines: bool = False) -> str:
    """`text` without `<!-- … -->` comments (an unclosed one stays: Markdown shows it), in one linear pass;
    `keep_lines`: each comment leaves its line breaks, so the lines after it keep their numbers."""
    out, at = [], 0
    while (start := text.find("<!--", at)) >= 0 and (end := text.find("-->", start + 4)) >= 0:
        out.append(text[at:start])
        if keep_lines:
            out.append("\n" * text.count("\n", start, end))
        at = end + 3
    out.append(text[at:])
    return "".join(out)


def split_internal(heading: str) -> tuple[str, bool]:
    """Strip a trailing `[内部]` marker (and any comment: the author's note, never shown); return the clean heading
    and whether the marker was there."""
    stripped = strip_comments(visible(heading)).strip()
    cleaned = INTERNAL_MARK.sub("", stripped).strip()
    return cleaned, cleaned != stripped


_PUBLIC = " / not a staff-only marker: this text will be PUBLIC; end the heading with [内部]"


def effective_audience(doc_audience: Audience, internal_from: int | None) -> Audience:
    """The one rule every tenant-facing filter follows: staff-only when the document is, or under `[内部]`."""
    return "agent" if internal_from is not None or doc_audience == "agent" else "public"


def heading_near_miss(heading: str, level: int, *, title: bool = False) -> str | None:
    """The warning for an unmarked heading that looks meant to be staff-only (`title`: the document's `#` title)."""
    heading = visible(heading).strip()
    for pattern, why in _NEAR_MISSES:
        match = pattern.search(heading)
        if match is None:
            continue
        found = match.group(0).strip()
        if title:
            return (
                f"文档标题“{clip(heading)}”中的“{clip(found)}”不是内部标记，整份文档将对租客公开。"
                "如需整份文档仅员工可见，请在文件头写 audience: agent；部分内容请在小节标题末尾写 [内部]" + _PUBLIC
            )
        rest = heading.replace(found, "").strip(" \t-—–:：|｜/·,，、") or heading
        return (
            f"标题“{clip(heading)}”中的“{clip(found)}”不是内部标记（{why}），本小节将对租客公开。"
            f"如需仅员工可见，请写成“{'#' * level} {clip(rest)} [内部]”" + _PUBLIC
        )
    return None


def body_marker_near_miss(line: str, heading: str, level: int, *, title: bool = False) -> str | None:
    """The warning for a body line that holds only a marker or a staff-only label: it makes nothing internal."""
    line = visible(line).strip()
    # …or ends with one, as a heading would (####### 补偿标准 [内部]: seven #s are no heading; 补偿标准 [内部] with its
    # ## forgotten), a second security round's finding
    if not (_MARKER_LINE.match(line) or _COMMENT.fullmatch(line) or INTERNAL_MARK.search(line)):
        return None
    if title:
        where, how = "这段简介", "请把这些内容移到标题带 [内部] 的小节，例如“## 内部说明 [内部]”"
    else:
        where, how = "本小节", f"请把标记写在标题末尾：“{'#' * level} {clip(split_internal(heading)[0])} [内部]”"
    return f"正文里的“{clip(line.strip())}”不会让内容仅员工可见，{where}将对租客公开。如需仅员工可见，{how}" + _PUBLIC


# A heading name set in brackets as a house style (【时效】, 〔处理步骤〕, [话术]) is that name (a third company's
# documents read every 【时效】 as a plain section).
_BRACKETED = re.compile(r"^[【〔\[「『]\s*(.+?)\s*[】〕\]」』]$")


def _name(heading: str) -> str:
    key = visible(heading).strip().rstrip(_TRAILING)
    return _BRACKETED.sub(r"\1", key).rstrip(_TRAILING)


def section_kind(heading: str) -> SectionKind:
    """Kind of a `##` heading; unknown headings are plain sections."""
    key = _name(heading).lower()
    return _LOOKUP.get(key) or _LOOKUP.get(_ORDINAL.sub("", key).strip().rstrip(_TRAILING), "plain")


# List items, quotations or table rows: what steps, scripts and time limits are made of
_LISTED = re.compile(r"^(?:\d+\. |- )|[“「]| \| ", re.M)
_LOOKS_STRUCTURED = re.compile(r"流程|步骤|话术|用语|问答|办法|措施|做法|程序|处置|应答|说法|时限|时效")
# ... or, tenants can read it, escalation, cautions and scope (上报渠道, 服务红线: a trainer's trial had the chat answer
# a tenant with them)
_LOOKS_GUIDANCE = re.compile(r"上报|禁忌|禁止|红线|注意|情形|场景")
_NOT_RECOGNISED = (
    "按普通小节处理：标题不是可识别的小节名，坐席卡片上不会有它的步骤、时限、升级或可复制的话术，租客提问时还可能"
    "直接用这一节回答。请用："
    + "；".join(
        "/".join(SECTION_SYNONYMS[k][:4]) for k in ("steps", "script", "time_limit", "escalation", "notes", "faq")
    )
    + " 等（全部同义标题见 docs/sop-format.md 第 2 节，可带“一、”“1.”等序号） / not a recognised section name"
)


def unrecognised(heading: str, text: str, internal: bool) -> str | None:
    """The warning for a plain section whose heading reads like one of the kinds (steps, a script, time limits; or,
    tenants can read it, escalation, cautions, scope) and whose text holds a list, quotes or a table; else None."""
    named = _LOOKS_STRUCTURED.search(heading) or (not internal and _LOOKS_GUIDANCE.search(heading))
    return _NOT_RECOGNISED if named and _LISTED.search(text) else None


# Headings no list names that say what they hold by their last words (预约流程, 登记步骤, 对客用语, 三、处置): read as
# that kind only when the section holds it (a numbered list; quoted lines), so prose under 投诉流程 stays a plain
# section and never becomes a steps section without steps.
_STEPS_SUFFIX = re.compile(r"(?:流程|步骤|程序|处置|处理|办法)$")
_SCRIPT_SUFFIX = re.compile(r"(?:用语|话术|说法|应答)$")


def kind_by_suffix(heading: str, has_steps: bool, has_lines: bool) -> SectionKind:
    """The kind a heading's last words give when the section holds what that kind needs; "plain" otherwise."""
    key = _ORDINAL.sub("", _name(heading)).strip()
    if has_steps and _STEPS_SUFFIX.search(key):
        return "steps"
    if has_lines and _SCRIPT_SUFFIX.search(key):
        return "script"
    return "plain"
