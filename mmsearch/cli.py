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

from mmsearch.exceptions import MMSearchError, NodeError

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


def _cluster_from_args(args: argparse.Namespace) -> Any:
    """A LocalCluster for --nodes > 1, or for a name that a cluster was started under; else None."""
    import dataclasses

    from mmsearch.escluster import ClusterConfig, LocalCluster

    kwargs: dict[str, Any] = {"name": args.name, "heap": args.heap or "512m"}
    for key, target in (("version", "version"), ("port", "base_port"), ("state_dir", "state_dir"),
                        ("cache_dir", "cache_dir"), ("java_home", "java_home")):
        if getattr(args, key, None) is not None:
            kwargs[target] = getattr(args, key)
    if args.nodes is not None and args.nodes <= 1:
        return None
    config = ClusterConfig(**kwargs, **({"nodes": args.nodes} if args.nodes else {}))
    if args.nodes is None:  # stop/status/start --name c: a cluster if one was started under that name
        saved = LocalCluster(config).saved_ports()
        if saved is None:
            return None
        config = dataclasses.replace(config, nodes=len(saved))
    if args.secure:
        raise NodeError("the local cluster runs without security (no TLS between nodes); drop --secure",
                        nodes=config.nodes)
    return LocalCluster(config)


def _register_node(subparsers: Any) -> None:
    node = subparsers.add_parser(
        "node", help="manage the local Elasticsearch: one node, or a cluster of N (--nodes)",
        description="One local node (default), or with --nodes N a cluster of N nodes on loopback: one cluster "
                    "name, each node its own data dir (<state_dir>/es/<name>-<i>) and HTTP/transport ports "
                    "(--port B: HTTP B+i, transport B+100+i; default free ports). start waits for green (yellow "
                    "when replicas cannot be placed); stop/status --name <name> find the cluster by its name.")
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
        cmd.add_argument("--heap", help="JVM heap per node (default 1g; 512m per node of a cluster)")
        cmd.add_argument("--nodes", type=int, help="start a local cluster of N nodes (1..9; 3 survives losing one)")
        cmd.add_argument("--secure", action="store_true",
                         help="enable security: HTTPS with the node's own CA, and a file-realm admin user")
        cmd.add_argument("--state-dir", type=Path)
        cmd.add_argument("--cache-dir", type=Path)
        cmd.add_argument("--java-home", type=Path, help="JDK >= 21 to run Elasticsearch with")
        cmd.set_defaults(handler=_run_node)
    _register_credentials(node_sub)
    caps = subparsers.add_parser("capabilities", help="report the connected cluster's modules and features")
    caps.set_defaults(handler=_run_capabilities)


def _add_role_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--role", required=True, choices=("service", "indexer"),
                     help="service: read the product alias (+ append events); indexer: build/swap/rollback/"
                          "status/prune its versions. The privileges and why: mmsearch/es_security.py")
    cmd.add_argument("--alias", required=True, help="the products alias the credentials are limited to")
    cmd.add_argument("--events-index", help="service only: also append to this events index (created now, "
                                            "with the caller's rights, if missing)")
    cmd.add_argument("--read-index", action="append", default=[],
                     help="service only: another index the proxy may relay reads of (Settings.proxy_indices)")


def _register_credentials(node_sub: Any) -> None:
    creds = node_sub.add_parser(
        "credentials", help="add a least-privilege file-realm user to the local secure node; prints its "
                            "password once (the local node cannot store API keys)")
    _add_role_arguments(creds)
    creds.add_argument("--user", help="user name (default mmsearch-<role>-<alias>)")
    creds.add_argument("--name", default="local", help="node name")
    creds.add_argument("--state-dir", type=Path)
    creds.set_defaults(handler=_run_credentials)
    key = node_sub.add_parser(
        "api-key", help="mint a least-privilege API key on the cluster the settings point at (MMSEARCH_ES_*, "
                        "admin credentials); prints the encoded key once")
    _add_role_arguments(key)
    key.add_argument("--expiration", help="ES time unit, e.g. 90d (default: never expires)")
    key.set_defaults(handler=_run_api_key)


def _ensure_events_index(client: Any, events_index: str | None) -> None:
    if events_index:
        from mmsearch.es_security import ensure_index
        from query_service.relevance.events import EVENTS_MAPPING

        ensure_index(client, events_index, EVENTS_MAPPING)


def _run_credentials(args: argparse.Namespace) -> int:
    from mmsearch.config import Settings
    from mmsearch.es_security import role_for, role_name
    from mmsearch.esnode import LocalNode, NodeConfig

    role = role_for(args.role, args.alias, args.events_index, args.read_index)
    config = {"name": args.name, "secure": True, **({"state_dir": args.state_dir} if args.state_dir else {})}
    node = LocalNode(NodeConfig(**config))
    info = node.status()
    if not info.running or not info.secure:
        raise NodeError("no secure node of that name is running; start one with `mmsearch node start --secure`",
                        name=args.name, running=info.running, secure=info.secure)
    admin = Settings(es_hosts=(info.url,), username=info.username, password=info.password, ca_certs=info.ca_certs)
    _ensure_events_index(admin.es_client(), args.events_index)
    user = args.user or f"mmsearch-{args.role}-{args.alias}"
    password = node.add_file_user(user, role_name(args.role, args.alias), role)
    print_json({"url": info.url, "username": user, "password": password, "ca_certs": info.ca_certs,
                "role": role_name(args.role, args.alias)})
    print("# shown once; use MMSEARCH_ES_USERNAME / MMSEARCH_ES_PASSWORD / MMSEARCH_ES_CA_CERTS", file=sys.stderr)
    return 0


def _run_api_key(args: argparse.Namespace) -> int:
    from mmsearch.config import Settings
    from mmsearch.es_security import create_api_key, role_for, role_name

    role = role_for(args.role, args.alias, args.events_index, args.read_index)
    client = Settings.load(config_file=args.config).es_client()
    _ensure_events_index(client, args.events_index)
    name = role_name(args.role, args.alias)
    key = create_api_key(client, name, {name: role}, args.expiration)
    print_json({"id": key.id, "name": key.name, "encoded": key.encoded})
    print("# shown once; use it as MMSEARCH_ES_API_KEY", file=sys.stderr)
    return 0


def _run_node(args: argparse.Namespace) -> int:
    cluster = _cluster_from_args(args) if args.node_command != "provision" else None
    if cluster is not None:
        result = {"start": cluster.start, "stop": cluster.stop, "status": cluster.status}[args.node_command]()
        print_json(result.public())
        return 0 if args.node_command != "status" or result.running else 1
    args.heap = args.heap or "1g"
    node = _node_from_args(args)
    if args.node_command == "provision":
        print_json({"dist_dir": str(node.provision())})
        return 0
    info = {"start": node.start, "stop": node.stop, "status": node.status}[args.node_command]()
    print_json(info.public())
    if args.node_command == "start" and info.secure:
        print(f"# credentials: user {info.username}, password in {Path(info.node_dir) / 'node.json'}; "
              f"CA certificate {info.ca_certs} (MMSEARCH_ES_CA_CERTS)", file=sys.stderr)
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
