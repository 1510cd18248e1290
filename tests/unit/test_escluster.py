"""The pure parts of the local cluster: config checks, port choice, per-node and bootstrap settings,
the health verdict, and the CLI's choice between a node and a cluster. No server is started."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mmsearch import retries
from mmsearch.cli import build_parser
from mmsearch.escluster import (
    ClusterConfig,
    LocalCluster,
    NodePorts,
    choose_ports,
    cluster_node_settings,
    health_verdict,
    needs_bootstrap,
)
from mmsearch.esnode import node_settings
from mmsearch.exceptions import NodeError


@pytest.mark.parametrize("kwargs", [{"nodes": 0}, {"nodes": 10}, {"name": "Bad Name"}, {"heap": "lots"},
                                    {"base_port": 80}, {"base_port": 65500}, {"version": "8.15.0"}])
def test_config_refuses_what_cannot_run(kwargs, tmp_path):
    with pytest.raises(NodeError):
        ClusterConfig(state_dir=tmp_path, **kwargs)


def test_each_node_has_its_own_name_and_dir_under_the_state_dir(tmp_path):
    config = ClusterConfig(name="c", nodes=3, state_dir=tmp_path)
    assert config.node_names == ["c-0", "c-1", "c-2"] and config.cluster_name == "mmsearch-c"
    dirs = [LocalCluster(config).node(i).config.node_dir for i in range(3)]
    assert len(set(dirs)) == 3 and all(d.parent == config.state_file.parent.parent for d in dirs)
    with pytest.raises(NodeError):
        LocalCluster(config).node(3)


def test_free_ports_are_distinct_even_when_the_picker_repeats_itself():
    handed_out = iter([5000, 5000, 5001, 5002, 5001, 5003, 5004, 5005])
    ports = choose_ports(3, 0, None, port_free=lambda p: True, pick_free=lambda: next(handed_out))
    every = [p for node in ports for p in (node.http, node.transport)]
    assert every == [5000, 5001, 5002, 5003, 5004, 5005]


def test_a_base_port_gives_http_and_transport_ports_a_hundred_apart():
    ports = choose_ports(3, 9400, None, port_free=lambda p: True, pick_free=lambda: pytest.fail("no free pick"))
    assert ports == [NodePorts(9400, 9500), NodePorts(9401, 9501), NodePorts(9402, 9502)]


def test_saved_ports_are_reused_while_free_and_kept_while_a_node_runs_on_them():
    saved = [NodePorts(7000, 7100), NodePorts(7001, 7101)]
    fresh = itertools.count(8000)
    assert choose_ports(2, 0, saved, port_free=lambda p: True, pick_free=lambda: next(fresh)) == saved
    taken = choose_ports(2, 0, saved, port_free=lambda p: p != 7101, pick_free=lambda: next(fresh))
    assert taken == [NodePorts(8000, 8001), NodePorts(8002, 8003)]  # nothing runs: all new, seeds stay coherent
    kept = choose_ports(2, 0, saved, port_free=lambda p: p != 7101, pick_free=lambda: next(fresh), keep_saved=True)
    assert kept == saved
    resized = choose_ports(3, 0, saved, port_free=lambda p: True, pick_free=lambda: next(fresh))
    assert len(resized) == 3 and not set(resized) & set(saved)


def test_node_settings_form_one_cluster_and_bootstrap_only_when_asked(tmp_path):
    config = ClusterConfig(name="c", nodes=3, state_dir=tmp_path)
    ports = [NodePorts(9200 + i, 9300 + i) for i in range(3)]
    first = cluster_node_settings(config, ports, 1, bootstrap=True)
    assert first["cluster.name"] == "mmsearch-c" and first["transport.port"] == "9301"
    assert first["discovery.seed_hosts"] == "127.0.0.1:9300,127.0.0.1:9301,127.0.0.1:9302"
    assert first["cluster.initial_master_nodes"] == "c-0,c-1,c-2"
    assert first["discovery.type"] is None
    assert "cluster.initial_master_nodes" not in cluster_node_settings(config, ports, 1, bootstrap=False)


def test_the_merged_settings_drop_single_node_discovery_and_keep_the_node_basics(tmp_path):
    config = ClusterConfig(name="c", nodes=3, state_dir=tmp_path)
    ports = [NodePorts(9200 + i, 9300 + i) for i in range(3)]
    node = LocalCluster(config).node(2, ports, bootstrap=True)
    merged = node_settings(node.config, node.config.port, node.config.node_dir, None)
    assert "discovery.type" not in merged
    assert (merged["node.name"], merged["http.port"], merged["transport.port"]) == ("c-2", "9202", "9302")
    assert merged["cluster.name"] == "mmsearch-c" and merged["network.host"] == "127.0.0.1"
    assert merged["path.data"] == str(node.config.node_dir / "data")
    # A lone node keeps single-node discovery and its own cluster name.
    lone = LocalCluster(config).node(2)
    alone = node_settings(lone.config, 9299, lone.config.node_dir, None)
    assert alone["discovery.type"] == "single-node" and alone["cluster.name"] == "mmsearch-c-2"


def test_bootstrap_is_needed_until_a_node_holds_cluster_state(tmp_path):
    dirs = [tmp_path / f"n{i}" / "data" for i in range(3)]
    assert needs_bootstrap(dirs)
    dirs[0].mkdir(parents=True)
    assert needs_bootstrap(dirs)  # an empty data dir has joined nothing
    (dirs[2] / "_state").mkdir(parents=True)
    assert not needs_bootstrap(dirs)


def test_health_verdict_waits_for_every_node_and_reports_a_settled_yellow():
    grace = retries.CLUSTER_GREEN_GRACE_S
    assert health_verdict(None, 3, 0) is None  # no master yet
    assert health_verdict({"status": "green", "number_of_nodes": 2}, 3, 0) is None
    assert health_verdict({"status": "green", "number_of_nodes": 3}, 3, 0) == "green"
    assert health_verdict({"status": "yellow", "number_of_nodes": 3}, 3, grace / 2) is None
    assert health_verdict({"status": "yellow", "number_of_nodes": 3}, 3, grace) == "yellow"
    assert health_verdict({"status": "red", "number_of_nodes": 3}, 3, grace * 10) is None


def test_saved_ports_round_trip_and_a_damaged_file_reads_as_none(tmp_path):
    cluster = LocalCluster(ClusterConfig(name="c", nodes=2, state_dir=tmp_path))
    assert cluster.saved_ports() is None
    cluster.config.state_file.parent.mkdir(parents=True)
    cluster.config.state_file.write_text('{"ports": [{"http": 1}]}')
    assert cluster.saved_ports() is None


def test_the_cli_offers_nodes_and_refuses_a_secure_cluster(tmp_path, capsys):
    from mmsearch.cli import main

    args = build_parser().parse_args(["node", "start", "--nodes", "3", "--name", "c"])
    assert args.nodes == 3 and args.heap is None
    assert main(["node", "start", "--nodes", "3", "--secure", "--state-dir", str(tmp_path)]) == 2
    assert "without security" in capsys.readouterr().err
    # status of a name no cluster was started under is the single node's (not running: exit 1).
    assert main(["node", "status", "--name", "nothing", "--state-dir", str(tmp_path)]) == 1
    assert '"cluster_name"' not in capsys.readouterr().out


def test_status_of_a_cluster_name_reports_every_node(tmp_path: Path, capsys):
    from mmsearch.cli import main

    cluster = LocalCluster(ClusterConfig(name="c", nodes=2, state_dir=tmp_path))
    cluster.config.state_file.parent.mkdir(parents=True)
    cluster.config.state_file.write_text('{"ports": [{"http": 1, "transport": 2}, {"http": 3, "transport": 4}]}')
    assert main(["node", "status", "--name", "c", "--state-dir", str(tmp_path)]) == 1  # found, not running
    out = capsys.readouterr().out
    assert '"cluster_name": "mmsearch-c"' in out and '"c-1"' in out
