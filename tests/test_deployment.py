"""The compose file, the Dockerfile, the README, docs/ and the settings agree with each other."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from kb_service.settings import Settings, get_settings, unknown_variables
from tests.helpers import ROOT

FIELDS = {f"KB_{name.upper()}" for name in Settings.model_fields}


def test_compose_uses_only_known_settings_and_valid_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"qdrant", "postgres", "ingest", "api"} <= set(services)
    assert any("/qdrant/storage" in v for v in services["qdrant"]["volumes"])
    postgres = services["postgres"]
    assert any(v.split(":")[0] in compose["volumes"] and "/var/lib/postgresql/data" in v for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert services["ingest"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("ingest", "api"):
        env = services[name]["environment"]
        keys = set(env) | set(env.get("<<", {}))
        unknown = {k for k in keys if k.startswith("KB_")} - FIELDS
        assert not unknown, f"{name}: {unknown}"
        assert env["KB_QDRANT_URL"].startswith("http://qdrant:")
        settings = env.get("<<", env)
        assert (
            settings["KB_DATABASE_URL"].startswith("postgresql://kb:")
            and "@postgres:5432/kb" in settings["KB_DATABASE_URL"]
        )
        command = services[name]["command"]
        assert command[0] == "kb"
        result = CliRunner().invoke(app, [*command[1:2], "--help"])
        assert result.exit_code == 0, result.output
        for option in [c for c in command[2:] if c.startswith("--")]:
            assert option in result.output, option
    assert services["api"]["depends_on"]["ingest"]["condition"] == "service_completed_successfully"


def test_a_misspelt_setting_is_named_with_the_one_it_was_meant_to_be(tmp_path: Path) -> None:
    """An operator's trial set KB_DATABASE_URI and the service quietly used SQLite under the data directory."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("KB_EMERGENCY_PHONES=400-800-1234\nKB_WORKERS=2\nOTHER=1\n", encoding="utf-8")
    environ = {"KB_DATABASE_URI": "postgresql://kb@db/kb", "KB_DATA_DIR": "/srv/kb", "KB_API_KEY": "k", "PATH": "/bin"}
    found = unknown_variables(environ, dotenv)
    assert len(found) == 2 and "did you mean KB_DATABASE_URL?" in found[0] and found[0].startswith("KB_DATABASE_URI")
    assert found[1].startswith("KB_EMERGENCY_PHONES") and "KB_EMERGENCY_PHONE?" in found[1]
    assert unknown_variables({"KB_DATA_DIR": "x"}, tmp_path / "none") == []


def test_every_data_file_of_the_package_is_installed() -> None:
    """`pip install .` (the Dockerfile) installs only what package-data names: the learned ranker's coefficients
    (data/ranker.json) were left out of the image from session 31 to 51, so it searched without the ranker."""
    import fnmatch
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    package = ROOT / "kb_service"
    shipped = [p.relative_to(package).as_posix() for p in (package / "data").iterdir() if p.is_file()]
    assert shipped and "data/ranker.json" in shipped
    missing = [f for f in shipped if not any(fnmatch.fnmatch(f, g) for g in globs["kb_service"])]
    assert not missing, missing


def test_dockerfile_settings_are_known() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert set(re.findall(r"\b(KB_[A-Z_]+)=", text)) <= FIELDS


def test_docs_document_every_setting_and_the_readme_the_two_commands() -> None:
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    missing = sorted(f for f in FIELDS if f"`{f}`" not in reference)
    assert not missing, missing
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme and "KB_SOPS_DIR" in readme and "KB_API_KEYS" in readme
    assert len(readme.splitlines()) <= 80  # two screens; the details live in docs/


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    heads = re.findall(r"^#+ (.*)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_readme_and_docs_links_resolve() -> None:
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([^)#:]+\.(?:md|png))(?:#([^)]*))?\)", text):
            path = page.parent / target
            assert path.exists(), (page.name, target)
            if anchor:
                assert anchor in _anchors(path.read_text(encoding="utf-8")), (page.name, target, anchor)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_makefile_targets_exist() -> None:
    out = subprocess.run(
        ["make", "-n", "-f", str(ROOT / "Makefile"), "run", "test"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert Path(ROOT / "Makefile").read_text().count("pip install") >= 2


def test_make_run_indexes_the_folder_kb_sops_dir_names() -> None:
    """`kb ingest` without a folder argument reads KB_SOPS_DIR (default sops/), as `kb serve` does."""
    out = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    ingest = [line.split("||")[0].split() for line in out.stdout.splitlines() if "kb ingest" in line]
    assert ingest and all(words[-1] == "ingest" for words in ingest), out.stdout


def test_trial_mode_is_refused_wherever_a_deployment_shows(tmp_path: Path) -> None:
    """An operator's trial: a misspelt KB_DATABASE_URL, or one naming another (empty) database, started a replica in
    trial mode, and anyone without a key read staff-only sections through it."""
    from cli.users import trial_refusal

    assert trial_refusal(get_settings(data_dir=tmp_path), []) is None  # one's own machine: the README's first run
    pg = trial_refusal(get_settings(data_dir=tmp_path, database_url="postgresql://kb:secret@db:5432/postgres"), [])
    assert pg is not None and "KB_DATABASE_URL" in pg and "secret" not in pg
    proxied = trial_refusal(get_settings(data_dir=tmp_path, trusted_proxies="10.0.0.2"), [])
    assert "KB_TRUSTED_PROXIES" in (proxied or "")
    assert "127.0.0.1" in (trial_refusal(get_settings(data_dir=tmp_path, host="0.0.0.0"), []) or "")
    misspelt = unknown_variables({"KB_DATABSE_URL": "postgresql://kb@db/kb"}, tmp_path / "none")
    assert "KB_DATABSE_URL" in (trial_refusal(get_settings(data_dir=tmp_path), misspelt) or "")


def test_serve_refuses_trial_mode_with_a_misspelt_setting(tmp_path: Path) -> None:
    env = {"KB_DATA_DIR": str(tmp_path / "data"), "KB_DATABSE_URL": "postgresql://kb@db/kb", "KB_API_KEYS": ""}
    result = CliRunner().invoke(app, ["serve", "--port", "8199"], env=env)
    assert result.exit_code == 2, result.output
    assert "KB_DATABSE_URL" in result.output and "KB_API_KEYS" in result.output  # what is wrong, and what to do


def test_a_password_with_an_at_sign_is_refused_and_never_shown(tmp_path: Path) -> None:
    """An operator's trial: postgresql://kb:pa@ss@host/kb was read with host 'ss@host', and the error showed 'ss'."""
    from kb_service.errors import ConfigError
    from kb_service.settings import hide_password

    with pytest.raises(ConfigError) as refused:
        get_settings(data_dir=tmp_path, database_url="postgresql://kb:pa@ss@127.0.0.1:5432/kb")
    assert "%40" in str(refused.value) and "pa@ss" not in str(refused.value) and "@ss" not in str(refused.value)
    assert hide_password("postgresql://kb:pa@ss@db:5432/kb") == "postgresql://kb:***@db:5432/kb"
    assert hide_password("postgresql://kb:p/w@db/kb") == "postgresql://kb:***@db/kb"
    assert hide_password("postgresql://kb@db/kb") == "postgresql://kb@db/kb"
    assert get_settings(data_dir=tmp_path, database_url="postgresql://kb:pa%40ss@db/kb").database_url.endswith("db/kb")
