"""Redis Cluster and Sentinel sets on loopback for tests, started through bootstrap.local (each
node a supervised child, gone with the test process), on free ports.

A cluster node also listens on its port + 10000 (the cluster bus): ports are picked so that both
are free and the bus port stays below 65536 (an ephemeral port + 10000 can overflow)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from bootstrap.local.servers import LocalServer, RedisServer, redis_server_binary

SLOTS = 16384
BUS_OFFSET = 10000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """`count` ports whose cluster-bus ports are free too; all below 55536."""
    picked: list[int] = []
    while len(picked) < count:
        port = random.randint(20000, 55535)
        if port in picked:
            continue
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            picked.append(port)
    return picked


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


class ClusterNode(RedisServer):
    """A cluster-enabled redis-server; `binary`: another redis-server than the default one."""

    def __init__(self, data_dir: Path, port: int, binary: str | None = None, node_timeout_ms: int = 5000) -> None:
        super().__init__(
            data_dir,
            port,
            appendonly=False,
            extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                   "--cluster-node-timeout", str(node_timeout_ms)),
        )  # fmt: skip
        self.binary = binary

    def command(self) -> list[str]:
        command = super().command()
        return [self.binary, *command[1:]] if self.binary else command


class RedisCluster:
    """`masters` cluster nodes, slots split evenly, joined with CLUSTER MEET, and `replicas` replicas
    of each master. `uri` names the first node (clients discover the rest)."""

    def __init__(
        self, root: Path, masters: int = 3, replicas: int = 0, binary: str | None = None, node_timeout_ms: int = 5000
    ) -> None:
        ports = cluster_ports(masters * (1 + replicas))
        made = [ClusterNode(root / f"node-{port}", port, binary, node_timeout_ms) for port in ports]
        self.nodes, self.replicas = made[:masters], made[masters:]

    @property
    def uri(self) -> str:
        return self.nodes[0].uri

    def start(self, timeout: float = 30.0) -> None:
        every = [*self.nodes, *self.replicas]
        for node in every:
            node.start(timeout)
        clients = [redis.Redis(port=node.port, decode_responses=True) for node in every]
        masters = clients[: len(self.nodes)]
        try:
            share = SLOTS // len(masters)
            for i, client in enumerate(masters):
                last = SLOTS - 1 if i == len(masters) - 1 else (i + 1) * share - 1
                client.execute_command("CLUSTER ADDSLOTS", *range(i * share, last + 1))
            for node in every[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
            wait_until(
                lambda: all(int(c.cluster("INFO")["cluster_known_nodes"]) == len(clients) for c in clients),
                timeout,
                "every node to know every other",
            )
            for i, replica in enumerate(clients[len(masters) :]):
                master_id = masters[i % len(masters)].execute_command("CLUSTER MYID")
                replica.execute_command("CLUSTER REPLICATE", master_id)
            wait_until(
                lambda: all(c.cluster("INFO")["cluster_state"] == "ok" for c in clients)
                and all(int(m.info("replication")["connected_slaves"]) == len(self.replicas) // len(masters)
                        for m in masters)
                # and every node knows the replicas (gossip): else a client may not fail over to them
                and all(len(entry) == 3 + len(self.replicas) // len(masters)
                        for c in clients for entry in c.execute_command("CLUSTER SLOTS")),
                timeout,
                "cluster_state:ok on every node, every replica connected and known",
            )  # fmt: skip
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in [*self.nodes, *self.replicas]:
            node.stop()


class SentinelServer(LocalServer):
    """One Sentinel watching `master` (quorum 2), from a config file it may rewrite."""

    name = "redis-sentinel"

    def __init__(self, data_dir: Path, master_port: int, service: str) -> None:
        super().__init__(data_dir)
        self.master_port = master_port
        self.service = service

    def command(self) -> list[str]:
        config = self.data_dir / "sentinel.conf"
        if not config.exists():
            config.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.data_dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 10000\n"
            )
        return [redis_server_binary(), str(config), "--sentinel"]

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.port}"


class SentinelSet:
    """A master, one replica and three sentinels (quorum 2): what a Sentinel deployment needs to
    fail over. `hosts` is the value of `redis.sentinel.hosts`."""

    def __init__(self, root: Path, service: str = "mymaster") -> None:
        self.service = service
        self.master = RedisServer(root / "master", appendonly=False)
        self.replica = RedisServer(
            root / "replica", appendonly=False, extra=("--replicaof", "127.0.0.1", str(self.master.port))
        )
        self.sentinels = [SentinelServer(root / f"sentinel-{i}", self.master.port, service) for i in range(3)]

    @property
    def hosts(self) -> str:
        return ",".join(s.uri for s in self.sentinels)

    @property
    def uri(self) -> str:
        """The URL bootstrap takes in sentinel mode: credentials and database only (the host is the
        master's now, which the sentinels may change)."""
        return self.master.uri

    def start(self, timeout: float = 30.0) -> None:
        self.master.start(timeout)
        self.replica.start(timeout)
        replica = redis.Redis(port=self.replica.port)
        try:
            synced = lambda: replica.info("replication")["master_link_status"] == "up"  # noqa: E731
            wait_until(synced, timeout, "the replica in sync")
        finally:
            replica.close()
        for sentinel in self.sentinels:
            sentinel.start(timeout)
        clients = [redis.Redis(port=s.port) for s in self.sentinels]
        try:
            wait_until(
                lambda: all(
                    len(c.sentinel_slaves(self.service)) == 1 and len(c.sentinel_sentinels(self.service)) == 2
                    for c in clients
                ),
                timeout,
                "every sentinel to know the replica and the other sentinels",
            )
        finally:
            for client in clients:
                client.close()

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinels[0].port, decode_responses=True)
        try:
            return int(client.sentinel_get_master_addr_by_name(self.service)[1])
        finally:
            client.close()

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()


def redis7_server() -> str | None:
    """A redis-server 7 for the cluster failover tests (6.2.5, the wheel's, stalled replication after
    a failover): $BOOTSTRAP_TEST_REDIS7 (what .ci/redis7 prepares), or a redis-server 7 on PATH."""
    for candidate in (os.environ.get("BOOTSTRAP_TEST_REDIS7"), shutil.which("redis-server")):
        if not candidate:
            continue
        try:
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=10).stdout
        except OSError:
            continue
        version = out.partition(" v=")[2].split(".")[0]
        if version.isdigit() and int(version) >= 7:
            return candidate
    return None
