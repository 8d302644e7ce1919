"""Which passage of a public SOP answers a tenant's question: candidate passages (each FAQ pair, each section) scored by
how much of the question they cover, how similar their own question or heading is, and whether they are about the
same object (a `宠物押金` passage does not answer a question about `押金`)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import jieba
import numpy as np
from jieba import posseg

from kb_service.models import INTRODUCTION, Audience, Sop
from kb_service.search import answer_types
from kb_service.search.key_embeddings import KeyEmbeddings
from kb_service.search.objects import PUNCT, mismatch
from kb_service.search.tenant_wording import speaks_to_staff
from kb_service.text.normalize import normalize, strip_fillers
from kb_service.text.tables import table_clauses

# Question words and particles: they say what kind of answer is wanted, not what it is about.
_STOP_WORDS = """
怎么办 怎么 怎样 怎么样 如何 什么 什么样 为什么 多久 多少 哪些 哪里 哪儿 可以 能否 能不能 是否 是不是 有没有 要不要 需要
应该 请问 一下 我们 你们 他们 我的 自己 现在 时候 什么时候 还是 或者 就是 已经 这个 那个 这样 那样 一直 的话 了吗
吗 呢 吧 啊 该 能 要 会 想 让 给 把 被 在 和 跟 与 了 的 得 地 着 过 是 有 没 不 也 都 就 还 我 你 他 她 它
"""
_STOP = frozenset(_STOP_WORDS.split())
# Section kinds a tenant's answer never is: the document's introduction (who it is for), agents' phrasing and agents'
# escalation rules (a trial got 单户断网超过24小时…升级店长 from a public document's 升级处理).
_NOT_ANSWERS = ("scenario", "script", "escalation")


@dataclass(frozen=True)
class Passage:
    sop_id: str
    title: str
    heading: str  # the section's heading, or the FAQ question
    body: str  # what the tenant is shown
    kind: str
    rank: int  # the SOP's rank in the search (0 = first)
    subject: str = ""  # the SOP's title and tags: what its sections are about without naming it
    share: float = 1.0  # the SOP's search score as a share of the first SOP's

    @property
    def key(self) -> str:
        return self.heading


@dataclass(frozen=True)
class Scored:
    passage: Passage
    coverage: float  # share of the question's words (IDF-weighted) found in the passage
    key_similarity: float  # cosine of the question and the passage's heading or FAQ question (+ its first sentence)
    mismatch: str | None  # the passage's own object the question does not name (e.g. 宠物 in 宠物押金)
    score: float  # orders the candidates
    strength: float  # how well the passage answers, without what only orders passages against each other
    priced: float = 1.0  # share of what a price question prices (遛狗服务 of 遛狗服务多少钱) the passage names


def words(text: str) -> list[str]:
    """The content words of a text: jieba words without question words, particles and punctuation."""
    clean = PUNCT.sub(" ", strip_fillers(normalize(text)))
    return [w for w in map(_unglued, jieba.cut(clean)) if w.strip() and w not in _STOP]


# Modal and adverb characters jieba's guesser glues to a neighbour it does not know as a word: 车能 (车能停进小区吗),
# 最多能, 会断, 能连. A word of its dictionary keeps them (功能, 会员, 要求, 还款).
_GLUE = frozenset("能会要可还都也就在哪")


def _unglued(word: str) -> str:
    if len(word) < 2 or jieba.dt.FREQ.get(word):
        return word
    if word[-1] in _GLUE:
        word = word[:-1]
    if len(word) >= 2 and word[0] in _GLUE:
        word = word[1:]
    return word


def passages(sop: Sop, rank: int, share: float = 1.0) -> list[Passage]:
    """A public SOP's candidate answers: each FAQ pair, each other section with text (the introduction if no other)."""
    out: list[Passage] = []
    subject = " ".join([sop.title, *sop.meta.tags])
    for s in sop.sections:
        if s.audience != "public":
            continue
        if s.kind == "faq":
            out += [
                Passage(sop.meta.id, sop.title, q.question, table_clauses(q.answer), "qa", rank, subject, share)
                for q in s.qa
            ]
        elif s.text.strip() and s.kind not in _NOT_ANSWERS:
            # A table reads as clauses (情形 | 费用承担 rows: 「入住7天内出现的堵塞：公司」), as a tenant is told it
            text = _RESPONSIBLE.sub("", s.text) if s.kind == "time_limit" else table_clauses(s.text)
            out.append(Passage(sop.meta.id, sop.title, s.heading, text, s.kind, rank, subject, share))
    # An introduction naming both kinds of meter answered 电卡怎么充值？ over the steps (a fourth company's documents)
    return [p for p in out if not (p.kind == "plain" and p.heading == INTRODUCTION)] or out


