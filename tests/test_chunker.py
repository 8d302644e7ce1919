"""Chunking invariants on the whole sample corpus."""

from __future__ import annotations

from ingest.chunker import chunk_sop
from ingest.documents import load_corpus
from ingest.parser import parse_file
from kb_service.ids import sop_prefix
from tests.helpers import FIXTURES, SOPS


def test_chunks_never_mix_sections_and_keep_structures_whole() -> None:
    corpus = load_corpus([SOPS], root=SOPS)
    assert len(corpus.sops) >= 40
    for sop in corpus.sops.values():
        sections = {tuple(s.heading_path): s for s in sop.sections}
        for chunk in chunk_sop(sop):
            assert chunk.sop_id == sop.meta.id and chunk.version == sop.meta.version
            assert chunk.title == sop.title and chunk.category == sop.meta.category
            if chunk.section_kind in ("overview", "examples"):
                continue
            owner_path = tuple(chunk.heading_path[:-1]) if chunk.section_kind == "qa" else tuple(chunk.heading_path)
            section = sections[owner_path]
            assert section.line_start <= chunk.line_start <= chunk.line_end <= section.line_end
            assert chunk.audience == section.audience
            for step in chunk.steps:
                assert step in section.steps  # whole steps, from this section only
            for line in chunk.scripts:
                assert line in section.scripts
            if chunk.section_kind == "qa":
                qa = next(q for q in section.qa if q.question == chunk.heading)
                assert chunk.text == f"{qa.question}\n{qa.answer}"


def test_every_step_and_script_line_is_indexed_exactly_once() -> None:
    sop = parse_file(SOPS / "repair" / "repair-leak-ceiling.md").sop
    assert sop is not None
    chunks = chunk_sop(sop)
    assert [s for c in chunks for s in c.steps] == [s for sec in sop.sections if sec.kind == "steps" for s in sec.steps]
    assert [s for c in chunks for s in c.scripts] == [
        s for sec in sop.sections if sec.kind == "script" for s in sec.scripts
    ]


def test_ids_derive_from_content_and_carry_the_sop_prefix() -> None:
    sop = parse_file(FIXTURES / "synonyms.md").sop
    assert sop is not None
    first, again = chunk_sop(sop), chunk_sop(sop)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert all(c.id.replace("-", "").startswith(sop_prefix(sop.meta.id)) for c in first)
    changed = sop.model_copy(deep=True)
    changed.sections[1].text = "改过的内容"
    ids = {c.id for c in chunk_sop(changed)}
    assert ids != {c.id for c in first} and len(ids & {c.id for c in first}) == len(first) - 1


def test_internal_sections_become_staff_only_chunks_in_public_documents() -> None:
    sop = parse_file(FIXTURES / "synonyms.md").sop
    assert sop is not None
    audiences = {tuple(c.heading_path[1:]): c.audience for c in chunk_sop(sop)}
    assert audiences[("内部联系方式",)] == "agent"
    assert audiences[("内部联系方式", "子节")] == "agent"
    assert audiences[("话术",)] == "public"
