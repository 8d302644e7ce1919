"""One typed settings object, read from `KB_` environment variables (and an optional `.env`)."""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kb_service.errors import ConfigError
from kb_service.handover.hours import ServiceHours, zone_named

Role = Literal["agent", "trainer"]


class Settings(BaseSettings):
    """Every setting of the service. Built once by `get_settings()` and passed down."""

    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Index, embedding generations and the service database.")
    sops_dir: Path = Field(Path("sops"), description="Folder of SOP Markdown files.")
    embedder: Literal["use", "sentence-transformers", "hash"] = Field(
        "use", description="use = bundled USE-multilingual; sentence-transformers = KB_ST_MODEL; hash = tests only."
    )
    st_model: str = Field("", description="sentence-transformers model name or local path.")
    threads: int = Field(0, description="Threads for the embedding model; 0 = CPUs available to the process.")
    embed_token_cache: int = Field(
        4096,
        ge=0,
        description="Tokens whose first USE layers the query embedder keeps (13 KB each; 0 = off). Halves a query's "
        "embedding time.",
    )
    embed_dimensions: int = Field(
        512,
        description="Dimensions of the USE vectors: 512 = the model's own; 128 = projected onto the first principal "
        "directions of property-management text and compared by dot product, with a ranker trained on them (a quarter "
        "of the vector memory: docs/benchmarks.md, session 51). Vectors of another width are another embedder's: a "
        "change needs `kb ingest --rebuild`.",
    )
    qdrant_url: str = Field("", description="Qdrant server URL; empty = embedded engine under KB_DATA_DIR.")
    database_url: str = Field(
        "",
        description="Service database (query log, feedback, versions, learned phrasings, reports, rate limits): "
        "postgresql://user:password@host:5432/name for several hosts; empty = SQLite under KB_DATA_DIR.",
    )
    publish_wait_seconds: float = Field(
        20.0,
        ge=0,
        description="How long a trainer's publish, delete or rollback waits for another writer of the index (a `kb "
        "ingest`, another publish) before it is refused with 503 `writer_busy`, which names that writer.",
    )
    qdrant_api_key: str = Field("", description="API key for the Qdrant server.")
    qdrant_collection: str = Field("kb_chunks", description="Collection alias used on a Qdrant server.")
    index_quantization: Literal["int8", "binary", "none"] = Field(
        "binary",
        description="binary = the ranked sentence vectors also kept in memory as two-bit codes, the best candidates "
        "rescored with the originals (docs/benchmarks.md: recall unchanged, half the memory of int8); int8 = eight "
        "bits a dimension; none = the Float16 vectors alone. Only indexes of 5,000+ chunks are quantised. A change "
        "re-indexes on the next ingest or publish.",
    )
    index_vectors_on_disk: bool = Field(
        True,
        description="Leave the Float16 vectors in their memory-mapped files, read on demand (with int8 only the "
        "rescored candidates are read); false = load them into memory. A change re-indexes on the next ingest.",
    )
    index_rescore: bool = Field(
        True,
        description="Rescore the best candidates with the Float16 originals; false = the ranking search reads the "
        "in-memory codes alone (the confidence and the ranker still read their few SOPs' originals, as cosines), for "
        "memory-capped processes (docs/deployment.md). Takes effect at start-up.",
    )
    index_aux_on_disk: bool = Field(
        True,
        description="Keep the channels only hit tests read (passage vector, pinyin terms) in memory-mapped files, "
        "unquantised, instead of in memory. A change re-indexes on the next ingest.",
    )
    index_lexical_datatype: Literal["uint8", "float16", "float32"] = Field(
        "uint8",
        description="How the lexical channel's term weights are stored in its in-memory inverted index: uint8 = one "
        "byte each (at 100k chunks 72 MB less than float32, rankings unchanged on every labelled set: "
        "docs/benchmarks.md); float16 = two; float32 = as before session 18. A change re-indexes on the next ingest.",
    )
    index_originals: Literal["float16", "turbo8"] = Field(
        "float16",
        description="How the ranked sentence vectors' originals, read to rescore, are stored: float16, or turbo8 = "
        "eight-bit TurboQuant codes, half the bytes (docs/benchmarks.md). A change re-indexes on the next ingest.",
    )
    index_vectors_file: bool = Field(
        True,
        description="Record the vectors' originals in a file of the index's own, read with pread to rescore a "
        "search's candidates, so they never count in a worker's memory (at 100k chunks 875 MB of mapped originals "
        "did: docs/deployment.md); the passage vector gets two-bit codes too. false = the engine rescores from its "
        "mapped files. With a quantisation only. A change re-indexes on the next ingest.",
    )
    index_sentence_rows: int = Field(
        16,
        ge=0,
        le=1024,
        description="Where the vectors' originals are recorded (KB_INDEX_VECTORS_FILE), the engine keeps a chunk's "
        "first this many sentence vectors and parts of their own hold the others, as many each, so the graph "
        "search never reads a long example list whole (at 100k chunks its p95 fell from 10.8 to 6.4 ms, the first "
        "SOPs found as good: docs/benchmarks.md, session 61). 0 = every sentence vector in its chunk. A change "
        "re-indexes on the next ingest.",
    )
    api_keys: str = Field("", description="Comma-separated role:key pairs, e.g. agent:k1,trainer:k2.")
    host: str = Field("127.0.0.1", description="Bind address of `kb serve`.")
    port: int = Field(8000, ge=1, le=65535)
    search_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Search batches one server process runs at once (requests that queue up meanwhile form the next "
        "batch); with the bundled model more threads only contend for Python's GIL (measured: docs/benchmarks.md).",
    )
    search_rerank: bool = Field(
        True,
        description="Reorder the first SOPs of a search with the learned ranker (kb_service/data/ranker.json; "
        "measured in docs/benchmarks.md); false ranks by fused evidence alone.",
    )
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Server processes; 0 = one per CPU (each loads the model, ~0.5 GB, and shares the index).",
    )
    cors_origins: str = Field("", description="Comma-separated origins allowed to call the chat API from a browser.")
    chat_rate_limit: int = Field(20, ge=1, description="Chat requests per client per minute.")
    public_search_rate_limit: int = Field(
        60, ge=1, description="Searches without an API key per client per minute (staff keys are not limited)."
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated IPs or CIDR networks of reverse proxies whose X-Forwarded-For names the client; "
        "empty = trust none (the peer's address is the client's).",
    )
    chat_min_confidence: float = Field(
        0.58,
        ge=0,
        le=1,
        description="A logged search whose best sentence similarity is below this counts as unanswered in the gap "
        "report.",
    )
    chat_min_answer_score: float = Field(
        0.4,
        ge=0,
        le=2,
        description="Below this passage score the chat hands over (chosen with benchmarks/chat_answers.py).",
    )
    urgent_categories: str = Field(
        "紧急事件", description="Comma-separated SOP categories that are urgent unless a SOP sets `priority`."
    )
    company_name: str = Field(
        "安居优寓", min_length=1, max_length=40, description="The company's name on the widget's demo page (/demo)."
    )
    emergency_phone: str = Field(
        "119 / 120 / 110", max_length=80, description="The emergency number the chat shows first for urgent topics."
    )
    case_rate_limit: int = Field(5, ge=1, description="Hand-over cases and tenant messages per client per minute.")
    case_retention_days: int = Field(
        90, ge=1, le=3650, description="Days a hand-over case is kept after it was opened."
    )
    case_response_minutes: str = Field(
        "urgent:5,normal:30",
        pattern=r"^\s*(urgent|normal)\s*:\s*\d{1,4}(\s*,\s*(urgent|normal)\s*:\s*\d{1,4})?\s*$",
        description="Minutes within which an agent should first answer a hand-over case, per priority (服务指标).",
    )
    service_hours: str = Field(
        "",
        max_length=20,
        description="Hours agents answer hand-over cases, e.g. 09:00-21:00 (in KB_SERVICE_TIMEZONE; 22:00-06:00 runs "
        "past midnight); empty = around the clock. Outside them a tenant who hands over is told when a person answers.",
    )
    service_timezone: str = Field(
        "",
        max_length=64,
        description="IANA time zone of KB_SERVICE_HOURS, e.g. Asia/Shanghai; empty = the server's own (a container "
        "is often on UTC).",
    )
    handover_webhook_url: str = Field("", description="URL each new hand-over case is POSTed to (JSON); empty = none.")
    handover_webhook_secret: str = Field(
        "", description="HMAC-SHA256 key of the webhook's X-KB-Signature header (needed with the URL)."
    )
    handover_webhook_max_attempts: int = Field(
        12,
        ge=1,
        le=100,
        description="Attempts per webhook event before it is given up (listed as failed, logged as an error, sent "
        "again by POST /v1/handover/webhook/retry).",
    )
    handover_webhook_backoff: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Seconds before a failed webhook event's second attempt; each later wait doubles, at most an hour "
        "(with the defaults, 12 attempts over about 17 hours).",
    )
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, le=1024 * 1024, description="Largest request head (request line and headers); larger: 431."
    )
    request_timeout: float = Field(
        20.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a whole request, from its first byte (or from connecting); slower "
        "clients get 408 and are disconnected.",
    )
    keep_alive_timeout: float = Field(5.0, gt=0, le=300, description="Seconds an idle kept-alive connection stays.")
    access_log: bool = Field(
        False,
        description="One log line per request (client, request line, status; keys and tickets in the address hidden). "
        "Off by default: at hundreds of requests a second the lines cost measurable CPU.",
    )
    max_query_chars: int = Field(500, ge=10, le=5000)
    assist_call_ttl: float = Field(
        7200, gt=0, description="Seconds a live-assist call of the HTTP form is kept after its last segment."
    )
    assist_sockets_per_account: int = Field(
        20,
        ge=0,
        description="Live-assist WebSocket connections one account (or key) may hold open at once, over every worker "
        "and replica (a console holds one; a call platform's connection carries many calls); 0 = no cap.",
    )
    max_sop_bytes: int = Field(200_000, ge=1000)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        if v and not v.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("KB_DATABASE_URL must start with postgresql:// (or be empty for SQLite under KB_DATA_DIR)")
        if v.partition("://")[2].split("/", 1)[0].count("@") > 1:  # the host would be read from the password's end
            raise ValueError("密码中的 @ 请写成 %40 / write an @ in the user name or password as %40")
        return v

    @field_validator("handover_webhook_url")
    @classmethod
    def _webhook_url(cls, v: str) -> str:
        parsed = urlsplit(v)
        if v and (parsed.scheme not in ("http", "https") or not parsed.hostname):
            raise ValueError("KB_HANDOVER_WEBHOOK_URL must be an http:// or https:// URL with a host (or empty)")
        return v

    @field_validator("service_hours")
    @classmethod
    def _service_hours(cls, v: str) -> str:
        ServiceHours.parse(v)  # KB_SERVICE_HOURS: a clear error at start-up, not at the first hand-over
        return v

    @field_validator("service_timezone")
    @classmethod
    def _service_timezone(cls, v: str) -> str:
        zone_named(v)  # KB_SERVICE_TIMEZONE: a clear error at start-up
        return v

    @field_validator("embed_dimensions")
    @classmethod
    def _embed_dimensions(cls, v: int) -> int:
        if v not in (512, 128):  # the widths measured, each with its ranker (kb_service/search/rerank.model_for)
            raise ValueError("KB_EMBED_DIMENSIONS must be 512 (the model's own) or 128")
        return v

    @field_validator("threads")
    @classmethod
    def _threads(cls, v: int) -> int:
        if v < 0:
            raise ValueError("KB_THREADS must be >= 0")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.embedder == "sentence-transformers" and not self.st_model:
            raise ValueError("KB_EMBEDDER=sentence-transformers needs KB_ST_MODEL (a model name or local path)")
        if self.embed_dimensions != 512 and self.embedder != "use":
            raise ValueError("KB_EMBED_DIMENSIONS shortens the bundled USE model only (KB_EMBEDDER=use)")
        self.parsed_api_keys  # noqa: B018 - validates the format at start-up
        self.proxy_list  # noqa: B018
        if self.handover_webhook_url and len(self.handover_webhook_secret) < 16:
            raise ValueError("KB_HANDOVER_WEBHOOK_URL needs KB_HANDOVER_WEBHOOK_SECRET (at least 16 characters)")
        return self

    @cached_property
    def service_window(self) -> ServiceHours | None:
        return ServiceHours.parse(self.service_hours, self.service_timezone)

    @cached_property
    def case_response_targets(self) -> dict[str, float]:
        """Seconds within which a hand-over case of each priority should be first answered."""
        targets = {"urgent": 300.0, "normal": 1800.0}
        for pair in self.case_response_minutes.split(","):
            priority, _, minutes = pair.partition(":")
            targets[priority.strip()] = float(minutes) * 60
        return targets

    @cached_property
    def urgent_category_set(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.urgent_categories.split(",") if c.strip())

    @cached_property
    def parsed_api_keys(self) -> dict[str, Role]:
        """Map of secret key to role."""
        keys: dict[str, Role] = {}
        for pair in filter(None, (p.strip() for p in self.api_keys.split(","))):
            role, sep, key = pair.partition(":")
            if not sep or role not in ("agent", "trainer") or len(key) < 8:
                # an administrator is always a named account, so that account changes name who made them
                admin = " (administrators are named accounts: kb users add NAME --role admin)" * (role == "admin")
                raise ValueError(
                    "KB_API_KEYS must be comma-separated role:key pairs with role agent or trainer "
                    f"and keys of at least 8 characters{admin}"
                )
            keys[key] = role  # type: ignore[assignment]
        return keys

    @property
    def auth_enabled(self) -> bool:
        return bool(self.parsed_api_keys)

    @property
    def cpu_threads(self) -> int:
        if self.threads:
            return self.threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)

    @cached_property
    def proxy_list(self) -> list[str]:
        """KB_TRUSTED_PROXIES as uvicorn's `forwarded_allow_ips` (validated: a typo must not trust nobody silently)."""
        proxies = []
        for item in filter(None, (p.strip() for p in self.trusted_proxies.split(","))):
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"KB_TRUSTED_PROXIES: '{item}' is not an IP address or CIDR network (e.g. 10.0.0.5,10.1.0.0/16)"
                ) from None
            proxies.append(str(net.network_address) if net.num_addresses == 1 else str(net))
        return proxies

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "service.sqlite3"


