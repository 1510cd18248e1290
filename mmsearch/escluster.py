"""Local multi-node Elasticsearch: N nodes of the same distribution on loopback, one cluster.

Each node is a :class:`mmsearch.esnode.LocalNode` (its own config, data and logs under
``<state_dir>/es/<cluster>-<i>/``) started with cluster settings on top of the single-node ones:
one ``cluster.name``, a fixed transport port per node, ``discovery.seed_hosts`` listing every
node's transport address, and every node master- and data-eligible (the defaults).

Bootstrapping: ``cluster.initial_master_nodes`` names the nodes on the very first start only.
Elasticsearch asks that it be gone once the cluster has formed: a node restarted with it could
bootstrap a second cluster of its own if it could not reach the others. A node that has joined
a cluster keeps its state in ``data/_state``; when any node has one, no node gets the setting.

``<es_root>/clusters/<name>.json`` records the ports chosen on the first start, so a restarted
node (``start_node``) comes back on the transport port the others know. Security (TLS between
nodes) is not supported here: the local cluster is for scale-out and fault tests on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.error
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmsearch import retries
from mmsearch.config import DEFAULT_STATE_DIR
from mmsearch.esnode import (
    DEFAULT_CACHE_DIR,
    DEFAULT_VERSION,
    LocalNode,
    NodeConfig,
    NodeInfo,
    free_port,
    http_get_json,
    pid_alive,
    port_in_use,
)
from mmsearch.exceptions import NodeError

#: Three master-eligible nodes survive the loss of one; more than a few JVMs do not fit a dev box.
MAX_NODES = 9
#: With a fixed base port, transport ports sit this far above the HTTP ones (ES's own 9200/9300 habit).
TRANSPORT_OFFSET = 100


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how the local cluster runs. ``base_port=0`` picks free ports on first start;
    ``base_port=B`` gives node i HTTP port B+i and transport port B+100+i."""

    name: str = "cluster"
    nodes: int = 3
    heap: str = "512m"
    base_port: int = 0
    version: str = DEFAULT_VERSION
    state_dir: Path = DEFAULT_STATE_DIR
    cache_dir: Path = DEFAULT_CACHE_DIR
    java_home: Path | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_-]+", self.name):
            raise NodeError("cluster name may only hold a-z 0-9 _ -", name=self.name)
        if not (isinstance(self.nodes, int) and 1 <= self.nodes <= MAX_NODES):
            raise NodeError(f"a local cluster has 1..{MAX_NODES} nodes", nodes=self.nodes)
        if self.base_port and not (1024 <= self.base_port <= 65535 - TRANSPORT_OFFSET - self.nodes):
            raise NodeError("base port must leave room for the HTTP and transport ports (0 = free ports)",
                            base_port=self.base_port)
        # Validates version, heap and paths the way a single node does.
        self.node_config(0, http_port=0, extra_settings={})
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())

    @property
    def node_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.nodes)]

    @property
    def cluster_name(self) -> str:
        return f"mmsearch-{self.name}"

    def node_config(self, index: int, http_port: int, extra_settings: dict[str, str | None]) -> NodeConfig:
        return NodeConfig(name=f"{self.name}-{index}", version=self.version, port=http_port, heap=self.heap,
                          state_dir=self.state_dir, cache_dir=self.cache_dir, java_home=self.java_home,
                          extra_settings=extra_settings)

    @property
    def state_file(self) -> Path:
        return self.node_config(0, 0, {}).es_root / "clusters" / f"{self.name}.json"


@dataclass(frozen=True)
class NodePorts:
    http: int
    transport: int


def choose_ports(count: int, base_port: int, saved: Sequence[NodePorts] | None, port_free: Callable[[int], bool],
                 pick_free: Callable[[], int], keep_saved: bool = False) -> list[NodePorts]:
    """The ports of every node: the saved ones when they are still usable (or must be kept because
    some node runs on them), else ``base_port`` + i / + 100 + i, else distinct free ports."""
    if saved is not None and len(saved) == count and (
            keep_saved or all(port_free(p) for node in saved for p in (node.http, node.transport))):
        return list(saved)
    if base_port:
        return [NodePorts(base_port + i, base_port + TRANSPORT_OFFSET + i) for i in range(count)]
    chosen: list[int] = []
    while len(chosen) < 2 * count:  # a port handed out twice in a row would give two nodes one address
        port = pick_free()
        if port not in chosen:
            chosen.append(port)
    return [NodePorts(chosen[2 * i], chosen[2 * i + 1]) for i in range(count)]


