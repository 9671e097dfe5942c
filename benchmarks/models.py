"""Benchmark the generated models against raw pymongo (and Beanie, when installed): insert 10,000
EmailEvents and read them back.

Run from the repository root:

    .venv/bin/python benchmarks/models.py [N]

It starts its own SecantusDB server (`bootstrap.local.servers.MongoServer`) in a temporary folder,
applies the shipped config's collections (validators and indexes) to fresh databases, and uses the
shipped generated models (`generated/msedb_jobs/models.py`).

* insert: raw -- `insert_many` of equivalent dicts, built beforehand (the very documents the models
  write: defaults, timestamps and `_id` included); models -- `EmailEvent(...)` from the same
  values (validation, defaults) and `ModelCollection.insert_many` (timestamps, serialisation).
* read: raw -- `list(collection.find())`; models -- `ModelCollection.find()`, every document
  checked and returned as an `EmailEvent`.
* client cost: per document, without a server: build + defaults + `to_document` (the insert side)
  and `from_document` (the read side), in microseconds.
* Beanie (optional: `pip install beanie`, or `pip install -e '.[bench]'`): an equivalent
  `beanie.Document`, async, compared with raw async pymongo on the same documents.

Each insert is repeated (--repeat, default 5) in one run, raw and models taking turns on emptied
collections, then five reads of each kind, taking turns. Each ratio is the
median of the ratios of neighbouring runs (models run i / raw run i): load from other processes on
this machine comes and goes over seconds, and a pair of neighbouring runs shares it, where the best
of each kind may come from different moments. The best times are printed too. Targets: models
insert <= 1.15x raw, typed read <= 1.5x raw. Exit status 1 when a target is not met.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from bootstrap.engine.apply import apply
from bootstrap.engine.ops import Options
from bootstrap.local.servers import MongoServer
from bootstrap.models import AsyncModels, Models
from bootstrap.models.kinds import now
from bootstrap.spec.load import load_spec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generated"))
from msedb_jobs.models import EmailEvent  # noqa: E402  (the shipped generated package)

INSERT_TARGET, READ_TARGET = 1.15, 1.5
READS = 5  # read samples per kind after each insert
USERS = [ObjectId() for _ in range(20)]
MAILBOXES = [ObjectId() for _ in range(40)]
EVENTS = ["arrived", "deleted", "moved", "read", "flagged", "categorized"]


def inputs(n: int) -> list[dict[str, Any]]:
    """What an application has in hand for each event (as a webhook handler would)."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "userId": USERS[i % len(USERS)],
            "mailboxId": MAILBOXES[i % len(MAILBOXES)],
            "messageId": f"msg-{i:06d}",
            "eventType": EVENTS[i % len(EVENTS)],
            "sender": {"name": f"Sender {i % 97}", "email": f"s{i % 97}@example{i % 13}.com",
                       "domain": f"example{i % 13}.com"},
            "subject": f"Weekly report {i}",
            "receivedAt": base + dt.timedelta(minutes=i),
            "fromFolder": "Inbox",
            "categories": ["work"] if i % 3 else [],
        }
        for i in range(n)
    ]


