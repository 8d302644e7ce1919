"""The hours in which agents answer hand-over cases (KB_SERVICE_HOURS, e.g. 09:00-21:00, in KB_SERVICE_TIMEZONE, e.g.
Asia/Shanghai, or the server's own time zone: a container on UTC read 09:00 as 17:00 in Beijing, a phone trial).

Outside them a tenant who hands over is told when a person will answer instead of a reply time nobody keeps at 3 a.m.
A window may run past midnight (22:00-06:00 for a night desk); an empty setting means around the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class ServiceHours:
    start: time
    end: time
    zone: ZoneInfo | None = None  # None: the server's own time zone

    @classmethod
    def parse(cls, text: str, zone: str = "") -> ServiceHours | None:
        """None for an empty setting (around the clock); ValueError for one that is not HH:MM-HH:MM."""
        if not text.strip():
            return None
        found = _WINDOW.match(text)
        if found is None:
            raise ValueError(f"服务时间应写成 09:00-21:00 / service hours must look like 09:00-21:00: {text!r}")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"服务时间不是有效的时刻 / not a time of day: {text!r}")
        if (h1, m1) == (h2, m2):
            raise ValueError(f"服务时间的开始和结束相同 / the hours start and end at the same time: {text!r}")
        end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
        return cls(time(h1, m1), end, zone_named(zone))

    def open_now(self) -> bool:
        return self.open_at(datetime.now(self.zone))

    def open_at(self, moment: datetime) -> bool:
        now = moment.time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # past midnight

    @property
    def label(self) -> str:
        end = "24:00" if self.end == time(23, 59, 59, 999999) else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}–{end}"


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA time zone of that name (Asia/Shanghai); None for an empty name; ValueError for an unknown one."""
    if not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (KeyError, ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"未知的时区 / unknown time zone: {name!r} (e.g. Asia/Shanghai)") from exc