def cluster_node_settings(config: ClusterConfig, ports: Sequence[NodePorts], index: int,
                          bootstrap: bool) -> dict[str, str | None]:
    """The settings node ``index`` gets on top of :func:`mmsearch.esnode.node_settings`."""
    settings: dict[str, str | None] = {
        "cluster.name": config.cluster_name,
        "transport.port": str(ports[index].transport),
        "discovery.type": None,  # single-node discovery would make every node a cluster of its own
        "discovery.seed_hosts": ",".join(f"127.0.0.1:{p.transport}" for p in ports),
    }
    if bootstrap:
        settings["cluster.initial_master_nodes"] = ",".join(config.node_names)
    return settings


def needs_bootstrap(data_dirs: Sequence[Path]) -> bool:
    """True until some node has joined a cluster (ES keeps its cluster state in ``data/_state``)."""
    return not any((data_dir / "_state").is_dir() for data_dir in data_dirs)


def health_verdict(health: dict[str, Any] | None, expected_nodes: int, yellow_for_s: float) -> str | None:
    """``green``, ``yellow`` (all nodes in, yellow for longer than the grace: replicas that cannot be
    placed) or ``None`` (keep waiting: no master yet, nodes missing, shards still allocating)."""
    if not health or int(health.get("number_of_nodes", 0)) < expected_nodes:
        return None
    status = health.get("status")
    if status == "green":
        return "green"
    if status == "yellow" and yellow_for_s >= retries.CLUSTER_GREEN_GRACE_S:
        return "yellow"
    return None


@dataclass
class ClusterInfo:
    """What ``start`` and ``status`` report."""

    name: str
    cluster_name: str
    nodes: list[NodeInfo]
    health: str | None = None
    number_of_nodes: int = 0
    unassigned_shards: int = 0
    reused: bool = False
    start_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def urls(self) -> list[str]:
        """HTTP URLs of the nodes that run (a client listing them all fails over between them)."""
        return [node.url for node in self.nodes if node.running and node.url]

    @property
    def running(self) -> bool:
        return any(node.running for node in self.nodes)

    def public(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "nodes"}
        return {**data, "urls": self.urls, "nodes": [node.public() for node in self.nodes]}


