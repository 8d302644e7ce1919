"""Hostile front matter: deep nesting, alias bombs and oversized headers are refused quickly with one bounded
`file:line` error, through the parser, `kb lint`, `kb ingest` and the HTTP API, and never stop the other files."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from ingest.frontmatter import MAX_BYTES, MAX_DEPTH, MAX_LINES
from ingest.parser import parse_bytes
from tests.helpers import FIXTURES, KEYS, SOPS, TRAINER, auth
from tests.helpers import api_client as _client

HEAD = "---\nid: {id}\ntitle: 恶意文件头\ncategory: 测试\naudience: public\n"
BODY = "---\n# 恶意文件头\n\n## 处理步骤\n1. 第一步。\n"
# "Billion laughs": 9^7 strings from 420 bytes once the aliases are expanded.
BOMB = (
    '---\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcde", "bcdef", strict=True))
    + "id: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\ntitle: t\ncategory: c\naudience: public\n"
    + BODY
)


def hostile(sop_id: str) -> dict[str, tuple[str, int, str]]:
    """name -> (document, line of the error, words the message must contain)."""
    head = HEAD.format(id=sop_id)
    nested_block = "".join(" " * i + f"k{i}:\n" for i in range(60))
    return {
        "deep-20000": (head + "tags: " + "[" * 20_000 + "]" * 20_000 + "\n" + BODY, 1, "文件头过长"),
        "deep-5000": (head + "tags: " + "[" * 5_000 + "]" * 5_000 + "\n" + BODY, 6, f"嵌套超过 {MAX_DEPTH} 层"),
        "deep-block": (head + "scope:\n" + nested_block + BODY, 6 + MAX_DEPTH, f"嵌套超过 {MAX_DEPTH} 层"),
        "alias-bomb": (BOMB.replace("id: [", "tags: [").replace("title: t", f"id: {sop_id}\ntitle: t"), 2, "别名"),
        "huge": (head + "examples:\n" + "  - 很长的示例问法\n" * (MAX_LINES + 1) + BODY, 1, "文件头过长"),
        "huge-line": (head + "owner: " + "长" * MAX_BYTES + "\n" + BODY, 1, "文件头过长"),
        "big-int": (head + "version: " + "9" * 5_000 + "\n" + BODY, 2, "无法读取的值"),
    }


CASES = hostile("hostile-doc")


@pytest.mark.parametrize("name", sorted(CASES))
def test_parser_refuses_quickly_with_one_short_error(name: str) -> None:
    text, line, words = CASES[name]
    started = time.perf_counter()
    result = parse_bytes("h.md", text.encode())
    took = time.perf_counter() - started
    errors = [i for i in result.issues if i.severity == "error"]
    assert result.sop is None and len(errors) == 1, result.issues
    assert errors[0].line == line and words in errors[0].message, str(errors[0])
    assert sum(len(str(i)) for i in result.issues) < 400  # never an echo of the (expanded) document
    assert took < 0.2, f"{name} took {took:.3f} s"


def test_the_classic_alias_bomb_is_refused_at_its_first_anchor() -> None:
    assert len(BOMB.encode()) < 600
    result = parse_bytes("bomb.md", BOMB.encode())
    assert result.sop is None and [str(i) for i in result.issues] == [
        "bomb.md:2: 错误: 文件头不能使用 YAML 锚点或别名（&名字、*名字），请把内容直接写出来 / "
        "YAML anchors and aliases are not allowed"
    ]


def test_ordinary_nesting_and_brackets_in_text_still_parse() -> None:
    text = (
        HEAD.format(id="ok-doc").replace("title: 恶意文件头", "title: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ 报修'")
        + "tags: [漏水, 渗水]\nexamples:\n  - 天花板 [滴水] 怎么办\nscope: [全部门店]\n"
        + BODY
    )
    result = parse_bytes("ok.md", text.encode())
    assert result.sop is not None, result.issues
    assert result.sop.meta.tags == ["漏水", "渗水"] and result.sop.meta.examples == ["天花板 [滴水] 怎么办"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("tags: [漏水, 报修", "方括号 [ ] 没有闭合"),
        ("title: 报修: 漏水", "冒号用错了"),
        ('title: "漏水', "引号没有闭合"),
        ("\ttitle: 漏水", "不能用 Tab 缩进"),
    ],
)
def test_a_broken_front_matter_is_explained_in_the_trainers_words(line: str, says: str) -> None:
    doc = f"---\nid: broken-yaml\n{line}\n---\n# 标题\n\n## 适用场景\n文字。\n"
    [issue] = [str(i) for i in parse_bytes("broken.md", doc.encode()).issues if "YAML" in str(i)]
    assert says in issue and issue.startswith("broken.md:3:"), issue


def test_values_shown_in_messages_are_clipped() -> None:
    text = HEAD.format(id="A" * 10_000) + BODY
    (issue,) = parse_bytes("long.md", text.encode()).issues
    assert issue.line == 2 and "无效" in issue.message and len(issue.message) < 200


# -- kb lint and kb ingest: one hostile file is reported, every other file is checked and indexed ---------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    sops = tmp_path / "lint-sops"
    sops.mkdir()
    for name, (text, _, _) in hostile("placeholder").items():
        (sops / f"{name}.md").write_text(text.replace("placeholder", name), encoding="utf-8")
    shutil.copy(FIXTURES / "synonyms.md", sops / "good.md")
    return sops


def test_lint_reports_each_hostile_file_and_checks_the_good_one(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["lint", str(folder)])
    assert result.exit_code == 1, result.output
    out = result.output
    for name, (_, line, words) in CASES.items():
        assert any(f"{name}.md:{line}: 错误:" in ln and words in ln for ln in out.splitlines()), (name, out)
    assert "good.md" not in out  # checked, and clean
    assert f"检查了 {len(CASES) + 1} 个文档：{len(CASES)} 个错误" in out
    assert len(out) < 4_000


def test_ingest_indexes_the_rest_of_the_folder(folder: Path, tmp_path: Path) -> None:
    env = {"KB_EMBEDDER": "hash", "KB_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["ingest", str(folder)], env=env)
    assert result.exit_code == 1, result.output  # failures make the exit status non-zero...
    assert "新增 added 1," in result.output and f"失败 failed {len(CASES)}" in result.output
    assert "alias-bomb.md:2:" in result.output and len(result.output) < 4_000
    found = CliRunner().invoke(cli, ["search", "同义标题测试", "--json"], env=env)  # ...and the good file is served
    assert found.exit_code == 0 and '"sop_id": "fixture-synonyms"' in found.output, found.output


# -- HTTP: PUT and preview answer with the error, the service goes on ---------------------------------------------


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One service for the module: every request below is refused, so none changes what the others see."""
    tmp = tmp_path_factory.mktemp("hostile-api")
    shutil.copytree(SOPS, tmp / "sops")
    with _client(tmp, tmp / "sops", api_keys=KEYS) as c:
        yield c