def raw_documents(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents the models write for these values, as plain dicts."""
    moment = now()
    return [
        {"_id": ObjectId(), **v, "timestamp": moment, "importance": "normal", "hasAttachments": False,
         "isRead": False, "createdAt": moment, "updatedAt": moment}
        for v in values
    ]


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def fresh(db: Database[Any]) -> None:
    db["emailevents"].delete_many({})


def measure_sync(db: Database[Any], values: list[dict[str, Any]], repeat: int) -> dict[str, list[float]]:
    events = Models(db)[EmailEvent]
    raw = db["emailevents"]
    times: dict[str, list[float]] = {"raw insert": [], "models insert": [], "raw read": [], "models read": []}
    for _ in range(repeat):
        documents = raw_documents(values)
        fresh(db)
        times["raw insert"].append(timed(lambda documents=documents: raw.insert_many(documents)))
        fresh(db)
        times["models insert"].append(timed(lambda: events.insert_many([EmailEvent(**v) for v in values])))
        assert events.count() == len(values)
        for _ in range(READS):  # reads are short: more samples, taking turns
            times["raw read"].append(timed(lambda: list(raw.find())))
            times["models read"].append(timed(lambda: events.find()))
    return times


def client_cost(values: list[dict[str, Any]]) -> tuple[float, float]:
    """Microseconds per document: build + defaults + to_document; from_document."""
    started = time.perf_counter()
    documents = [EmailEvent(**v).to_document() for v in values]
    write = (time.perf_counter() - started) / len(values) * 1e6
    started = time.perf_counter()
    for document in documents:
        EmailEvent.from_document(document)
    read = (time.perf_counter() - started) / len(values) * 1e6
    return write, read


def beanie_model() -> Any:
    """An equivalent Beanie document (same fields, types, defaults and collection), or None."""
    try:
        import beanie
        from beanie import PydanticObjectId
        from pydantic import BaseModel, Field
    except ImportError:
        return None
    from typing import Literal

    class Sender(BaseModel):
        name: str | None = None
        email: str | None = None
        domain: str | None = None

    class Metadata(BaseModel):
        hasListUnsubscribe: bool | None = None
        isNewsletter: bool | None = None
        isAutomated: bool | None = None
        automatedByRule: PydanticObjectId | None = None

    class BeanieEvent(beanie.Document):
        userId: PydanticObjectId
        mailboxId: PydanticObjectId
        messageId: str
        internetMessageId: str | None = None
        eventType: Literal["arrived", "deleted", "moved", "read", "flagged", "categorized"]
        timestamp: dt.datetime = Field(default_factory=now)
        sender: Sender | None = None
        subject: str | None = None
        subjectNormalized: str | None = None
        receivedAt: dt.datetime | None = None
        timeToAction: float | None = Field(default=None, ge=0)
        fromFolder: str | None = None
        toFolder: str | None = None
        importance: Literal["low", "normal", "high"] = "normal"
        hasAttachments: bool = False
        conversationId: str | None = None
        categories: list[str] | None = None
        isRead: bool = False
        metadata: Metadata | None = None
        createdAt: dt.datetime | None = None
        updatedAt: dt.datetime | None = None

        class Settings:
            name = "emailevents"
            keep_nulls = False  # as the models: absent fields are not written as null

    return BeanieEvent


async def measure_async(uri: str, values: list[dict[str, Any]], repeat: int) -> dict[str, list[float]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    db = client.get_default_database()
    events = AsyncModels(db)[EmailEvent]
    raw = db["emailevents"]
    BeanieEvent = beanie_model()
    if BeanieEvent is not None:
        import beanie

        await beanie.init_beanie(database=db, document_models=[BeanieEvent])
    times: dict[str, list[float]] = {}

    async def run(name: str, action: Callable[[], Any]) -> None:
        started = time.perf_counter()
        await action()
        times.setdefault(name, []).append(time.perf_counter() - started)

    try:
        for _ in range(repeat):
            documents = raw_documents(values)
            await raw.delete_many({})
            await run("raw insert", lambda documents=documents: raw.insert_many(documents))
            await raw.delete_many({})
            await run("models insert", lambda: events.insert_many([EmailEvent(**v) for v in values]))
            for _ in range(READS):
                await run("raw read", lambda: raw.find().to_list(None))
                await run("models read", lambda: events.find())
                if BeanieEvent is not None:
                    await run("beanie read", lambda: BeanieEvent.find_all().to_list())
            if BeanieEvent is not None:
                await raw.delete_many({})
                moment = now()

                def build(moment: dt.datetime = moment) -> Any:
                    return BeanieEvent.insert_many(
                        [BeanieEvent(**v, createdAt=moment, updatedAt=moment) for v in values]
                    )

                await run("beanie insert", build)
                assert await raw.count_documents({}) == len(values)
    finally:
        await client.close()
    return times


def best(times: dict[str, list[float]], name: str) -> float:
    return min(times[name])


def paired_ratio(times: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median of run i of `name` over run i of `baseline` (runs taken in turns, see the docstring)."""
    return statistics.median(a / b for a, b in zip(times[name], times[baseline], strict=True))


def report(title: str, times: dict[str, list[float]], n: int) -> dict[str, float]:
    print(f"\n{title} ({n} EmailEvents; {len(times['raw insert'])} inserts and {len(times['raw read'])} reads "
          "of each kind; best time, and the median ratio of neighbouring runs)")
    ratios = {}
    for op in ("insert", "read"):
        raw = best(times, f"raw {op}")
        print(f"  raw {op:7} {raw:7.3f} s")
        for who in ("models", "beanie"):
            if f"{who} {op}" in times:
                value = best(times, f"{who} {op}")
                ratio = paired_ratio(times, f"{who} {op}", f"raw {op}")
                ratios[f"{who} {op}"] = ratio
                print(f"  {who} {op:4} {value:7.3f} s   {ratio:5.2f}x raw  (best over best: {value / raw:.2f}x)")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    values = inputs(args.n)
    spec = load_spec(REPO / "config", {})
    write_us, read_us = client_cost(values[:2000])  # warm-up included once, then measured
    write_us, read_us = client_cost(values)
    with tempfile.TemporaryDirectory() as folder, MongoServer(Path(folder) / "mongo") as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
        try:
            for name in ("bench_sync", "bench_async"):
                apply(spec, client[name], None, Options(), lambda line: None)
            sync = measure_sync(client["bench_sync"], values, args.repeat)
        finally:
            client.close()
        asynchronous = asyncio.run(measure_async(f"{server.uri}bench_async", values, args.repeat))
    print(f"client cost per document: {write_us:.1f} us to build, apply defaults and serialise; "
          f"{read_us:.1f} us to check and build from a read document")
    ratios = report("sync (pymongo MongoClient)", sync, args.n)
    async_ratios = report("async (pymongo AsyncMongoClient)", asynchronous, args.n)
    if "beanie insert" not in async_ratios:
        print("  beanie: not installed (pip install beanie) -- not compared")
    print()
    met = True
    for label, ratio, target in (
        ("models insert <= 1.15x raw (sync)", ratios["models insert"], INSERT_TARGET),
        ("typed read <= 1.5x raw (sync)", ratios["models read"], READ_TARGET),
        ("models insert <= 1.15x raw (async)", async_ratios["models insert"], INSERT_TARGET),
        ("typed read <= 1.5x raw (async)", async_ratios["models read"], READ_TARGET),
    ):
        ok = ratio <= target
        met = met and ok
        print(f"target {label}: {ratio:.2f}x -- {'met' if ok else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
