"""Extractive answers for the tenant chat widget, from public content only, with a hand-over when no passage answers.

The answer is the passage that answers the question (kb_service/search/passages.py), chosen among the public
passages of the search's first SOPs; the search's ranking is not changed. A question is urgent when the tenant's words
carry a danger signal (kb_service/text/danger.py), or when the SOP that best matches it among all documents by content
(staff-only ones included, whose text the tenant never sees) is urgent (`priority: urgent`, or an urgent category).
An urgent answer shows the emergency number and a public safety instruction (`safety_instruction`) and hands over.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from kb_service.models import Sop
from kb_service.search import answer_types, pointers, question_parts, smalltalk
from kb_service.search.catalog import every_sop
from kb_service.search.chat_models import ChatAnswer, Match, Priority
from kb_service.search.chat_wording import (
    APOLOGY,
    COMPLAINT_MESSAGE,
    HANDOFF_MESSAGE,
    HANDOFF_PLACED,
    MAX_FULL_CHARS,
    citation,
    passage_body,
    source,
    urgent_message,
)
from kb_service.search.confidence import Confidence
from kb_service.search.excerpts import excerpt
from kb_service.search.key_embeddings import KeyEmbeddings
from kb_service.search.listed import listed_as_example
from kb_service.search.objects import meant_words
from kb_service.search.passages import (
    FAQ_FOCUS_WEIGHT,
    TYPE_WEIGHT,
    Scored,
    document_reader,
    narrower_than,
    passages,
    public_key_texts,
    score_passages,
    words,
)
from kb_service.search.qualified import qualified_everywhere
from kb_service.search.searcher import Searcher, SopHit
from kb_service.search.situations import handled_by_staff, situation, staff_situation
from kb_service.search.tenant_wording import addressed_to_tenant, speaks_to_staff
from kb_service.search.vague import names_nothing
from kb_service.settings import Settings
from kb_service.text import tone
from kb_service.text.danger import DangerSignals
from kb_service.text.normalize import normalize

CANDIDATE_SOPS = 3
# The chat ranks its candidates from the first 24 fused chunks of the public search (three SOPs' worth, as before
# session 48); ranked from 40 like agent search, no tuning set moved and the blind corpus lost 2 of 52 questions.
CANDIDATE_CHUNKS = 24
OVERALL_SOPS = 5  # how many documents of all (staff-only included) decide whether the question is a staff topic
# ... and how far below the staff document the answering one may score and still answer (with a weak match). Chosen
# on the new-user trial's questions and the tuning half (docs/handover.md): the fire-escape text scores 0.65 of the
# lift entrapment's procedure, the public repair guide 0.7 and more of the staff repair procedures it answers.
STAFF_TOPIC_RATIO = 0.7
# How well a public passage must answer an emergency question, read with the matched procedure's title, to be shown
# as its safety instruction (below the everyday answer threshold: an instruction about the right danger helps).
URGENT_MIN_SCORE = 0.3
URGENT_FALLBACK_SCORE = 0.15  # the matched public emergency procedure's own best passage (see safety_instruction)
# A question that asks for a time or a sum (押金什么时候退) is answered by a public passage that gives one and answers
# it this well even when a staff-only procedure is the question's first document: the public moving-out rules say
# when the deposit comes back, the staff deposit-refund procedure only says how agents process it.
TYPED_OVERRIDE = 0.8
# A question with a danger signal whose best match is an everyday document (the public safety guide, the pipe repair)
# is recorded under the first urgent procedure among this many documents of all, when there is one.
URGENT_AMONG = 3
# When the question's first document of all is public and a confident match (the calibrated confidence), its best
# passage answers at this lower bar: the document is settled, only which part of it remains (楼道好脏谁来打扫 names
# none of the cleaning SOP's words, 公共区域 保洁). Chosen on the tuning half (benchmarks/chat_answers.py).
CONFIDENT_MIN_SCORE = 0.25
CONFIDENT_MATCH = 0.7
# A weak match still answers from the first document when the search puts it clearly first (this share of its score
# ahead of the second) and one of its passages names most of what the question is about and answers it well: a
# company's terse documents score low cosines for its simple questions (驿站几点关门？ 0.38, 保洁怎么收费？ 0.28 against
# the 0.42 line) while 我的那个申请呢 (0.39) leads its second document by 1 %. Chosen on eval/dev (docs/benchmarks.md).
CLEAR_LEAD = 0.1
CLEAR_COVERAGE = 0.5
CLEAR_STRENGTH = 0.45


@dataclass
class ChatResponder:
    """Answers with the passage that answers the question; `min_answer_score` was chosen by measurement
    (benchmarks/chat_answers.py, docs/handover.md). Which SOP of all the question is about, and whether that is a
    staff topic, is decided by the search's calibrated confidence (kb_service/search/confidence.py)."""

    searcher: Searcher
    confidence: Confidence = field(default_factory=Confidence)
    min_answer_score: float = 0.4
    urgent_categories: Collection[str] = ("紧急事件",)
    emergency_phone: str = "119 / 120 / 110"
    staff_topic_check: bool = True  # False answers whatever staff documents match (the first version)
    type_weight: float = TYPE_WEIGHT  # 0 ignores the kind of answer a question asks for (the first version)
    faq_focus: float = FAQ_FOCUS_WEIGHT  # 0 ignores what an FAQ pair's own question asks (before session 13)
    # None: only the best-matching SOP decides urgency, and an urgent answer shows only an everyday answer's passage
    # (before session 14)
    danger: DangerSignals | None = field(default_factory=DangerSignals.builtin)
    excerpts: bool = True  # False: a long answering section is shown whole (before session 14)
    confident_min_score: float | None = CONFIDENT_MIN_SCORE  # None: one bar whatever the search's confidence
    confident_match: float = CONFIDENT_MATCH
    # True: a public document the search calls a weak match (匹配度低) gives no answer (嗯嗯对对对, 后天要降温吗); False
    # answers from any document a passage fits (before session 15). Compared with the calibrated confidence since
    # session 25 (before: the raw sentence cosine; hard out-of-scope questions answered 11 -> 10 of 120)
    weak_floor: bool = True
    clear_first: bool = True  # False: a weak match never answers (before session 26)
    narrower_check: bool = True  # False: 宠物押金 is answered by a passage about any 押金 (before session 26)
    smalltalk: bool = True  # False: greetings and thanks are questions like any other (handed over, before session 15)
    # True: a question asking for a sum (多少钱, 怎么收费) is answered only by a passage naming one, and not by one
    # ranked below a passage that does (before session 17: 保洁多少钱一次 got 怎么预约保洁？, 快递丢了赔多少钱 steps)
    price_gate: bool = True
    # True: ... and never by a passage naming none, wherever it ranks (停车月卡多少钱 got 停车月卡怎么办？, ranked
    # above the price list); False: only not by one ranked below a passage naming one (before session 19)
    price_strict: bool = True
    # A question for when is answered only by a passage that gives a time
    time_gate: bool = True
    # None: a staff topic is handed over whatever a public passage gives (before session 19)
    typed_override: float | None = TYPED_OVERRIDE
    parts: bool = True  # False: a message of several questions is answered as one (before session 50)
    # False: cautions written for staff (任何员工不得…, 核实身份后才可…) may answer (before session 50); steps for
    # staff still may, as they hold what the tenant does (引导在App“生活缴费-电费充值”操作)
    staff_notes_skipped: bool = True
    _keys: KeyEmbeddings | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, searcher: Searcher, settings: Settings, confidence: Confidence | None = None
    ) -> ChatResponder:
        return cls(
            searcher,
            confidence or Confidence(),
            settings.chat_min_answer_score,
            settings.urgent_category_set,
            settings.emergency_phone,
        )

    def _public(self) -> dict[str, Any]:
        """The public search the chat answers from: its candidates and the chunks they are ranked from."""
        config = replace(self.searcher.config, ranked_chunks=CANDIDATE_CHUNKS, cases=False)  # see schedules.py
        return {"top_k": CANDIDATE_SOPS, "audience": "public", "config": config}

    def answer(self, question: str, query_vector: np.ndarray | None = None) -> tuple[ChatAnswer, list[SopHit]]:
        """`query_vector`: the question's embedding when the caller computed it already (`Searcher.embed_queries`).
        A message of small talk only (你好, 好的谢谢) gets a short reply, no source and no hand-over. A message of two
        or three questions gets each one's answer when every one is answered (kb_service/search/question_parts.py)."""
        whole, hits = self._answer(question, query_vector)
        pieces = question_parts.split(smalltalk.question(question)) if self.parts and not whole.urgent else []
        answers = [self._answer(piece)[0] for piece in pieces]
        return (question_parts.combine(pieces, answers) if pieces else None) or whole, hits

    def _answer(self, question: str, query_vector: np.ndarray | None = None) -> tuple[ChatAnswer, list[SopHit]]:
        if self.smalltalk:
            asked = smalltalk.question(question)  # 你好，请问押金什么时候退: the question without its courtesy
            if (small := smalltalk.reply(asked)) is not None:
                return ChatAnswer(answer=small, sources=[], handoff=False, confidence=0.0), []
            query_vector = query_vector if asked == question else None
            question = asked
        qvec = self.searcher.embed_queries([question])[0] if query_vector is None else query_vector
        resp = self.searcher.search(question, **self._public(), with_confidence=True, query_vector=qvec)
        hits = resp.results
        confidence = hits[0].confidence if hits and hits[0].confidence is not None else 0.0
        overall = self.overall(question, qvec)
        best = None
        if hits:  # the calibrated confidence of the public documents, as the console's 匹配较弱 reads it
            self.confidence.annotate(resp, self.searcher.catalog, "public")
        weak = not hits or (hits[0].match_confidence or 0.0) < self.confidence.threshold
        if names_nothing(words(question)):  # 我的那个申请呢: the tenant's own business, a person looks it up
            best = None
        elif not self.weak_floor or not weak:  # no answer from a weak match ...
            best = self.best_passage(question, qvec, hits) or self.confident_passage(question, qvec, hits, overall)
            if best is None and listed_as_example(question, self.searcher.get_sop(hits[0].sop_id, "agent")):
                best = self._best(question, qvec, hits[:1], 0.0)  # the trainer listed it: a part of the SOP answers
        elif self.clear_first:  # ... unless a passage of a clear first document says what is asked
            best = self.clear_passage(question, qvec, hits)
        if best is not None and self.staff_topic(best.passage.sop_id, overall) and not self._gives(question, best):
            best = None  # the question is about what only staff documents cover: a person answers it
        if best is not None and staff_situation(
            question, self.searcher.get_sop(best.passage.sop_id, "public"), overall
        ):
            best = None  # 转租给朋友押金还退吗: the sublet's rule is a staff-only document's (a trial)
        if best is not None and handled_by_staff(
            question, self.searcher.get_sop(best.passage.sop_id, "public"), passage_body(best)
        ):
            best = None  # 房租重复扣款怎么办: the document passes that situation to finance
        match = self._match(overall, question)
        complaint = tone.complains(question)
        out = ChatAnswer(
            answer=COMPLAINT_MESSAGE if complaint else HANDOFF_PLACED if match.sop_id else HANDOFF_MESSAGE,
            complaint=complaint,
            sources=[source(best)] if best else [],
            handoff=best is None,
            confidence=round(confidence, 3),
            priority=match.priority,
            handover_fields=match.handover_fields,
        )
        if match.priority == "urgent":
            return self._urgent(question, match, best, out), hits
        if best is not None:
            lines = excerpt(question, qvec, best.passage, self._key_embeddings()) if self.excerpts else None
            apology = f"{APOLOGY}\n" if complaint else ""
            said = lines or passage_body(best)
            said = answer_types.unasked_yes(question, said) if best.passage.kind == "qa" and not lines else said
            out.answer = f"{apology}{addressed_to_tenant(said)}\n\n{citation(best)}"
            out.full_text = addressed_to_tenant(passage_body(best, MAX_FULL_CHARS)) if lines else None
        return out, hits

    def _urgent(self, question: str, match: Match, best: Scored | None, out: ChatAnswer) -> ChatAnswer:
        """The emergency number and the safety instruction first, then a hand-over with high priority. The answer is
        the instruction only when it speaks of this danger (有人在撬我家的门 got 火灾逃生)."""
        fits = self._about_danger(question)
        best = best if best is None or fits is None or fits(best) else None
        safety = best or (self.safety_instruction(question, match) if self.danger is not None else None)
        body = passage_body(safety) if safety else ""
        if safety is not None and self.danger is not None:  # this danger's line of a list first (电梯困人：…)
            body = self.danger.lines_first(body, sorted({s.kind for s in self.danger.found(question)}))
        instruction = f"\n\n{addressed_to_tenant(body)}\n\n{citation(safety)}" if safety else ""
        advice = "".join(self.danger.advice(question)) if self.danger is not None else ""
        text = f"紧急电话：{self.emergency_phone}\n{urgent_message(advice)}{instruction}"
        update: dict[str, object] = {
            "answer": text,
            "handoff": True,
            "urgent": True,
            "emergency_phone": self.emergency_phone,
        }
        update["sources"] = [source(safety)] if safety is not None else []  # never a passage not shown
        return out.model_copy(update=update)

    def best_passage(self, question: str, qvec: np.ndarray, hits: list[SopHit]) -> Scored | None:
        """The public passage that answers the question, or None when none scores `min_answer_score`."""
        return self._best(question, qvec, hits, self.min_answer_score)

    def clear_passage(self, question: str, qvec: np.ndarray, hits: list[SopHit]) -> Scored | None:
        """For a weak match: the best passage when it is of the first document, that document leads the second by
        `CLEAR_LEAD` of its score, and the passage names `CLEAR_COVERAGE` of the question's words; None otherwise."""
        if not hits or hits[0].score <= 0:
            return None
        if len(hits) > 1 and (hits[0].score - hits[1].score) / hits[0].score < CLEAR_LEAD:
            return None
        best = self._best(question, qvec, hits, CLEAR_STRENGTH)
        ok = best is not None and best.passage.sop_id == hits[0].sop_id and best.coverage >= CLEAR_COVERAGE
        return best if ok else None

    def confident_passage(
        self, question: str, qvec: np.ndarray, hits: list[SopHit], overall: list[SopHit]
    ) -> Scored | None:
        """The best passage of the question's first document when that is public, first among the public results and
        a confident match, at `confident_min_score`; None otherwise."""
        top = overall[0] if overall else None
        if self.confident_min_score is None or top is None or top.audience != "public":
            return None
        if (top.match_confidence or 0.0) < self.confident_match or not hits or hits[0].sop_id != top.sop_id:
            return None
        fits = self._about_danger(question)
        return self._best(
            question, qvec, hits[:1], self.confident_min_score, fits, first_only=True, others=hits[1:CANDIDATE_SOPS]
        )

    def _best(
        self,
        question: str,
        qvec: np.ndarray,
        hits: list[SopHit],
        min_score: float,
        fits: Callable[[Scored], bool] | None = None,
        first_only: bool = False,
        others: Sequence[SopHit] = (),
    ) -> Scored | None:
        """The passage that answers the question (`others`: more documents among the answers, read only to tell
        whether the question's situation is one of theirs)."""
        candidates = []
        top = hits[0].score if hits and hits[0].score > 0 else 1.0
        for rank, hit in enumerate(hits[:CANDIDATE_SOPS]):
            sop = self.searcher.get_sop(hit.sop_id, "public")
            if sop is not None:  # defence in depth: public searches only return public SOPs, seen as public views
                candidates += passages(sop, rank, hit.score / top)
        qwords = words(question)
        documents = document_reader(candidates, [h.sop_id for h in others], self.searcher.get_sop)
        price = self.price_gate and answer_types.asks_price(question)
        keys, meant = self._key_embeddings(), meant_words(self.searcher.lexical.glossary, question)
        pointed = pointers.reader(f"{question} {meant}", lambda sop_id: self.searcher.get_sop(sop_id, "public"))
        scored = score_passages(question, qvec, candidates, keys, self.type_weight, self.faq_focus, meant=meant)
        sums = [price and answer_types.holds_price(s.passage.body, question) for s in scored]
        if price and not any(sums):
            return None  # 快递丢了赔多少钱: no passage names a sum, so none answers it
        when = self.time_gate and answer_types.asks_when(question)
        priced_above = False
        for s, priced in zip(scored, sums, strict=True):
            if price and not priced and (priced_above or self.price_strict):
                continue  # 怎么预约保洁？ is no answer to 保洁多少钱一次 when the price list ranks above it
            priced_above = priced_above or priced
            if s.strength < min_score or (fits is not None and not fits(s)):
                continue
            if self.staff_notes_skipped and s.passage.kind == "notes" and speaks_to_staff(s.passage.body):
                continue  # 「不得…让租客把房租转到员工个人…」 is no answer to 房租能用信用卡付吗 (a tenant's trial)
            if when and not answer_types.holds_time(s.passage.body, question):
                continue  # 单元门晚上几点锁 is not answered by the keys to hand over at moving in
            if s.passage.kind == "qa" and answer_types.unasked_no(question, s.passage.body, words(s.passage.heading)):
                continue  # 附近哪里能租到储物间 is not answered by 「不可以。走廊和楼梯间是消防通道…」
            if price and priced and s.priced == 0:
                continue  # 遛狗服务多少钱 is not answered by the pet deposit's 每户1,000元: a price of something else
            about = situation(s, question, qwords, partial(documents, s.passage.sop_id), self._synonyms, pointed)
            if about == "another":
                return None
            if about == "elsewhere":
                continue
            asked = [w for w in qwords if s.passage.kind != "qa" or w not in s.passage.heading]
            if (
                s.mismatch is None
                and qualified_everywhere(asked, question, s.passage.body, s.passage.heading) is None
                and not (self.narrower_check and self._narrower(asked, s))
            ):
                return s
            if first_only:
                return None
        return None

    @staticmethod
    def _narrower(asked: list[str], s: Scored) -> bool:
        """宠物押金交了一千，退房的时候怎么退 is not about a moving-out rule's 押金 (nor is its SOP about 宠物)."""
        p = s.passage
        return narrower_than(asked, normalize(f"{p.subject}\n{p.heading}\n{p.body}")) is not None

    def safety_instruction(self, question: str, match: Match) -> Scored | None:
        """For an emergency no public passage answers in the tenant's words (厨房有股煤气味, 电梯卡住了我出不来): the
        public passage of the emergency categories (and the matched SOP's) that answers the question read together
        with the matched procedure's title (燃气泄漏、煤气味应急处理), as an agent would read it. None when no public
        document there has one."""
        sop = self.searcher.get_sop(match.sop_id, "agent") if match.sop_id else None
        asked = f"{question} {sop.title}" if sop is not None else question
        categories = sorted({*self.urgent_categories, *([sop.meta.category] if sop is not None else [])})
        qvec = self.searcher.embed_queries([asked])[0]
        resp = self.searcher.search(asked, **self._public(), categories=categories, query_vector=qvec)
        fits = self._about_danger(question)
        found = self._best(asked, qvec, resp.results, URGENT_MIN_SCORE, fits)
        if found is None and sop is not None and self.searcher.get_sop(sop.meta.id, "public") is not None:
            # The matched emergency procedure is public: its passage that best fits the danger is the instruction,
            # even below the bar (a new customer's gas SOP scored 0.29 for 厨房好大一股煤气味: no source).
            own = [h for h in resp.results if h.sop_id == sop.meta.id]
            found = self._best(asked, qvec, own, URGENT_FALLBACK_SCORE, fits, first_only=True) if own else None
        if found is None and self.danger is not None:
            # A public safety guide for several dangers: its passage that fits this one (房间淹了 got no instruction
            # although the guide's steps for any emergency name the main water valve)
            guides = [h for h in resp.results if self._guide(h.sop_id)]
            found = self._best(asked, qvec, guides, URGENT_FALLBACK_SCORE, fits, first_only=True) if guides else None
        return found

    def _guide(self, sop_id: str) -> bool:
        sop = self.searcher.get_sop(sop_id, "public")
        return sop is not None and self.danger is not None and self.danger.is_guide(sop.title)

    def _about_danger(self, question: str) -> Callable[[Scored], bool] | None:
        """For a question with danger signals: whether a passage mentions what they are about (no gas-safety
        paragraph for a cracking window, no blackout paragraph for a fire). None without signals."""
        danger = self.danger
        kinds = sorted({s.kind for s in danger.found(question)}) if danger is not None else []
        if danger is None or not kinds:
            return None

        def fits(s: Scored) -> bool:
            text = f"{s.passage.heading}\n{s.passage.body}"
            return danger.about(text, kinds) and not danger.for_another(s.passage.heading, s.passage.title, kinds)

        return fits

    def _synonyms(self, word: str) -> list[str]:
        """The glossary's synonyms of a word and the procedure words it stands for (押金: 保证金, 按金 …)."""
        glossary = self.searcher.lexical.glossary
        return [w for e in (*glossary.expansions(word), *glossary.meanings(word)) for w in e.synonyms if w != word]

    def _key_embeddings(self) -> KeyEmbeddings:
        self._keys = self._keys or KeyEmbeddings(self.searcher.embedder)
        return self._keys

    def warm_up(self, budget: int = KeyEmbeddings.WARMED) -> int:
        """Embed the published SOPs' passage keys ahead of the questions (at most `budget`); how many."""
        return self._key_embeddings().warm(public_key_texts(every_sop(self.searcher.catalog)), budget)

    def overall(self, question: str, qvec: np.ndarray) -> list[SopHit]:
        """The first documents of all (staff-only included), with calibrated confidences, by content only."""
        cfg = replace(self.searcher.config, learned=False, cases=False)  # a review's 👍 decided a tenant's hand-over
        resp = self.searcher.search(
            question, top_k=OVERALL_SOPS, audience="agent", with_confidence=True, query_vector=qvec, config=cfg
        )
        self.confidence.annotate(resp, self.searcher.catalog)
        return resp.results

    def match(self, question: str, qvec: np.ndarray) -> Match:
        """The SOP of all the question is about, with its priority (what a case records)."""
        return self._match(self.overall(question, qvec), question)

    def _matched(self, hit: SopHit) -> bool:
        return (hit.match_confidence or 0.0) >= self.confidence.threshold

    def staff_topic(self, answer_sop: str, overall: list[SopHit]) -> bool:
        """True when the question is about what a staff-only document covers and the public document that would
        answer is not: the first of all documents is staff-only and a confident match, while the answering
        document is a weak match well behind it (or not among the first `OVERALL_SOPS`). 马桶堵了 is the staff
        procedure for blocked drains; the utility-bill steps that share a word with it are no answer, while the
        public safety guide's gas paragraph does answer 闻到煤气味怎么办. The staff document only decides *whether*
        to answer; none of its text reaches the tenant."""
        top = overall[0] if overall else None
        if not self.staff_topic_check or top is None or top.audience == "public" or not self._matched(top):
            return False
        answering = next((h for h in overall if h.sop_id == answer_sop), None)
        if answering is None:
            return True
        return not self._matched(answering) and answering.score < STAFF_TOPIC_RATIO * top.score

    def _gives(self, question: str, best: Scored) -> bool:
        """The passage strongly answers the time or sum the question asks for (TYPED_OVERRIDE)."""
        if self.typed_override is None or best.strength < self.typed_override:
            return False
        kinds = [t for t in answer_types.asked(question) if t.name in ("time", "amount")]
        return bool(kinds) and answer_types.holds(kinds, best.passage.body) == 1.0

    def _match(self, overall: list[SopHit], question: str) -> Match:
        """The confidently matched SOP; urgent when it is, or when the question carries a danger signal (水管爆了 is
        matched by the everyday pipe repair, 着火了怎么办 by the public safety guide)."""
        signalled = self.danger is not None and bool(self.danger.found(question))
        top = overall[0] if overall else None
        # An emergency procedure the search put first for the danger in the words is the match, however weak its
        # text matches (a trial's 天花板在往下哗哗灌水 case went out urgent with no SOP)
        first_urgent = signalled and top is not None and top.urgent
        ok = top is not None and (self._matched(top) or first_urgent)
        sop = self.searcher.get_sop(top.sop_id, "agent") if top is not None and ok else None
        if sop is None:
            return Match(None, None, "urgent" if signalled else "normal", [])
        if signalled and not sop.urgent(self.urgent_categories):
            sop = self._urgent_among(overall[1:URGENT_AMONG]) or sop  # the emergency procedure, for the agent
        calm = self.danger is not None and self.danger.calm(question)  # 燃气停了: the gas-leak SOP, but no leak
        urgent = signalled or (sop.urgent(self.urgent_categories) and not calm)
        priority: Priority = "urgent" if urgent else "normal"
        return Match(sop.meta.id, sop.title, priority, list(sop.meta.handover_fields))

    def _urgent_among(self, hits: list[SopHit]) -> Sop | None:
        sops = (self.searcher.get_sop(hit.sop_id, "agent") for hit in hits)
        return next((sop for sop in sops if sop is not None and sop.urgent(self.urgent_categories)), None)
