"""Which service database a data directory's deployment uses, kept in the directory (`service-database`).

An operator's trial started a server on a PostgreSQL deployment's shared data directory from another working folder:
the `.env` with KB_DATABASE_URL was not read, and the server ran on a new SQLite file in that directory, without
authentication (no accounts there: trial mode), serving staff-only text to any caller and keeping its log apart. A
process that uses PostgreSQL writes where it is (no password) into the data directory; a process without
KB_DATABASE_URL refuses to open SQLite there until the file is removed on purpose.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from kb_service.errors import ConfigError

MARK = "service-database"


def remember(data_dir: Path, where: str) -> None:
    """Record that this data directory is served with the PostgreSQL database `where` (never fails a start)."""
    path = data_dir / MARK
    with contextlib.suppress(OSError):
        if path.exists() and path.read_text(encoding="utf-8").strip() == where:
            return
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(where + "\n", encoding="utf-8")


def refuse_sqlite(data_dir: Path) -> None:
    """ConfigError when this data directory belongs to a PostgreSQL deployment."""
    path = data_dir / MARK
    try:
        where = path.read_text(encoding="utf-8").strip()
    except OSError:  # no mark (or unreadable): an embedded deployment
        return
    raise ConfigError(
        f"数据目录 {data_dir} 属于使用 PostgreSQL（{where}）的部署，但没有设置 KB_DATABASE_URL"
        "（.env 没有读到？）：不会改用数据目录里的 SQLite（那里没有账号，会以无认证模式运行）。"
        f"请设置 KB_DATABASE_URL；确实要改用内置 SQLite 时删除 {path} / this data directory belongs to a "
        f"PostgreSQL deployment ({where}) and KB_DATABASE_URL is not set: set it, or remove {path} to use the "
        "embedded SQLite on purpose"
    )
