"""Practice drills generated from the knowledge base itself (pure functions; the store keeps them).

A drill is a realistic tenant utterance for one SOP, taken from the SOP's example questions, its FAQ questions,
phrasings agents taught the search (kb_service/learning) and searches agents acted on, never the SOP's own title or
id. Its difficulty comes from the search engine: how many other SOPs score close to the right one for that utterance
(near misses), and whether the right one is first at all. The second stage asks for the script line that answers the
utterance (its distractors are lines that do not: near-miss SOPs' lines first) or the steps of a real sequence in
order; kb_service/training/matching.py decides which line answers and which steps form a sequence. A FAQ prompt whose
answer names another SOP (a referral: 「这属于提前退租…」) accepts that SOP too (`accept`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kb_service.models import Sop
from kb_service.text.privacy import mask, masked_something
from kb_service.training import matching

Source = Literal["example", "faq", "learned", "log"]
FROM_USE: tuple[Source, ...] = ("learned", "log")  # utterances agents' use keyed to a SOP, not a trainer
MIN_CHARS = 4
MAX_STEPS = 5  # steps an ordering drill uses (the first ones: the start of a procedure is what a call needs)
OPTIONS = 4  # script lines to choose from
RESTATED = 0.6  # shared character pairs (of the shorter prompt's) that make two prompts of a SOP one question
NEAR = 0.9  # another SOP scoring at least this share of the right one's score is a near miss
_PUNCT = re.compile(r"[\W_]+")
SCRIPT_QUESTION = "这个场景下应该对租客说哪一句？"
REPLY_QUESTION = "租客这样问，应该怎么回答？"


@dataclass(frozen=True)
class Candidate:
    sop_id: str
    category: str
    prompt: str
    source: Source
    answer: str = ""  # the FAQ answer this prompt is the question of (evidence for the script line), if any


@dataclass(frozen=True)
class Probe:
    """What the search engine made of a candidate: the right SOP's rank (None: not found) and the near misses."""

    rank: int | None
    near: list[str]  # other SOPs scoring close to (or above) the right one, best first
    others: list[str]  # every other SOP the search returned, best first

    @property
    def difficulty(self) -> int:
        """0 = the right SOP is first by a clear margin; +1 per near miss; +2 when it is not first; 5 if not found."""
        if self.rank is None:
            return 5
        return min(5, len(self.near) + (2 if self.rank > 1 else 0))


@dataclass
class Drill:
    candidate: Candidate
    difficulty: int
    followup: dict[str, Any] = field(default_factory=dict)  # kind, what the trainee sees, and the answer


def key(text: str) -> str:
    """The text without punctuation, lower case: what two utterances are compared by."""
    return _PUNCT.sub("", text).lower()


# An agent's search that speaks of the tenant in the third person: a note, not what a tenant says
_ABOUT_TENANT = re.compile(r"租客|租户|住户|业主|客户|房客|对方")


def usable(prompt: str, sop: Sop) -> bool:
    """Long enough, and gives away neither the SOP's title nor its id."""
    said = key(prompt)
    title = key(sop.title)
    return (
        len(said) >= MIN_CHARS
        and said != title
        and title not in said
        and sop.meta.id.lower() not in prompt.lower()
        and key(sop.meta.id) not in said
    )


def candidates(sops: Sequence[Sop], extra: Mapping[str, Sequence[tuple[str, Source]]]) -> list[Candidate]:
    """Every usable utterance per SOP, once each (personal data masked)."""
    out: list[Candidate] = []
    for sop in sops:
        seen: set[str] = set()
        found: list[tuple[str, Source]] = [(e, "example") for e in sop.meta.examples]
        found += [(q.question, "faq") for s in sop.sections for q in s.qa]
        found += list(extra.get(sop.meta.id, ()))
        for text, source in found:
            prompt = mask(text.strip())
            # Not a tenant's words with their name or number taken out: 「租客[姓名]电话[手机号]说…」 read as a
            # drill (a trainer's trial), and the person's data is no practice material
            # Nor an agent's note about the tenant from use (门锁坏了租客要住酒店 was asked as a tenant's words)
            if source in ("log", "learned") and _ABOUT_TENANT.search(prompt):
                continue
            if prompt and key(prompt) not in seen and usable(prompt, sop) and not masked_something(prompt):
                seen.add(key(prompt))
                answer = matching.faq_answer(prompt, sop)
                out.append(Candidate(sop.meta.id, sop.meta.category, prompt, source, answer))
    return out


