"""Reading and checking the YAML front matter of a SOP file."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import yaml

from kb_service.models import Issue, SopMeta

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REQUIRED = ("id", "title", "category", "audience")


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text: YAML's own date parsing raises on 2027-13-01 instead of reporting."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
KNOWN = {"id", "title", "category", "audience", "tags", "version", "owner", "updated", "review_by", "examples", "scope"}


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


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    return None


def parse_front_matter(
    path: str, lines: list[str], start: int, end: int, today: date
) -> tuple[SopMeta | None, list[Issue]]:
    """Validate the front matter between 0-based lines [start, end) and build the metadata."""
    issues: list[Issue] = []

    def err(line: int, msg: str) -> None:
        issues.append(Issue(path=path, line=line, severity="error", message=msg))

    def warn(line: int, msg: str) -> None:
        issues.append(Issue(path=path, line=line, severity="warning", message=msg))

    try:
        data = yaml.load("\n".join(lines[start:end]), Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = start + 1 + (mark.line if mark is not None else 0)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        err(line, f"文件头 YAML 格式错误：{problem}。请检查冒号、缩进和引号")
        return None, issues
    if not isinstance(data, dict):
        err(start + 1, "文件头必须是“字段: 值”的形式")
        return None, issues

    def line_of(key: str) -> int:
        return _key_line(lines, start, end, key)

    for key in REQUIRED:
        value = data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            err(start, f"缺少必填字段 {key}")
    for key in data:
        if str(key) not in KNOWN:
            warn(line_of(str(key)), f"未知字段 {key}，将被忽略（可用字段：{'、'.join(sorted(KNOWN))}）")

    fields: dict[str, Any] = {}
    sop_id = data.get("id")
    if sop_id is not None:
        if not isinstance(sop_id, str) or not ID_PATTERN.match(sop_id):
            err(line_of("id"), f"id “{sop_id}” 无效：只能用小写英文字母、数字和连字符，例如 repair-leak-ceiling")
        else:
            fields["id"] = sop_id
    for key in ("title", "category", "owner"):
        if key in data and data[key] is not None:
            if not isinstance(data[key], (str, int)):
                err(line_of(key), f"{key} 必须是一段文字")
            elif str(data[key]).strip():
                fields[key] = str(data[key]).strip()
    audience = data.get("audience")
    if audience is not None:
        if audience not in ("agent", "public"):
            err(line_of("audience"), f"audience “{audience}” 无效：只能是 agent（仅员工可见）或 public（租客可见）")
        else:
            fields["audience"] = audience
    for key in ("tags", "examples", "scope"):
        if key in data and data[key] is not None:
            values = _str_list(data[key])
            if values is None:
                err(line_of(key), f"{key} 必须是列表，例如 {key}: [漏水, 渗水]")
            else:
                fields[key] = [v.strip() for v in values if v.strip()]
    if "version" in data:
        version = data["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            err(line_of("version"), f"version “{version}” 无效：必须是正整数，例如 version: 3")
        else:
            fields["version"] = version
    for key in ("updated", "review_by"):
        if key in data and data[key] is not None:
            parsed = _as_date(data[key])
            if parsed is None:
                err(line_of(key), f"{key} “{data[key]}” 不是有效日期，请写成 YYYY-MM-DD，例如 2027-03-31")
            else:
                fields[key] = parsed
    review_by = fields.get("review_by")
    if isinstance(review_by, date) and review_by < today:
        warn(line_of("review_by"), f"复核日期 {review_by.isoformat()} 已过，请复核内容后更新 review_by")

    if any(i.severity == "error" for i in issues):
        return None, issues
    return SopMeta(**fields), issues
