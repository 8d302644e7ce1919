"""Reading and checking the YAML front matter of a SOP file.

The YAML comes from trainers and, through the API, from anyone holding a trainer key, so it is read with limits:
its size, its nesting depth, and no anchors or aliases (a few hundred bytes of aliases can expand into gigabytes).
Every refusal is an ordinary `file:line` issue; no message ever echoes more than a short excerpt of a value.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import yaml
from yaml.nodes import Node

from kb_service.models import Audience, Issue, SopMeta

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REQUIRED = ("id", "title", "category", "audience")
MAX_LINES = 200  # the sample corpus needs at most 14
MAX_BYTES = 16 * 1024
MAX_DEPTH = 6  # a mapping of lists of scalars is 3 deep
# PyYAML's scanner slows down quadratically on long runs of `[` (0.4 s for 16 KB) before the composer can count
# them, so brackets are counted first; the margin keeps brackets inside odd plain text from being taken for nesting.
PRESCAN_DEPTH = 4 * MAX_DEPTH
SHOWN_CHARS = 40


def clip(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as shown in a message: at most `limit` characters of its text."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


class _Refused(yaml.MarkedYAMLError):
    """YAML that is well formed but not accepted in a front matter (aliases, deep nesting)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text (YAML's own date parsing raises on 2027-13-01 instead of reporting),
    refuses anchors and aliases, and stops at `MAX_DEPTH` levels before its recursive composer can go deep."""

    _depth = 0

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []  # keys written twice, with their 0-based line

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                problem="文件头不能使用 YAML 锚点或别名（&名字、*名字），请把内容直接写出来 / "
                "YAML anchors and aliases are not allowed",
                problem_mark=event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise _Refused(
                problem=f"文件头嵌套超过 {MAX_DEPTH} 层；字段的值只能是文字或文字列表 / "
                f"front matter nested deeper than {MAX_DEPTH} levels",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A key written twice is an error (`duplicates`): YAML keeps the last silently (`audience: agent` then
        `audience: public` would publish a staff-only document). Loading goes on, so the other fields are checked in
        the same round (a trainer saw one error per preview)."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) and key is not None:  # `? [a, b]`: a list as a key
                problem = "文件头的字段名必须是文字 / a front-matter key must be text"
                raise _Refused(problem=problem, problem_mark=key_node.start_mark)
            if isinstance(key, str | int) and key in seen:
                self.duplicates.append((str(key), key_node.start_mark.line))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _surrogate(value: Any) -> bool:
    """Whether a loaded value holds a lone surrogate (YAML's "\\ud800" escape), at any depth."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_surrogate(k) or _surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_surrogate(v) for v in value)
    return False


def _too_deep_line(text: str) -> int | None:
    """0-based line where flow brackets (`[`, `{`) nest deeper than `PRESCAN_DEPTH`, found in one linear pass.

    Brackets count only where a YAML node may start (after `:`, `-`, `,`, `?`, another bracket or at a line start);
    quoted strings and comments are skipped. Approximate on purpose: the loader's own count is exact."""
    depth, line, i, n = 0, 0, 0, len(text)
    node_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            line, node_start = line + 1, True
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        elif node_start and c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if c == '"' and text[j] == "\\" else 1
            line += text.count("\n", i, j)
            i, node_start = j + 1, False
            continue
        elif node_start and c in "[{":
            depth += 1
            if depth > PRESCAN_DEPTH:
                return line
        elif depth and c in "]}":
            depth -= 1
            node_start = False
        elif c not in " \t":
            node_start = c in ":-,?"
        i += 1
    return None


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
KNOWN = {
    "id",
    "title",
    "category",
    "audience",
    "tags",
    "version",
    "owner",
    "updated",
    "review_by",
    "examples",
    "scope",
    "priority",
    "handover_fields",
    "lexicon_exclude",
}


def split_front_matter(lines: list[str]) -> tuple[int, int] | None:
    """Return (first, last) 0-based line indexes of the YAML between the `---` fences, or None."""
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return 1, i
    return 1, -1


def _key_line(lines: list[str], start: int, end: int, key: str) -> int:
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    for i in range(start, end):
        if pattern.match(lines[i]):
            return i + 1
    return start  # the opening fence line, 1-based


# What PyYAML's problems usually mean in a front matter, in the trainer's words (the parser's own text follows).
_YAML_HINTS = (
    ("']'", "方括号 [ ] 没有闭合，或列表项之间缺少英文逗号"),
    ("'}'", "花括号 { } 没有闭合，或项之间缺少英文逗号"),
    ("mapping values are not allowed", "冒号用错了：值里有英文冒号时请给值加引号，键和冒号后要有空格"),
    ("could not find expected ':'", "有一行缺少“键: 值”里的冒号"),
    ("found character '\\t'", "不能用 Tab 缩进，请改用空格"),
    ("found unexpected end of stream", "引号没有闭合"),
    ("found unknown escape character", "双引号里有无效的反斜杠转义，请改用单引号"),
    ("expected <block end>", "缩进不一致：同一层的字段要对齐"),
    ("found duplicate anchor", "重复的 & 锚点"),
    ("found undefined alias", "* 引用了不存在的锚点"),
)


def _mark_line(exc: yaml.YAMLError, start: int) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return start + 1 + (mark.line if mark is not None else 0)


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


_SEPARATORS = re.compile(r"[,，、;；]")


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    return None


MAX_HANDOVER_FIELDS = 4
MAX_HANDOVER_LABEL = 24


def _handover(data: dict[Any, Any], line_of: Any, err: Any) -> dict[str, Any]:
    """`priority` (urgent | normal) and `handover_fields` (the contact form's extra questions for this topic)."""
    out: dict[str, Any] = {}
    if data.get("priority") is not None:
        if data["priority"] not in ("urgent", "normal"):
            err(line_of("priority"), f"priority “{clip(data['priority'])}” 无效：只能是 urgent（紧急）或 normal")
        else:
            out["priority"] = data["priority"]
    if data.get("handover_fields") is not None:
        values = _str_list(data["handover_fields"])
        labels = [v.strip() for v in values or [] if v.strip()]
        if values is None or len(labels) > MAX_HANDOVER_FIELDS or any(len(v) > MAX_HANDOVER_LABEL for v in labels):
            err(
                line_of("handover_fields"),
                f"handover_fields 必须是最多 {MAX_HANDOVER_FIELDS} 个、每个不超过 {MAX_HANDOVER_LABEL} 字的问题列表，"
                "例如 handover_fields: [水从哪里来] / a list of short questions for the hand-over form",
            )
        else:
            out["handover_fields"] = labels
    return out


_ID_LINE = re.compile(r"""^id\s*:\s*["']?([a-z0-9]+(?:-[a-z0-9]+)*)["']?\s*(?:#.*)?$""")


def declared_id(lines: list[str], start: int, end: int) -> str | None:
    """The id the front matter declares, read from its own line: known even when other fields have errors."""
    found = (_ID_LINE.match(line.strip()) for line in lines[start:end])
    return next((m.group(1) for m in found if m), None)


_AGENT_LINE = re.compile(r"^audience\s*:\s*[\"']?agent[\"']?\s*(?:#.*)?$")


def declared_audience(lines: list[str], start: int, end: int) -> Audience:
    """The audience a front matter with errors declares, for checking its body: `agent` only when a line says so
    exactly; otherwise public, so that what would reach tenants is warned about in the same round as the errors (a
    new customer saw a body warning only after fixing the id and the dates)."""
    return "agent" if any(_AGENT_LINE.match(line.strip()) for line in lines[start:end]) else "public"


def parse_front_matter(
    path: str, lines: list[str], start: int, end: int, today: date
) -> tuple[SopMeta | None, list[Issue]]:
    """Validate the front matter between 0-based lines [start, end) and build the metadata."""
    check = _Check(path, lines, start, end)
    data = check.load()
    if data is None:
        return None, check.issues
    fields = check.fields(data, today)
    if any(i.severity == "error" for i in check.issues):
        return None, check.issues
    return SopMeta(**fields), check.issues


class _Check:
    """One file's front matter: its YAML read within the limits, then one check per field, in file order."""

    def __init__(self, path: str, lines: list[str], start: int, end: int) -> None:
        self.path, self.lines, self.start, self.end = path, lines, start, end
        self.issues: list[Issue] = []

    def err(self, line: int, msg: str) -> None:
        self.issues.append(Issue(path=self.path, line=line, severity="error", message=msg))

    def warn(self, line: int, msg: str) -> None:
        self.issues.append(Issue(path=self.path, line=line, severity="warning", message=msg))

    def line_of(self, key: str) -> int:
        return _key_line(self.lines, self.start, self.end, key)

    def load(self) -> dict[Any, Any] | None:
        """The YAML mapping, or None with an error when it is too long, too deep or not YAML."""
        start, end = self.start, self.end
        text = "\n".join(self.lines[start:end])
        size = len(text.encode("utf-8"))
        if end - start > MAX_LINES or size > MAX_BYTES:
            self.err(
                start,
                f"文件头过长（{end - start} 行，{size} 字节；上限 {MAX_LINES} 行、{MAX_BYTES} 字节）："
                "文件头只写 id、title 等字段，正文写在第二个 --- 之后 / "
                f"front matter too long (limit {MAX_LINES} lines, {MAX_BYTES} bytes)",
            )
            return None
        deep = _too_deep_line(text)
        if deep is not None:
            msg = f"文件头嵌套超过 {MAX_DEPTH} 层；字段的值只能是文字或文字列表 / front matter nested too deep"
            self.err(start + 1 + deep, msg)
            return None
        try:
            loader = _Loader(text)
        except yaml.YAMLError as exc:  # a control character (\x01): YAML's reader refuses the text before parsing
            line = start + 1 + text[: getattr(exc, "position", 0) or 0].count("\n")
            self.err(line, "文件头含有控制字符（如 \\x01），请删除 / a control character in the front matter")
            return None
        try:
            data = loader.get_single_data() or {}
        except _Refused as exc:
            self.err(_mark_line(exc, start), str(exc.problem))
            return None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            hint = next((zh for words, zh in _YAML_HINTS if words in problem), "请检查冒号、缩进和引号")
            self.err(_mark_line(exc, start), f"文件头 YAML 格式错误：{hint}（{clip(problem, 120)}）")
            return None
        except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
            self.err(start + 1, f"文件头有无法读取的值：{clip(str(exc), 120)} / unreadable value in the front matter")
            return None
        finally:
            loader.dispose()
        for key, line in loader.duplicates:
            twice = f"文件头字段“{clip(key)}”写了两次，请只保留一个 / key written twice: {clip(key)}"
            self.err(start + 1 + line, twice)
        if not isinstance(data, dict):
            self.err(start + 1, "文件头必须是“字段: 值”的形式")
            return None
        if _surrogate(data):  # "\ud800": a half of a character that no file or response can hold
            self.err(start + 1, "文件头有无效的字符转义（如 \\ud800）/ an escape that is no character (\\ud800)")
            return None
        return data

    def fields(self, data: dict[Any, Any], today: date) -> dict[str, Any]:
        for key in REQUIRED:
            value = data.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                self.err(self.start, f"缺少必填字段 {key}")
        for key in data:
            if str(key) not in KNOWN:
                known = "、".join(sorted(KNOWN))
                self.warn(self.line_of(str(key)), f"未知字段 {clip(key)}，将被忽略（可用字段：{known}）")
        fields: dict[str, Any] = _handover(data, self.line_of, self.err)  # priority, handover_fields
        self._identity(data, fields)
        self._lists(data, fields)
        if "version" in data:
            version = data["version"]
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                self.err(self.line_of("version"), f"version “{clip(version)}” 无效：必须是正整数，例如 version: 3")
            else:
                fields["version"] = version
        self._dates(data, fields, today)
        return fields

    def _identity(self, data: dict[Any, Any], fields: dict[str, Any]) -> None:
        """id, title, category, owner and audience."""
        sop_id = data.get("id")
        if sop_id is not None:
            if not isinstance(sop_id, str) or not ID_PATTERN.match(sop_id):
                msg = f"id “{clip(sop_id)}” 无效：只能用小写英文字母、数字和连字符，例如 repair-leak-ceiling"
                self.err(self.line_of("id"), msg)
            else:
                fields["id"] = sop_id
        for key in ("title", "category", "owner"):
            if key in data and data[key] is not None:
                if not isinstance(data[key], (str, int)):
                    self.err(self.line_of(key), f"{key} 必须是一段文字")
                elif str(data[key]).strip():
                    fields[key] = str(data[key]).strip()
        audience = data.get("audience")
        if audience is not None:
            if audience not in ("agent", "public"):
                msg = f"audience “{clip(audience)}” 无效：只能是 agent（仅员工可见）或 public（租客可见）"
                self.err(self.line_of("audience"), msg)
            else:
                fields["audience"] = audience

    def _lists(self, data: dict[Any, Any], fields: dict[str, Any]) -> None:
        for key in ("tags", "examples", "scope", "lexicon_exclude"):
            if key in data and data[key] is not None:
                values = _str_list(data[key])
                if values is None:
                    self.err(self.line_of(key), f"{key} 必须是列表，例如 {key}: [漏水, 渗水]")
                else:
                    if key != "examples" and isinstance(data[key], str) and _SEPARATORS.search(data[key]):
                        # "tags: 热水器, 空调" is one YAML string: the words the trainer listed, not one tag
                        values = _SEPARATORS.split(data[key])
                        self.warn(self.line_of(key), f"{key} 应写成列表，例如 {key}: [漏水, 渗水]；已按逗号拆开")
                    fields[key] = [v.strip() for v in values if v.strip()]

    def _dates(self, data: dict[Any, Any], fields: dict[str, Any], today: date) -> None:
        for key in ("updated", "review_by"):
            if key in data and data[key] is not None:
                parsed = _as_date(data[key])
                if parsed is None:
                    msg = f"{key} “{clip(data[key])}” 不是有效日期，请写成 YYYY-MM-DD，例如 2027-03-31"
                    self.err(self.line_of(key), msg)
                else:
                    fields[key] = parsed
        review_by = fields.get("review_by")
        if isinstance(review_by, date) and review_by < today:
            self.warn(self.line_of("review_by"), f"复核日期 {review_by.isoformat()} 已过，请复核内容后更新 review_by")


_VERSION_LINE = re.compile(r"^version\s*:")
_UPDATED_LINE = re.compile(r"^updated\s*:")


def with_version(text: str, version: int, updated: date | None = None) -> str:
    """Set `version:` in the front matter (added at its end when absent, the author's fields left in their order) and,
    given a date, `updated:` (added after `version:` when absent): a publish is the SOP's latest update, which agents
    see beside it. The front matter ends at `---` or `...`, in files with any line ending (a security test's `...`
    got the fields written above a `---` rule in the body, and a file of `\\r` line ends got them at its end)."""
    lines = text.splitlines(keepends=True)
    span = split_front_matter([line.rstrip("\r\n") for line in lines])
    if span is None or span[1] < 0:
        return text  # no front matter to write into: the parser has said so
    start, end = span
    newline = next((line[len(line.rstrip("\r\n")) :] for line in lines if line.rstrip("\r\n") != line), "\n")
    head = [line.rstrip("\r\n") for line in lines[start:end]]
    at = next((i for i, line in enumerate(head) if _VERSION_LINE.match(line)), None)
    if at is None:
        while head and not head[-1].strip():
            head.pop()
        head.append("")
        at = len(head) - 1
    head[at] = f"version: {version}"
    if updated is not None:
        dated = next((i for i, line in enumerate(head) if _UPDATED_LINE.match(line)), None)
        if dated is not None:
            head[dated] = f"updated: {updated.isoformat()}"
        else:
            head.insert(at + 1, f"updated: {updated.isoformat()}")
    return "".join(lines[:start]) + "".join(line + newline for line in head) + "".join(lines[end:])
