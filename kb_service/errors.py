"""The error hierarchy of the core library; entry points translate these in one place each."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """An error's first line for a log line (drivers append SQL and links), or its type when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# What a damaged index tells the operator: an ingest re-indexes everything, taking an intact vector file's vectors.
REPAIR = (
    "请运行 kb ingest 修复：重建索引，完好的向量文件直接沿用 / "
    "repair it: kb ingest (re-indexes, reusing intact vectors)"
)


class KbError(Exception):
    """Base class of every error the core raises on purpose."""


class ConfigError(KbError):
    """Settings are unsafe or contradictory; the message says what to change."""


class SopError(KbError):
    """A SOP document is malformed; carries the file, line and a trainer-readable reason."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class IndexMismatchError(KbError):
    """The stored index was built by another embedder or dimension than the one configured."""


class IndexNotReadyError(KbError):
    """No index has been published yet."""


class IndexCorruptError(IndexNotReadyError):
    """A generation's files are missing or differ from what was recorded when it was sealed."""


def with_repair(exc: KbError) -> KbError:
    """Damage, told with its repair (`REPAIR`) when the message does not say it yet."""
    return (
        IndexCorruptError(f"{exc}（{REPAIR}）")
        if isinstance(exc, IndexCorruptError) and REPAIR not in str(exc)
        else exc
    )


class NotFoundError(KbError):
    """A requested SOP or version does not exist."""


class DatabaseUnavailableError(KbError):
    """The service database cannot take a write that the caller needs (e.g. the file is read-only)."""


class WriterBusyError(KbError):
    """Another writer (an ingest, a publish) held the index longer than the caller may wait; names the holder."""


class VersionConflictError(KbError):
    """Someone else published the SOP since the caller read it."""


class ExampleRegressionError(KbError):
    """A change would stop the SOP's own example queries from finding it."""

    def __init__(self, message: str, failures: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.failures = failures

    @property
    def details(self) -> list[str]:
        return [f"“{f['query']}” → {'、'.join(f['top']) or '（无结果）'}" for f in self.failures]  # type: ignore[arg-type]
