"""What kind of MongoDB server plan and apply talk to, read from `hello`: a standalone server, a
replica set member (its set, primary and election) or a mongos (`msg: "isdbgrid"`).

The role decides whether createIndexes carries `commitQuorum` (a standalone server refuses it),
whether `shard:` declarations can apply (only through a mongos), and lets apply notice that the
replica set elected another primary between the plan and an operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

STANDALONE = "standalone"
REPLICA_SET = "replica set"
MONGOS = "mongos"
CAPPED_TTL_WIRE_VERSION = 22  # MongoDB 7.1
TTL_IN_PLACE_WIRE_VERSION = 14  # MongoDB 5.1: collMod adds expireAfterSeconds to an existing index
UNIQUE_IN_PLACE_WIRE_VERSION = 17  # MongoDB 6.0: collMod prepareUnique, then unique


@dataclass(frozen=True)
class ServerRole:
    kind: str = STANDALONE
    set_name: str | None = None
    primary: str | None = None  # host:port, as the set names it
    election_id: str | None = None  # changes with every election won
    wire_version: int | None = None  # hello's maxWireVersion: what the server can do (22: MongoDB 7.1)

    @property
    def is_mongos(self) -> bool:
        return self.kind == MONGOS

    @property
    def ttl_on_capped(self) -> bool:
        """A TTL index on a capped collection: MongoDB 7.1 (wire version 22) and later build one."""
        return self.wire_version is None or self.wire_version >= CAPPED_TTL_WIRE_VERSION

    @property
    def adds_ttl_in_place(self) -> bool:
        """collMod turns an existing index into a TTL index (MongoDB 5.1+): no rebuild. An unknown
        server rebuilds, as every server can."""
        return self.wire_version is not None and self.wire_version >= TTL_IN_PLACE_WIRE_VERSION

    @property
    def makes_unique_in_place(self) -> bool:
        """collMod turns an existing index unique (MongoDB 6.0+, `prepareUnique` then `unique`): the
        index stays in place throughout, and nothing changes when the data holds duplicates."""
        return self.wire_version is not None and self.wire_version >= UNIQUE_IN_PLACE_WIRE_VERSION

    @property
    def takes_commit_quorum(self) -> bool:
        """createIndexes accepts commitQuorum on replica set members and mongos, not standalone."""
        return self.kind != STANDALONE

    def primary_identity(self) -> tuple[str | None, str | None, str | None]:
        """What changes when another member becomes primary (or the same one is elected again)."""
        return self.set_name, self.primary, self.election_id

    def describe(self) -> str:
        if self.kind == REPLICA_SET:
            return f"replica set {self.set_name!r} (primary {self.primary})"
        return "a mongos" if self.is_mongos else "a standalone server"


def role_from_hello(hello: Mapping[str, Any]) -> ServerRole:
    """The role a `hello` reply describes (MongoDB's documented fields: msg, setName, primary,
    electionId)."""
    wire = hello.get("maxWireVersion")
    wire_version = int(wire) if isinstance(wire, int | float) else None
    if hello.get("msg") == "isdbgrid":
        return ServerRole(MONGOS, wire_version=wire_version)
    if hello.get("setName"):
        election = hello.get("electionId")
        return ServerRole(
            REPLICA_SET,
            set_name=str(hello["setName"]),
            primary=None if hello.get("primary") is None else str(hello["primary"]),
            election_id=None if election is None else str(election),
            wire_version=wire_version,
        )
    return ServerRole(STANDALONE, wire_version=wire_version)


def read_role(db: Database[Any]) -> ServerRole:
    """One `hello` on the primary (commands go to the primary)."""
    return role_from_hello(db.client.admin.command("hello"))
