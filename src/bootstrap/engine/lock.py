"""A lease lock in MongoDB so that two `bootstrap apply` runs never interleave.

The lease lives in `bootstrap_locks`; expiry is measured on the server's clock (read once from
`hello`'s `localTime`, then kept as an offset from this machine's clock), so clock skew between the
machines running apply does not matter. (Not `$$NOW` inside queries: some servers that speak the
protocol compare it wrongly with stored dates.) The holder renews the lease in the background; a
crashed holder's lease simply expires. Acquiring relies on the unique `_id`: an upsert that does
not match a free or expired lease fails with a duplicate key, which means "held". Lease writes use
w: "majority" and lease reads majority read concern, so a lease acknowledged by one primary is
still held after a failover elects another.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from bootstrap.connect.mongo import majority, reason
from bootstrap.errors import LockTimeout

log = logging.getLogger("bootstrap.lock")

LOCKS = "bootstrap_locks"


class LeaseLock:
    def __init__(self, db: Database[Any], name: str, lease: float = 30.0) -> None:
        self.collection = majority(db, LOCKS)  # w: majority, majority reads: a lease survives failover
        self.name = name
        self.lease_ms = int(lease * 1000)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        server_time = db.client.admin.command("hello").get("localTime")
        self._offset = timedelta(0)
        if isinstance(server_time, datetime):
            aware = server_time if server_time.tzinfo else server_time.replace(tzinfo=UTC)
            self._offset = aware - datetime.now(UTC)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def server_now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def try_acquire(self) -> bool:
        now = self.server_now()
        free_or_mine = {"$or": [{"owner": self.owner}, {"expiresAt": {"$lt": now}}]}
        try:
            self.collection.update_one(
                {"_id": self.name, **free_or_mine},
                {
                    "$set": {
                        "owner": self.owner,
                        "acquiredAt": now,
                        "expiresAt": now + timedelta(milliseconds=self.lease_ms),
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    def holder(self) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": self.name})

    def acquire(self, timeout: float, on_wait: Callable[[dict[str, Any] | None], None]) -> None:
        """Block until the lock is ours, or raise LockTimeout after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay, told = 0.05, False
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                holder = self.holder() or {}
                raise LockTimeout(
                    f"another apply ({holder.get('owner', 'unknown')}) still holds the lock "
                    f"after {timeout:g}s; try again later"
                )
            if not told:
                on_wait(self.holder())
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        self._renewer = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        interval = self.lease_ms / 3000
        while not self._stop.wait(interval):
            try:
                expires = self.server_now() + timedelta(milliseconds=self.lease_ms)
                result = self.collection.update_one(
                    {"_id": self.name, "owner": self.owner}, {"$set": {"expiresAt": expires}}
                )
            except PyMongoError as exc:
                log.warning("could not renew the apply lock: %s", reason(exc))
                continue
            if result.matched_count == 0:
                log.error("the apply lock was lost (lease expired and taken by another run)")
                self.lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self.collection.delete_one({"_id": self.name, "owner": self.owner})
        except PyMongoError as exc:  # the lease expires by itself
            log.warning("could not release the apply lock (it expires by itself): %s", reason(exc))

    def __enter__(self) -> LeaseLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
