"""Document expansion from the colloquial lexicon: a SOP whose title names 晾衣架 also holds what tenants say for it
(挂衣服的杆子), as one chunk of its own that keeps the document's audience, never shows as a section, and is indexed
again when the lexicon changes."""

from __future__ import annotations

from pathlib import Path

from ingest.chunker import EXPANSION_HEADING, chunk_sop, expansion_chunk
from ingest.knowledge_base import KnowledgeBase
from ingest.parser import parse_bytes
from kb_service.embedding.embedders import HashEmbedder
from kb_service.text import glossary
from tests.helpers import hash_settings

DOC = """---
id: repair-drying-rack
title: 升降晾衣架维修
category: 报修
audience: {audience}
{extra}---
# 升降晾衣架维修

## 处理步骤
1. 确认晾衣架型号与故障现象。
2. 派维修师傅上门。
"""


def _sop(audience: str = "public", extra: str = ""):  # type: ignore[no-untyped-def]
    sop = parse_bytes("repair/repair-drying-rack.md", DOC.format(audience=audience, extra=extra).encode()).sop
    assert sop is not None
    return sop


def test_a_title_naming_a_procedure_word_gets_what_tenants_say_for_it() -> None:
    lexicon = glossary.builtin()
    chunk = expansion_chunk(_sop(), lexicon)
    assert chunk is not None and chunk.section_kind == "expansion" and chunk.heading == EXPANSION_HEADING
    assert "挂衣服的杆子" in chunk.text and chunk.audience == "public"
    assert all(any(m in "升降晾衣架维修" for m in means) for _, means in lexicon.named_by("升降晾衣架维修"))
    assert len(chunk.sentences) == len(lexicon.named_by("升降晾衣架维修"))  # one sentence vector per entry
    assert expansion_chunk(_sop("agent"), lexicon).audience == "agent"  # type: ignore[union-attr]
    # Deterministic, and only with a lexicon; a title that names nothing of it gets none.
    assert chunk.id == expansion_chunk(_sop(), lexicon).id  # type: ignore[union-attr]
    assert all(c.section_kind != "expansion" for c in chunk_sop(_sop()))
    assert expansion_chunk(_sop(), glossary.Glossary()) is None


def test_a_trainer_leaves_out_phrasings_that_belong_elsewhere() -> None:
    lexicon = glossary.builtin()
    full = expansion_chunk(_sop(), lexicon)
    assert full is not None and "挂衣服的杆子" in full.text
    # Listing one phrasing (or one procedure word) leaves out its whole entry; "*" leaves out the chunk.
    fewer = expansion_chunk(_sop(extra="lexicon_exclude: [挂衣服的杆子]\n"), lexicon)
    assert fewer is not None and "挂衣服的杆子" not in fewer.text and len(fewer.sentences) < len(full.sentences)
    assert fewer.id != full.id  # a changed expansion is indexed again
    assert expansion_chunk(_sop(extra='lexicon_exclude: ["*"]\n'), lexicon) is None
    bad = parse_bytes("repair/x.md", DOC.format(audience="public", extra="lexicon_exclude: {a: 1}\n").encode())
    assert any("lexicon_exclude 必须是列表" in str(i) for i in bad.issues)


def test_a_lexicon_change_reindexes_the_documents_it_names_and_search_finds_them(
    tmp_path: Path, sops_copy: Path
) -> None:
    kb = KnowledgeBase.from_settings(hash_settings(tmp_path, sops_copy), embedder=HashEmbedder())
    kb.ingest()
    assert kb.ingest().embedded_chunks == 0  # expansion ids are recorded: nothing changed, nothing re-embedded
    kb.close()
    # A company's own lexicon entry naming a word of one title (噪音扰民投诉处理) and of no other.
    (sops_copy / "glossary.yaml").write_text(
        "entries:\n  - {says: [咚咚咚蹦迪到半夜, 楼上蹦迪], means: [噪音扰民]}\n", encoding="utf-8"
    )
    kb = KnowledgeBase.from_settings(hash_settings(tmp_path, sops_copy), embedder=HashEmbedder())
    report = kb.ingest()
    assert report.updated == ["noise-complaint"] and report.added == [] and report.removed == []
    hits = kb.searcher.search("楼上蹦迪", top_k=3, audience="agent").results
    assert hits and hits[0].sop_id == "noise-complaint"
    assert all(s.heading != EXPANSION_HEADING for h in hits for s in h.sections)  # never shown as a section
    kb.close()


def test_the_preview_names_each_lexicon_entry_and_an_exclusion_by_its_procedure_word_removes_the_group() -> None:
    """A new customer read the chunk as a dump of phrasings and could not tell which entries to exclude: the preview
    gives one line per entry, named by its procedure words, and excluding one of those words removes the group."""
    from ingest.preview import preview_bytes

    raw = DOC.format(audience="public", extra="").encode()
    [chunk] = [c for c in preview_bytes("repair/repair-drying-rack.md", raw, None).chunks if c.kind == "expansion"]
    lines = chunk.text.splitlines()
    assert any(line.startswith("晾衣架：") and "挂衣服的杆子" in line for line in lines)
    assert any(line.startswith("升降·故障：") for line in lines) and "lexicon_exclude" in lines[-1]
    excluded = DOC.format(audience="public", extra="lexicon_exclude: [升降]\n").encode()
    [chunk] = [c for c in preview_bytes("repair/repair-drying-rack.md", excluded, None).chunks if c.kind == "expansion"]
    assert not any(line.startswith("升降·故障：") for line in chunk.text.splitlines())