# Who inside the company answers for a time limit (a time-limit table's 责任人 column, read as （责任人：维修工）): the
# agents' business, not the tenant's answer (a tenant trial: 上门维修：4小时内（责任人：维修工）).
_RESPONSIBLE = re.compile(r"[（(]\s*(?:责任人|负责人|责任部门)\s*[:：][^（）()\n]{0,40}[）)]")


_COMPLEMENT = re.compile(
    r"(?:回来|回去|出来|出去|进来|进去|下来|下去|上来|上去|过来|过去|起来|到账|回|好|完|掉|走|到)$"
)


def _present(word: str, text: str) -> float:
    """1 when the word is in the text; 0.8 when its characters are, in order, at most two apart (门卡 in 门禁卡)."""
    if word in text:
        return 1.0
    if len(word) < 2 or not word.isalpha():
        return 0.0
    if re.search(".{0,2}".join(map(re.escape, word)), text):
        return 0.8
    # A verb with its direction or result (退回来, 修好, 搬出去): the verb with another one (退到账, 修完) names it too.
    stem = _COMPLEMENT.sub("", word)
    if stem != word and stem and stem in text:
        return 0.6
    # A compound a glossary taught jieba (补开发票): named as far as its own words are (电子发票, 可补开…)
    # A missing noun of it says the text is about another one (宠物押金 is not the 押金 of a moving-out rule)
    named = _named_parts(word, text)
    if _missing_noun(word, text, named):
        return 0.0
    share = (sum(named) + _named_beside(word, text, named)) / (len(word) - word.endswith("了"))  # 了 names nothing
    return 0.8 * share if share >= 0.5 else 0.0


def _named_beside(word: str, text: str, named: list[bool]) -> int:
    """A tenant's phrase a glossary taught jieba (快递丢了): what happened is a character of its own (丢), named by
    a line that names the rest of the phrase too (丢件：… 提交“快递异常”). Read without it, 快递丢了 was named alike
    by every passage with a 快递, and the FAQ pair nearest in wording (快递可以让前台代收吗？) answered it."""
    if not any(named):
        return 0
    parts = [p for at, p in _parts(word) if all(named[at : at + len(p)])]
    alone = [c for c, n in zip(word, named, strict=True) if not n and c != "了"]
    lines = [line for line in text.splitlines() if any(p in line for p in parts)]
    return sum(any(c in line for line in lines) for c in alone)


def _named_parts(word: str, text: str) -> list[bool]:
    """Which characters of a compound the text names through the compound's own words."""
    named = [False] * len(word)
    for at, part in _parts(word):
        if part in text:
            named[at : at + len(part)] = [True] * len(part)
    return named


def _missing_noun(word: str, text: str, named: list[bool]) -> bool:
    """A noun of the compound that the text does not name, nor any part of it (宠物 of 宠物押金 beside a 押金)."""
    tags = posseg.dt.word_tag_tab
    return any(
        part not in text and tags.get(part, "").startswith("n") and not any(named[at : at + len(part)])
        for at, part in _parts(word)
    )


_DENIED = re.compile(r"(?:没有|没|不是|并非|并未|未|无)$")


def _denied_at(text: str, at: int) -> bool:
    return _DENIED.search(text[max(0, at - 2) : at]) is not None


def _undenied(text: str, ws: Sequence[str], question: str) -> str:
    """The text without its mentions of the words (or their own words) that follow a denial (烟感…没有着火怎么办 of
    着火了怎么办), unless the question denies them too (没有热水)."""
    for w in ws:
        for part in {w, *(p for _, p in _parts(w))}:
            if part not in text or any(_denied_at(question, m.start()) for m in re.finditer(re.escape(part), question)):
                continue
            text = re.sub(
                re.escape(part),
                lambda m: "〇" * len(m.group()) if _denied_at(m.string, m.start()) else m.group(),
                text,
            )
    return text


@functools.lru_cache(maxsize=4096)
def _parts(word: str) -> tuple[tuple[int, str], ...]:
    """A compound's words of jieba's own dictionary, with where they start (燃气热水器: 燃气, 热水, 热水器, 水器)."""
    if len(word) < 3:
        return ()
    return tuple(
        (word.find(w), w)
        for w in set(jieba.cut_for_search(word))
        if 2 <= len(w) < len(word) and jieba.dt.FREQ.get(w) and w not in _STOP
    )


