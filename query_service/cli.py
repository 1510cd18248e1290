"""``mmsearch serve``: run the query service (gunicorn workers, or Flask's server for debugging)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from mmsearch.config import Settings
from mmsearch.exceptions import ConfigError


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the query service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=int(os.environ.get("MMSEARCH_WORKERS", "2")),
                       help="gunicorn workers (0 = Flask's single-process server, for debugging)")
    serve.add_argument("--model", help="model package dir (default: MMSEARCH_MODEL_DIR)")
    serve.add_argument("--experiments", help="experiment config file (enables A/B and POST /events)")
    serve.add_argument("--ranking", help="default ranking and proxy options, JSON or YAML (default: MMSEARCH_RANKING)")
    serve.set_defaults(handler=_run_serve)


def control_socket_path(host: str, port: int, environ: Mapping[str, str] = os.environ) -> str:
    """The ``gunicornc`` control socket of the service bound to ``host:port``.

    gunicorn's default is one path per user: a second service on the host (another port, an A/B
    pair, a test run) would take it over, ``gunicornc`` would then manage the wrong service, and
    whichever stopped first would delete the other's socket. One socket per bound address keeps
    them apart and stays predictable for the operator.
    """
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = runtime if runtime and os.path.isdir(runtime) else os.path.join(os.path.expanduser("~"), ".gunicorn")
    return os.path.join(base, f"mmsearch-{host}-{port}.ctl")


def _run_serve(args: argparse.Namespace) -> int:
    if args.model:
        os.environ["MMSEARCH_MODEL_DIR"] = args.model
    if args.experiments:
        os.environ["MMSEARCH_EXPERIMENTS"] = args.experiments
    if args.ranking:
        os.environ["MMSEARCH_RANKING"] = args.ranking
    # The file the workers will read (environment or MMSEARCH_CONFIG, as wsgi.create_app finds it):
    # a bad one fails here, once, not in every worker after the fork.
    ranking_file = Settings.load().ranking_file
    if ranking_file is not None:
        from query_service.ranking import load_service_ranking

        load_service_ranking(ranking_file)
    if not os.environ.get("MMSEARCH_MODEL_DIR"):
        raise ConfigError("no model: pass --model DIR or set MMSEARCH_MODEL_DIR", setting="model_dir")
    if not 0 <= args.port <= 65535 or args.workers < 0:
        raise ConfigError("port must be 0..65535 and workers >= 0")
    if args.workers == 0:
        from query_service.wsgi import create_app

        create_app().run(host=args.host, port=args.port, threaded=True)
        return 0
    gunicorn = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable), "gunicorn")
    # gunicorn's own lines are JSON too (jsonlog.GunicornJsonLogger). No gunicorn access log: the
    # app already writes one JSON line per request, with the variant and what degraded;
    # GUNICORN_CMD_ARGS="--access-logfile -" adds gunicorn's (as JSON) for those who want it.
    command = [gunicorn, "--workers", str(args.workers), "--threads", "4", "--bind", f"{args.host}:{args.port}",
               "--timeout", "60", "--graceful-timeout", "20",
               "--logger-class", "query_service.jsonlog.GunicornJsonLogger",
               "--control-socket", control_socket_path(args.host, args.port), "query_service.wsgi:create_app()"]
    os.execv(gunicorn, command)
    return 0  # not reached