HTTP_CASES = hostile("hostile-doc")


@pytest.mark.parametrize("name", ["deep-20000", "deep-5000", "alias-bomb", "huge", "big-int"])
def test_put_refuses_with_422_and_file_line(trainer: TestClient, name: str) -> None:
    text, line, words = HTTP_CASES[name]
    headers = {**auth(TRAINER), "content-type": "text/markdown"}
    started = time.perf_counter()
    r = trainer.put("/v1/sops/hostile-doc", content=text.encode(), headers=headers)
    assert time.perf_counter() - started < 2
    assert r.status_code == 422 and len(r.content) < 2_000, (r.status_code, r.content[:300])
    (detail,) = r.json()["error"]["details"]
    assert detail.startswith(f"hostile-doc.md:{line}: 错误:") and words in detail, detail
    assert trainer.get("/v1/sops/hostile-doc", headers=auth(TRAINER)).status_code == 404


@pytest.mark.parametrize("name", ["deep-20000", "deep-5000", "alias-bomb", "huge", "big-int"])
def test_preview_reports_the_error_with_file_line(trainer: TestClient, name: str) -> None:
    text, line, words = HTTP_CASES[name]
    headers = {**auth(TRAINER), "content-type": "text/markdown"}
    r = trainer.post("/v1/preview", content=text.encode(), headers=headers)
    # A preview of a broken document is a successful preview that lists its problems (the trainer page shows them).
    assert r.status_code == 200 and len(r.content) < 2_000
    body = r.json()
    assert body["ok"] is False and body["chunks"] == []
    assert any(i.startswith(f"preview.md:{line}: 错误:") and words in i for i in body["issues"]), body["issues"]
    assert trainer.post("/v1/search", json={"query": "漏水"}, headers=auth(TRAINER)).status_code == 200


def test_a_preview_says_which_published_sop_has_the_same_title_and_example(trainer: TestClient) -> None:
    """A draft copied from a published SOP under a new id is told, before it is published, what it repeats."""
    text = (
        (SOPS / "access" / "access-smart-lock.md")
        .read_text(encoding="utf-8")
        .replace("id: access-smart-lock", "id: lock-draft")
    )
    headers = {**auth(TRAINER), "content-type": "text/markdown"}
    issues = trainer.post("/v1/preview", content=text.encode(), headers=headers).json()["issues"]
    assert any("标题与" in i and "access-smart-lock" in i for i in issues), issues
    assert any("示例问法" in i and "access-smart-lock" in i for i in issues), issues
    # the published SOP's own draft repeats nothing: it is compared with the others; an id it names that no
    # published SOP has is said, with the one meant
    own = (SOPS / "access" / "access-smart-lock.md").read_text(encoding="utf-8")
    assert "access-lost-key" in own
    draft = own.replace("access-lost-key", "access-lostkey").encode()
    issues = trainer.post("/v1/preview", content=draft, headers=headers).json()["issues"]
    assert not any("标题与" in i or "示例问法" in i or "内容与" in i for i in issues), issues
    assert any("“access-lostkey” 不存在，是不是 access-lost-key？" in i for i in issues), issues