def narrower_than(question_words: Sequence[str], text: str) -> str | None:
    """A compound noun of the question (宠物押金) of which the text names a noun (押金) but not another noun it is
    qualified with (宠物): the question asks about a narrower thing than the text speaks of (moving out's 押金)."""
    tags = posseg.dt.word_tag_tab
    for w in question_words:
        if w in text or len(w) < 3:
            continue
        head = any(part in text and tags.get(part, "").startswith("n") for _, part in _parts(w))
        if head and _missing_noun(w, text, _named_parts(w, text)):
            return w
    return None


SHORT_QUESTION_WORDS = 4
# Words for where and who that every apartment question may carry: no object of their own.
PLACE_WORDS = frozenset(
    {"房间", "房子", "家里", "屋里", "屋子", "公寓", "小区", "楼里", "这边", "那边", "问题", "情况", "东西"}
)


def names_no_object(question_words: Sequence[str], text: str) -> bool:
    """True when the question names objects (nouns such as 洗碗机, 墙纸) and the text names none of them: an FAQ pair
    about 清洗滤网 is no answer to 可以自己装洗碗机吗, however alike the two questions are worded."""
    tags = posseg.dt.word_tag_tab
    objects = [
        w
        for w in question_words
        if len(w) >= 2 and w not in PLACE_WORDS and (tags.get(w) or ("n" if w.isascii() else "")).startswith("n")
    ]
    # A short question names what it is about; a tenant's long story names people and places along the way (爸妈,
    # 老家) that an FAQ calls otherwise (亲友): only the short ones are judged.
    short = len(question_words) <= SHORT_QUESTION_WORDS
    return short and bool(objects) and not any(_present(w, text) for w in objects)


MAX_KEY_LINES = 12
# Chosen on the tuning half of eval/queries.jsonl's public questions (benchmarks/chat_answers.py, docs/handover.md).
COVERAGE_WEIGHT = 0.5
RANK_PENALTY = 0.08  # per rank of the passage's SOP in the search: the search's order counts, but not decisively
# ... and how far behind the first SOP it is: 续租怎么办理 found the renewal SOP at 2.84 and the moving-out one at
# 1.75, whose steps (退租, 合同到期) read closer and were the answer.
GAP_PENALTY = 0.25
STAFF_PENALTY = 0.1  # a section mostly of instructions to staff, beside one that speaks to the tenant
TYPE_WEIGHT = 0.15  # a passage that holds the kind of answer asked for (a time for 几点, an amount for 多少钱)
# ... and the section written to answer that kind (the time limits for 多久能修好) over steps that mention a time.
HOME_WEIGHT = 0.15
# ... in the question's first SOP, or one the search scores as high within this share (退房押金多久能退回来 found the
# pet policy at 2.50 and the moving-out procedure at 2.44: either may be what the question is about).
HOME_SHARE = 0.95
TYPE_MIN_TOPIC = 0.5  # ... when it names this much of what the question is about (地铁末班车几点 is not 几点开门)
# An FAQ pair answers its own question: the share of that question's words (IDF-weighted) the tenant's question does
# not name counts against it (补办门禁卡要收费吗 is about the fee, 门禁卡丢了怎么补 does not ask for one).
FAQ_FOCUS_WEIGHT = 0.3


def _covered(ws: Sequence[str], idf: dict[str, float], text: str) -> float:
    total = sum(idf[w] for w in ws)
    return sum(idf[w] * _present(w, text) for w in ws) / total if total else 0.0


def _subject_lines(topic: Sequence[str], idf: dict[str, float], body: str) -> str | None:
    """The lines of a passage that name most of what the question is about (None: one line, or none names any)."""
    lines = [line for line in body.split("\n") if line.strip()]
    if len(lines) < 2 or not topic:
        return None
    covered = [_covered(topic, idf, normalize(line)) for line in lines]
    best = max(covered)
    return "\n".join(line for line, c in zip(lines, covered, strict=True) if c >= best - 1e-9) if best > 0 else None


def _idf(ws: Sequence[str], texts: Sequence[str]) -> dict[str, float]:
    """IDF over the candidate passages: a word every passage has (the topic) says less about which one answers."""
    return {w: math.log(1 + len(texts) / (1 + sum(_present(w, t) >= 1.0 for t in texts))) + 0.2 for w in ws}


