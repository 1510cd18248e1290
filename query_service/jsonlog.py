"""JSON log lines: the app's (one per request, errors with their traceback) and gunicorn's own.

Kept apart from ``query_service.app`` so that the gunicorn master, which only logs, does not
import Flask, numpy and the engine for its log format.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gunicorn.glogging import Logger


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
                 "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger("mmsearch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class GunicornJsonLogger(Logger):
    """gunicorn's logger with every line as JSON (``--logger-class``): its start-up, worker boots,
    timeouts and, when switched on, its access log, in the same format as the app's lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonLogFormatter())
