"""The ``mmsearch`` command line: one entry point, one subcommand group per stage.

Each stage package registers its own group (``register(subparsers)``), imported
lazily so ``mmsearch --help`` and ``mmsearch node ...`` work without the
export extra (PyTorch) installed. Errors from our hierarchy print as one clear
line plus context and exit 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmsearch.exceptions import MMSearchError

# (module, attribute) of every stage's register(subparsers) function.
_STAGE_GROUPS = (
    ("onnx_models.cli", "register"),
    ("indexer.cli", "register"),
    ("query_service.cli", "register"),
    ("query_service.relevance.cli", "register"),
    ("mmsearch.demo", "register"),
)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _node_from_args(args: argparse.Namespace) -> Any:
    from mmsearch.esnode import LocalNode, NodeConfig

    kwargs: dict[str, Any] = {"name": args.name, "secure": args.secure, "heap": args.heap}
    for key in ("version", "port", "state_dir", "cache_dir", "java_home"):
        value = getattr(args, key, None)
        if value is not None:
            kwargs[key] = value
    return LocalNode(NodeConfig(**kwargs))


def _register_node(subparsers: Any) -> None:
    node = subparsers.add_parser("node", help="manage the local single-node Elasticsearch")
    node_sub = node.add_subparsers(dest="node_command", required=True)
    for name, help_text in (
        ("provision", "download (Maven) and unpack the distribution"),
        ("start", "start the node, or reuse the running one"),
        ("stop", "stop the node (no-op when not running)"),
        ("status", "report pid, URL and health"),
    ):
        cmd = node_sub.add_parser(name, help=help_text)
        cmd.add_argument("--name", default="local", help="node name; each name has its own data dir")
        cmd.add_argument("--version", help="Elasticsearch 9.x version")
        cmd.add_argument("--port", type=int, help="HTTP port (0 = any free port)")
        cmd.add_argument("--heap", default="1g")
        cmd.add_argument("--secure", action="store_true", help="enable security with basic auth")
        cmd.add_argument("--state-dir", type=Path)
        cmd.add_argument("--cache-dir", type=Path)
        cmd.add_argument("--java-home", type=Path, help="JDK >= 21 to run Elasticsearch with")
        cmd.set_defaults(handler=_run_node)
    caps = subparsers.add_parser("capabilities", help="report the connected cluster's modules and features")
    caps.set_defaults(handler=_run_capabilities)


def _run_node(args: argparse.Namespace) -> int:
    node = _node_from_args(args)
    if args.node_command == "provision":
        print_json({"dist_dir": str(node.provision())})
        return 0
    info = {"start": node.start, "stop": node.stop, "status": node.status}[args.node_command]()
    print_json(info.public())
    if args.node_command == "start" and info.secure:
        print(f"# credentials: user {info.username}, password in {Path(info.node_dir) / 'node.json'}",
              file=sys.stderr)
    return 0 if args.node_command != "status" or info.running else 1


def _run_capabilities(args: argparse.Namespace) -> int:
    from mmsearch.capabilities import detect_capabilities
    from mmsearch.config import Settings

    print_json(detect_capabilities(Settings.load(config_file=args.config).es_client()).to_dict())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmsearch", description="Hybrid multimodal product search for Elasticsearch")
    parser.add_argument("--config", type=Path, help="settings file (JSON/YAML); env MMSEARCH_* overrides it")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _register_node(subparsers)
    for module_name, attribute in _STAGE_GROUPS:
        try:
            register: Callable[[Any], None] = getattr(importlib.import_module(module_name), attribute)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # stage not built yet
            raise
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MMSearchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for key, value in exc.context.items():
            text = str(value)
            print(f"  {key}: {text if len(text) < 2000 else text[-2000:]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