def _composed(word: str, parts: frozenset[str]) -> bool:
    """Whether the word is two or more of the given words run together (开发票 of 开 + 发票)."""
    ends = {0: 0}  # position -> fewest words that reach it
    for i in range(len(word)):
        if i not in ends:
            continue
        for part in parts:
            if part and word.startswith(part, i) and len(part) < len(word):
                ends[i + len(part)] = min(ends.get(i + len(part), 99), ends[i] + 1)
    return ends.get(len(word), 0) >= 2


def named(key_words: Sequence[str], texts: Sequence[str], question: str) -> float:
    """Share of an FAQ question's words (weighted by IDF over the candidate passages) that the tenant's question
    names: 1 when it names them all. A word the tenant's question says in its own words, cut apart (房租可以开发票吗
    of 房租发票怎么开: 开 … 发票), is named."""
    ws = list(dict.fromkeys(key_words))
    if not ws:
        return 1.0
    asked = frozenset(words(question))
    kinds = {t.name for t in answer_types.asked(question)}
    idf = _idf(ws, texts)
    total = sum(idf[w] for w in ws)
    return sum(idf[w] * _named_word(w, asked, kinds, question) for w in ws) / total


def _named_word(word: str, asked: frozenset[str], kinds: set[str], question: str) -> float:
    """How far the tenant's question names one word of an FAQ pair's question. A word asking the kind of answer
    the tenant asks for (收费 of 维修要收费吗 when the tenant asks 要收钱吗) is named; so, in part, a two-character
    verb whose character the tenant says alone as a verb (修 of 修要收钱吗 for 维修)."""
    if _composed(word, asked) or kinds & {t.name for t in answer_types.asked(word)}:
        return 1.0
    present = _present(word, question)
    if present or len(word) != 2:
        return present
    verbs = posseg.dt.word_tag_tab
    return 0.6 * any(c in asked and verbs.get(c) == "v" for c in word)  # 前 of 到期前 names no 提前


_PARTS = re.compile(r"[？?；;]+")


def focus_words(faq_question: str, question: str) -> list[str]:
    """The words of an FAQ pair's own question that a tenant's question must name for the pair to be about it. Of a
    question in several parts (宠物押金多少钱？能退吗？), a part asking for a kind of answer the tenant does not ask for
    (a sum) is not asked: its own words need not be named (宠物押金能退吗 asks the second part)."""
    parts = [part for part in _PARTS.split(faq_question) if part.strip()]
    if len(parts) < 2:
        return words(faq_question)
    wanted = {t.name for t in answer_types.asked(question)}
    kept = [part for part in parts if {t.name for t in answer_types.asked(part)} <= wanted]
    if not kept or len(kept) == len(parts):
        return words(faq_question)
    return words("，".join(kept))


def document_texts(candidates: Sequence[Passage], sop_id: str) -> tuple[str, str]:
    """What the tenant may read of one SOP (title, tags, public passages), and of the others among the candidates."""
    parts: dict[bool, list[str]] = {True: [], False: []}
    for c in candidates:
        parts[c.sop_id == sop_id].append(f"{c.subject}\n{c.title}\n{c.heading}\n{c.body}")
    return "\n".join(parts[True]), "\n".join(parts[False])


def document_reader(
    candidates: Sequence[Passage], others: Sequence[str], get_sop: Callable[[str, Audience], Sop | None]
) -> Callable[[str], tuple[str, str]]:
    """A SOP id → `document_texts` over the candidates and the `others` SOPs' public passages, read when first asked
    (only a yes or no FAQ pair whose question names a word the tenant's does not needs them) and then kept."""

    @functools.cache
    def read(sop_id: str) -> tuple[str, str]:
        more = [c for i in others if (sop := get_sop(i, "public")) is not None for c in passages(sop, 0, 1.0)]
        return document_texts([*candidates, *more], sop_id)

    return read


def key_line(line: str) -> str:
    """A section's line as it is compared with a question (list markers and numbering off, at most 80 characters)."""
    return line.strip(" -*>0123456789.、")[:80]


def key_texts(p: Passage) -> list[str]:
    """What a question is compared with: an FAQ pair's question; a section's heading and each of its lines (the
    line that matches tells which section answers, as the search's sentence vectors do)."""
    if p.kind == "qa":
        return [p.heading]
    lines = [key_line(line) for line in p.body.splitlines()]
    return [p.heading, *[line for line in lines if len(line) >= 4][:MAX_KEY_LINES]]


def public_key_texts(sops: Iterable[Sop]) -> Iterator[str]:
    """The key texts of every public passage of `sops` (what a question may be compared with), in order."""
    for sop in sops:
        for p in passages(sop, 0):
            yield from key_texts(p)