# KB_ variables read outside the settings: the CLI client's key (`kb assist replay`) and the tests' own
OTHER_VARIABLES = frozenset({"KB_API_KEY", "KB_TEST_DATABASE_URL", "KB_UPDATE_GOLDEN"})
_warned: set[str] = set()


def unknown_variables(environ: Mapping[str, str], dotenv: Path = Path(".env")) -> list[str]:
    """KB_ variables in the environment or `.env` that no setting reads, each with the setting it was probably meant
    to be: an operator's trial misspelt KB_DATABASE_URL as KB_DATABASE_URI and the service quietly used SQLite."""
    from dotenv import dotenv_values  # pydantic-settings' own dependency, read only here

    known = {f"KB_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    given = {k.upper() for k in environ if k.upper().startswith("KB_")}
    if dotenv.is_file():
        given |= {k.upper() for k in dotenv_values(dotenv) if k.upper().startswith("KB_")}
    out = []
    for name in sorted(given - known):
        near = difflib.get_close_matches(name, sorted(known), n=1)
        out.append(f"{name}（未知设置，已忽略 / unknown, ignored{f'; did you mean {near[0]}?' if near else ''}）")
    return out


def get_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable `ConfigError` that names the KB_ variables.
    A KB_ variable no setting reads is warned about once per process."""
    for problem in unknown_variables(os.environ):
        if problem not in _warned:
            _warned.add(problem)
            logging.getLogger(__name__).warning("配置 / configuration: %s", problem)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise ConfigError("配置无效 / invalid configuration: " + "; ".join(problems)) from None
    except ValueError as exc:
        raise ConfigError(f"配置无效 / invalid configuration: {exc}") from None


def _problem(error: Mapping[str, Any]) -> str:
    """One validation error as `KB_NAME: message (got 'value')`."""
    loc = error.get("loc") or ()
    name = f"KB_{str(loc[0]).upper()}" if loc else "KB_*"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    given = error.get("input")
    if isinstance(given, str) and any(w in name for w in _SECRET_NAMES):
        given = "***"
    elif isinstance(given, str):
        given = hide_password(given)
    return f"{name}: {message}" + (f" (got {given!r})" if isinstance(given, str | int | float) and loc else "")


_SECRET_NAMES = ("KEY", "SECRET", "PASSWORD", "TOKEN")


def hide_password(url: str) -> str:
    """A URL as it may be printed: `postgresql://kb:***@host/db`."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")  # the last @: a password may hold one (written unencoded)
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