def probe(expected: str, ranked: Sequence[tuple[str, float]]) -> Probe:
    """Read a search's ranked (sop_id, score) list for the right SOP's rank and its near misses."""
    ids = [s for s, _ in ranked]
    if expected not in ids:
        return Probe(None, ids[:3], ids)
    rank = ids.index(expected) + 1
    right = ranked[rank - 1][1]
    others = [s for s in ids if s != expected]
    near = [s for s, score in ranked if s != expected and (score >= right * NEAR or ids.index(s) < rank - 1)]
    return Probe(rank, near, others)


def level(recent: Sequence[bool]) -> int:
    """A trainee's level from their recent answers: 0 beginner, 1 improving, 2 strong (harder drills)."""
    if len(recent) < 5:
        return 0
    accuracy = sum(recent) / len(recent)
    return 2 if accuracy >= 0.85 else 1 if accuracy >= 0.6 else 0


def choose(
    scored: Sequence[tuple[Candidate, Probe]],
    size: int,
    lvl: int,
    rng: random.Random,
    avoid: Collection[str] = (),
    weaker: Sequence[Collection[str]] = (),
) -> list[Drill]:
    """`size` drills near the trainee's level, one per SOP where possible, easiest first (difficulty rises). Prompts
    in `avoid` (asked in the person's latest exams) come only when the others do not fill the round; before them,
    tier by tier, those in `weaker` (an exam's: the console's suggestions, then prompts without a second stage)."""
    target = (0, 1.5, 3)[lvl]
    pool = list(scored)
    rng.shuffle(pool)
    pool.sort(key=lambda cp: abs(cp[1].difficulty - target))

    def tier_of(prompt: str) -> int:
        return len(weaker) + 1 if prompt in avoid else next((i + 1 for i, w in enumerate(weaker) if prompt in w), 0)

    tiers = [[cp for cp in pool if tier_of(cp[0].prompt) == t] for t in range(len(weaker) + 2)]
    picked: list[tuple[Candidate, Probe]] = []
    for tier in tiers:  # in each tier one per SOP first, then repeats if the pool is small
        used = {cp[0].sop_id for cp in picked}
        for cp in tier:
            if cp[0].sop_id not in used and len(picked) < size:
                picked.append(cp)
                used.add(cp[0].sop_id)
        for cp in tier:
            if len(picked) >= size:
                break
            if cp not in picked and not _restates(cp[0], picked):
                picked.append(cp)
    for cp in pool:  # a small pool: restatements last
        if len(picked) >= size:
            break
        if cp not in picked:
            picked.append(cp)
    picked.sort(key=lambda cp: cp[1].difficulty)
    return [Drill(c, p.difficulty) for c, p in picked]


def _restates(c: Candidate, picked: Sequence[tuple[Candidate, Probe]]) -> bool:
    """Whether the prompt says what one already picked for its SOP says (发票抬头开错了怎么重开 and 发票抬头开错了能重开
    吗: a trial's exam of six asked both): most of the shorter one's character pairs are the other's."""
    mine = matching.bigrams(c.prompt)
    for other, _ in picked:
        theirs = matching.bigrams(other.prompt) if other.sop_id == c.sop_id else set()
        if mine and theirs and len(mine & theirs) >= RESTATED * min(len(mine), len(theirs)):
            return True
    return False


def _order_stage(steps: list[str], rng: random.Random) -> dict[str, Any]:
    order = list(range(len(steps)))
    while order == sorted(order):
        rng.shuffle(order)
    # shown[i] = steps[order[i]]; the answer lists the shown indices in the right order
    answer = sorted(range(len(order)), key=lambda i: order[i])
    return {"kind": "order", "steps": [steps[i] for i in order], "answer": answer}


