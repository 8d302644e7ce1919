"""GET /metrics: staff only, Prometheus's text format, request timings by route template and the shared figures read
from the service database (one process here; several worker processes: tests/test_serving.py)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import AGENT, KEYS, api_client, auth

CONTACT = {"name": "张三", "room": "3栋1201", "phone": "13800138000"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_for_staff_and_report_requests_and_the_shared_state(tmp_path: Path, sops_copy: Path) -> None:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        assert c.get("/metrics").status_code == 401  # not for tenants: it counts their questions
        before = _samples(c.get("/metrics", headers=auth(AGENT)).text)
        for _ in range(3):
            assert c.post("/v1/search", json={"query": "空调不制冷"}, headers=auth(AGENT)).status_code == 200
        c.get("/v1/sops/no-such-sop", headers=auth(AGENT))
        c.get("/wp-login.php")
        chat = c.post("/v1/chat", json={"question": "明天天气怎么样", "session_id": "s-1"})
        assert chat.json()["handoff"] is True
        urgent = {"session_id": "s-2", "question": "厨房里一股煤气味", "contact": CONTACT}
        assert c.post("/v1/cases", json=urgent).status_code == 201
        c.app.state.kb_state.services.logbook.flush()  # type: ignore[attr-defined]
        r = c.get("/metrics", headers=auth(AGENT))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        after = _samples(r.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    request = "kb_http_request_duration_seconds_count"
    assert grew(request, method="POST", route="/v1/search", status="200") == 3
    assert grew(request, method="GET", route="/v1/sops/{sop_id}", status="404") == 1  # the template, not the id
    assert grew(request, method="GET", route="unmatched", status="404") == 1
    assert after[("kb_ready", ())] == 1.0 and after[("kb_index_sops", ())] > 40
    assert after[("kb_questions_recent", (("source", "search"),))] == 3
    assert after[("kb_questions_recent", (("source", "chat"),))] == 1
    assert after[("kb_handed_over_recent", (("source", "chat"),))] == 1
    assert after[("kb_cases_waiting", (("priority", "urgent"),))] == 1
    assert after[("kb_cases_waiting", (("priority", "normal"),))] == 0
    assert after[("kb_database_up", ())] == 1.0


def test_timing_folders_of_killed_servers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from api.serving.metrics import sweep_shared_dirs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"kb-metrics-{int(gone.stdout)}-abc"
    live = tmp_path / f"kb-metrics-{os.getpid()}-def"
    other = tmp_path / "kb-metrics-notapid"  # not one of ours (no owner in its name): left alone
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "histogram_1.db").write_bytes(b"x")
    assert sweep_shared_dirs(tmp_path) == 1
    assert not dead.exists() and live.exists() and other.exists()