class LocalCluster:
    """Manage a local cluster; ``start``/``stop``/``status`` are safe to call repeatedly."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()

    # -- state ------------------------------------------------------------------------------

    def saved_ports(self) -> list[NodePorts] | None:
        try:
            data = json.loads(self.config.state_file.read_text())
            return [NodePorts(int(p["http"]), int(p["transport"])) for p in data["ports"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_ports(self, ports: Sequence[NodePorts]) -> None:
        path = self.config.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"name": self.config.name, "ports": [asdict(p) for p in ports]}, indent=2))
        tmp.replace(path)

    def node(self, index: int, ports: Sequence[NodePorts] | None = None, bootstrap: bool = False) -> LocalNode:
        """The manager of node ``index`` (with the settings of a start when ``ports`` are given)."""
        if not 0 <= index < self.config.nodes:
            raise NodeError("no such node in the cluster", index=index, nodes=self.config.nodes)
        if ports is None:
            saved = self.saved_ports()
            return LocalNode(self.config.node_config(index, saved[index].http if saved else 0, {}))
        extra = cluster_node_settings(self.config, ports, index, bootstrap)
        return LocalNode(self.config.node_config(index, ports[index].http, extra))

    def _data_dirs(self) -> list[Path]:
        return [self.node(i).config.node_dir / "data" for i in range(self.config.nodes)]

    # -- public API ---------------------------------------------------------------------------

    def status(self) -> ClusterInfo:
        nodes = [self.node(i).status() for i in range(self.config.nodes)]
        info = ClusterInfo(name=self.config.name, cluster_name=self.config.cluster_name, nodes=nodes)
        health = self.health(info.urls)
        if health:
            info.health = str(health.get("status"))
            info.number_of_nodes = int(health.get("number_of_nodes", 0))
            info.unassigned_shards = int(health.get("unassigned_shards", 0))
        return info

    def health(self, urls: Sequence[str]) -> dict[str, Any] | None:
        """``_cluster/health`` from the first node that answers (None while no master is elected)."""
        for url in urls:
            try:
                return http_get_json(f"{url}/_cluster/health", timeout=3.0)
            except (OSError, ValueError, urllib.error.URLError):
                continue
        return None

    def start(self) -> ClusterInfo:
        """Start every node (at once: the cluster forms only when a majority is up) and wait for green,
        or yellow when replicas cannot be placed. A running healthy cluster is reused."""
        started = time.monotonic()
        current = self.status()
        if all(node.running for node in current.nodes) and current.number_of_nodes == self.config.nodes:
            current.reused = True
            return current
        self.node(0).provision()  # once, before the nodes start side by side
        any_running = current.running
        ports = choose_ports(self.config.nodes, self.config.base_port, self.saved_ports(),
                             lambda port: not port_in_use(port), free_port, keep_saved=any_running)
        for node_ports, node in zip(ports, current.nodes):
            if not node.running and port_in_use(node_ports.transport):
                raise NodeError("a transport port of the cluster is taken by another process; stop it or "
                                "delete the cluster's state file to pick new ports", port=node_ports.transport,
                                state_file=str(self.config.state_file))
        self._save_ports(ports)
        bootstrap = needs_bootstrap(self._data_dirs())
        nodes = [self.node(i, ports, bootstrap) for i in range(self.config.nodes)]
        with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix=f"es-{self.config.name}") as pool:
            list(pool.map(lambda node: node.start(), nodes))  # re-raises the first node's failure
        info = self.wait_for_health(self.config.nodes, retries.CLUSTER_STARTUP_TIMEOUT_S)
        info.start_s = round(time.monotonic() - started, 1)
        info.extra["bootstrapped"] = bootstrap
        return info

    def wait_for_health(self, expected_nodes: int, timeout_s: float) -> ClusterInfo:
        """Wait until ``expected_nodes`` nodes are in and the cluster is green (or settled at yellow)."""
        deadline = time.monotonic() + timeout_s
        yellow_since: float | None = None
        info = self.status()
        while time.monotonic() < deadline:
            health = self.health(info.urls)
            yellow = bool(health) and health.get("status") == "yellow" and int(
                health.get("number_of_nodes", 0)) >= expected_nodes
            yellow_since = (yellow_since or time.monotonic()) if yellow else None
            verdict = health_verdict(health, expected_nodes, time.monotonic() - yellow_since if yellow_since else 0)
            if verdict is not None:
                info = self.status()
                info.extra["why_yellow"] = (f"{info.unassigned_shards} shard copies cannot be allocated"
                                            if verdict == "yellow" else None)
                return info
            time.sleep(retries.NODE_POLL_INTERVAL_S)
            info = self.status()
        raise NodeError("the cluster did not become healthy in time", timeout_s=timeout_s,
                        expected_nodes=expected_nodes, number_of_nodes=info.number_of_nodes, health=info.health,
                        state_file=str(self.config.state_file))

    def stop(self) -> ClusterInfo:
        """Stop every node (side by side: each may take seconds to flush)."""
        nodes = [self.node(i) for i in range(self.config.nodes)]
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(lambda node: node.stop(), nodes))
        return self.status()

    def kill(self, index: int) -> NodeInfo:
        """SIGKILL node ``index`` (a crash: no flush, no goodbye to the master) and wait until it is gone."""
        info = self.node(index).status()
        if not info.running or info.pid is None:
            raise NodeError("that node is not running", node=info.name)
        os.kill(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + retries.NODE_KILL_TIMEOUT_S
        while pid_alive(info.pid):
            if time.monotonic() > deadline:
                raise NodeError("the node outlived SIGKILL", node=info.name, pid=info.pid)
            time.sleep(0.05)
        info.running = False
        info.health = None
        return info

    def start_node(self, index: int) -> NodeInfo:
        """Start one node of a cluster that has formed before, on its saved ports; returns once it has
        joined (its own health call answers). A node of a never-formed cluster needs ``start``."""
        ports = self.saved_ports()
        if ports is None or needs_bootstrap(self._data_dirs()):
            raise NodeError("the cluster has never formed; start it whole first", name=self.config.name)
        return self.node(index, ports, bootstrap=False).start()

    def elected_master(self) -> int | None:
        """Index of the node that is the elected master (fault tests kill it on purpose), if any."""
        for url in self.status().urls:
            try:
                body = http_get_json(f"{url}/_nodes/_master", timeout=3.0)
            except (OSError, ValueError, urllib.error.URLError):
                continue
            names = [str(node.get("name")) for node in body.get("nodes", {}).values()]
            return self.config.node_names.index(names[0]) if names and names[0] in self.config.node_names else None
        return None