def _script_stage(
    drill: Drill, sop: Sop, others: Sequence[Sop], index: matching.LineIndex, rng: random.Random
) -> dict[str, Any]:
    """The line that answers the prompt and up to three lines that do not; {} when no line clearly answers it."""
    c = drill.candidate
    scripts = [line for s in sop.sections for line in s.scripts]
    found = index.answering(c.prompt, c.answer, scripts)
    if found is None:
        return {}
    right, best = found
    if c.answer and index.cosine(c.answer, right) < matching.MIN_ANSWER_MATCH:
        return {}  # the line speaks of the question's words, not of its written answer: the answer is asked instead
    distractors: list[str] = []
    for other in [sop, *others]:  # the SOP's own lines about something else, then near misses, then the rest
        lines = [line for s in other.sections for line in s.scripts if line != right and line not in distractors]
        unrelated = [ln for ln in lines if index.similarity(c.prompt, c.answer, ln) <= best * matching.UNRELATED]
        if other is sop:  # its own lines share no word with the prompt (a trial: 门禁卡丢了怎么补办 → 「…就可以补办」)
            unrelated = [ln for ln in unrelated if index.cosine(c.prompt, ln) == 0]
            distractors += rng.sample(unrelated, min(1, len(unrelated)))
        elif unrelated:
            distractors.append(rng.choice(unrelated))
        if len(distractors) >= OPTIONS - 1:
            break
    if not distractors:
        return {}
    options = [right, *distractors[: OPTIONS - 1]]
    rng.shuffle(options)
    return {"kind": "script", "options": options, "answer": options.index(right)}


def _reply_stage(
    drill: Drill, sop: Sop, others: Sequence[Sop], index: matching.LineIndex, rng: random.Random
) -> dict[str, Any]:
    """For a FAQ question: its written answer among the answers of questions unlike it (the SOP's own other FAQ
    first, then near misses'); {} when there are none."""
    c = drill.candidate
    distractors: list[str] = []
    for other in [sop, *others]:
        answers = [
            q.answer
            for s in other.sections
            for q in s.qa
            if q.answer not in (c.answer, "", *distractors) and index.cosine(c.prompt, q.question) <= matching.UNRELATED
        ]
        if answers:
            distractors.append(rng.choice(answers))
        if len(distractors) >= OPTIONS - 1:
            break
    if not distractors:
        return {}
    options = [c.answer, *distractors]
    rng.shuffle(options)
    return {"kind": "script", "options": options, "answer": options.index(c.answer), "question": REPLY_QUESTION}


def followup(
    drill: Drill,
    position: int,
    sop: Sop,
    near: Sequence[Sop],
    rng: random.Random,
    rest: Sequence[Sop],
    index: matching.LineIndex,
    ordered: bool = False,
) -> dict[str, Any]:
    """The second stage: the script line that answers the prompt, or a real sequence of steps to order; odd positions
    prefer the order, even ones the script line; either falls back on the other, and a drill with neither has none.
    `ordered`: the round already asked to order this SOP's steps, so the script line comes first (a trial was asked
    the same ordering twice in one round).
    A FAQ question asks for one fact, not for a procedure: its second stage is the line that answers it, else its
    written answer among others; never an ordering (a trial: 「灭蟑药对猫狗有影响吗？」 asked to order the booking
    steps of pest control)."""
    others = [*near, *rng.sample(list(rest), len(rest))]
    script = _script_stage(drill, sop, others, index, rng)
    if drill.candidate.answer:
        return script or _reply_stage(drill, sop, others, index, rng)
    steps = matching.sequence(sop, MAX_STEPS, drill.candidate.prompt, index)
    if (position % 2 == 1 or not script) and steps and not (ordered and script):
        return _order_stage(steps, rng)
    return script


