"""How `kb serve` logs: every line with its time, level and process (several workers write to one stream), the
service's own warnings included; one line per request only when KB_ACCESS_LOG is on."""

from __future__ import annotations

from typing import Any

_LINE = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def log_config() -> dict[str, Any]:
    """The `logging.dictConfig` of the server (given to uvicorn, applied in every worker process)."""
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": _LINE},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(levelname)s [%(process)d] access: %(client_addr)s "%(request_line)s" '
                "%(status_code)s",
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {**stream, "formatter": "default"},
            "access": {**stream, "formatter": "access"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            # The service's own modules (loggers named after them) at INFO; other libraries' chatter stays out.
            **{name: {"level": "INFO"} for name in ("kb", "kb_service", "ingest", "api")},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