def _key_similarities(qvec: np.ndarray, candidates: Sequence[Passage], keys: KeyEmbeddings) -> list[float]:
    """Each passage's best cosine of the question with its heading or FAQ question and its lines."""
    per_passage = [key_texts(p) for p in candidates]
    flat = [t for texts_of in per_passage for t in texts_of]
    all_sims = keys.get(flat) @ (qvec / (np.linalg.norm(qvec) or 1.0))
    sims, start = [], 0
    for texts_of in per_passage:
        sims.append(float(all_sims[start : start + len(texts_of)].max()))
        start += len(texts_of)
    return sims


def score_passages(
    question: str,
    qvec: np.ndarray,
    candidates: Sequence[Passage],
    keys: KeyEmbeddings,
    type_weight: float = TYPE_WEIGHT,
    faq_focus: float = FAQ_FOCUS_WEIGHT,
    home_weight: float = HOME_WEIGHT,
    gap_penalty: float = GAP_PENALTY,
    meant: str = "",
) -> list[Scored]:
    """Every candidate scored, best first (`type_weight` 0: without the kind of answer, as the first version;
    `faq_focus` 0: FAQ pairs not weighed by what their own question asks, as before)."""
    if not candidates:
        return []
    qwords = list(dict.fromkeys(words(question))) or [question]
    texts = [normalize(f"{p.heading}\n{p.body}") for p in candidates]
    idf = _idf(qwords, texts)
    sims = _key_similarities(qvec, candidates, keys)
    kinds = answer_types.asked(question)
    duration = answer_types.asks_duration(question)
    topic = [w for w in qwords if not answer_types.asked(w)]  # 健身房 开门 of 健身房几点开门, without 几点
    topic_total = sum(idf[w] for w in topic)
    # What a price question prices (read by the price gate only: nothing to do for other questions)
    price = answer_types.asks_price(question)
    subject = list(dict.fromkeys(words(answer_types.priced_subject(question)))) if price else []
    subject_idf = _idf(subject, texts)
    out: list[Scored] = []
    asked_text = normalize(question)
    for p, text, sim in zip(candidates, texts, sims, strict=True):
        # A duration asked (多久能修好) in the first SOP: its time limits answer it, read with its title and tags.
        home = home_weight > 0 and duration and p.share >= HOME_SHARE and p.kind == "time_limit"
        if home:
            text = normalize(f"{p.subject}\n{text}")
        # What is asked (几点, 几台) is never written in the answer: the share of what the question is about, where
        # the passage does not deny it (没有着火 names no fire)
        about = topic if topic_total else qwords
        coverage = _covered(about, idf, _undenied(text, about, asked_text))
        miss = mismatch(qwords, question, p.heading, meant)
        score = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * float(sim) - RANK_PENALTY * p.rank
        # Orders only: a passage far behind in the search still answers when nothing of the first SOPs does.
        behind = gap_penalty * (1 - min(1.0, max(0.0, p.share)))
        on_topic = _covered(topic, idf, text)
        # The kind of answer counts only about the same thing; in the home section, about anything of the SOP.
        if on_topic >= TYPE_MIN_TOPIC or (home and on_topic > 0):
            # A value-kind answer is held in the lines about the question's subject (answer_types.NEAR_KINDS)
            near = _subject_lines(topic, idf, p.body) if kinds and not home else None
            score += type_weight * answer_types.holds(kinds, p.body, near) + home_weight * home
        focus = faq_focus * (1 - named(focus_words(p.heading, question), texts, asked_text)) if p.kind == "qa" else 0.0
        priced = _covered(subject, subject_idf, text) if subject else 1.0
        # Steps written for staff (核实租客身份…在系统中查看) give way to a passage that speaks to the tenant (a trial)
        score -= STAFF_PENALTY * (p.kind != "qa" and speaks_to_staff(p.body))
        order = round(score - focus - behind, 4)
        out.append(Scored(p, round(coverage, 3), round(float(sim), 3), miss, order, round(score, 4), priced))
    if not duration and not any(t.name == "time" for t in kinds):
        # A time-limit section says how long each step takes: it answers no question that asks for no time (门卡丢了:
        # its short labelled lines looked like the question, 补办门卡：当场办结). Scored with the others all the same:
        # the words every passage shares weigh the same whichever answers.
        out = [s for s in out if s.passage.kind != "time_limit"] or out
    return sorted(out, key=lambda s: -s.score)