def decoy(
    real: Mapping[str, Any],
    picked: Sop,
    prompt: str,
    index: matching.LineIndex,
    rng: random.Random,
    others: Sequence[Sop] = (),
) -> dict[str, Any]:
    """An exam's second stage after a wrong pick, built from the SOP picked as a real one is from the right SOP: its
    steps to order, or its line (or FAQ answer) nearest the prompt among lines of other SOPs; none of it counts as
    right. A second stage shown after right picks only told the taker which picks were right, and one of the picked
    SOP's lines only, none fitting, still did (two trials). {} when the picked SOP has nothing to ask."""
    reply = real.get("question") == REPLY_QUESTION
    kinds = ("order", "script") if real.get("kind") == "order" else ("script", "order")
    for kind in kinds:
        if kind == "order" and not reply:
            steps = matching.sequence(picked, MAX_STEPS, prompt, index)
            if len(steps) >= matching.MIN_RUN:
                return {**_order_stage(steps, rng), "answer": None}
        elif kind == "script":
            own = _decoy_lines(picked, reply)
            if not own:
                continue
            nearest = max(own, key=lambda line: (index.cosine(prompt, line), -own.index(line)))
            pool = [ln for o in others for ln in _decoy_lines(o, reply) if index.cosine(prompt, ln) == 0]
            options = [nearest, *rng.sample(pool, min(OPTIONS - 1, len(pool)))]
            if len(options) < 2:
                continue
            rng.shuffle(options)
            return {"kind": "script", "options": options, "answer": None,
                    "question": REPLY_QUESTION if reply else SCRIPT_QUESTION}  # fmt: skip
    return {}


def _decoy_lines(sop: Sop, reply: bool) -> list[str]:
    answers = [q.answer for s in sop.sections for q in s.qa if q.answer]
    lines = [line for s in sop.sections for line in s.scripts]
    return list(dict.fromkeys((answers or lines) if reply else (lines or answers)))


def public_followup(stage: Mapping[str, Any]) -> dict[str, Any] | None:
    """The second stage as the trainee sees it (without the answer)."""
    if not stage.get("kind"):
        return None
    if stage["kind"] == "order":
        return {"kind": "order", "question": "请按正确顺序排列处理步骤", "steps": stage["steps"]}
    return {"kind": "script", "question": stage.get("question", SCRIPT_QUESTION), "options": stage["options"]}


def right_stage(stage: dict[str, Any], chosen: Any = None) -> dict[str, Any]:
    """A wrong second stage: the right line or order (a trial's review said only 「话术或步骤顺序答错」), beside what
    was chosen when kept (a training lead had nothing to coach from)."""
    if stage.get("kind") == "script":
        line = stage["options"][chosen] if isinstance(chosen, int) and 0 <= chosen < len(stage["options"]) else None
        return {"right_line": stage["options"][stage["answer"]], "chosen_line": line}
    if stage.get("kind") == "order":
        steps = stage["steps"]
        whole = isinstance(chosen, list) and sorted(chosen) == list(range(len(steps)))
        given = [steps[i] for i in chosen] if whole else None
        return {"right_order": [steps[i] for i in stage["answer"]], "chosen_order": given}
    return {}


_SCENE_SKIP = re.compile(r"^(?:租客常说|租客会说|常见说法|不包括|不适用)|见[^，。；]{2,30}(?:流程|SOP)")
_SAYINGS = re.compile(r"(?:租客常说|常见问题有|常见的问法有)")  # what tenants say, within the scene's line
SCENE_CHARS = 90


def scene(sop: Sop) -> str | None:
    """What a SOP is for, in its own words: the first line of its 适用场景 that is neither what tenants say nor a
    pointer to another SOP (after a wrong pick, a trial's practice said only the right title: two scenes side by side
    show the difference to learn)."""
    for section in sop.sections:
        if section.kind != "scenario":
            continue
        for raw in section.text.splitlines():
            line = re.sub(r"^\s*(?:[-*•]|\d+[.、)])\s*", "", raw).strip()
            line = _SAYINGS.split(line)[0].rstrip("：:，, ") if _SAYINGS.search(line[1:]) else line
            if line and not line.startswith("#") and not _SCENE_SKIP.search(line):
                return line if len(line) <= SCENE_CHARS else line[: SCENE_CHARS - 1] + "…"
    return None
