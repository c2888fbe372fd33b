"""Which engine carries a flow's state changes to the ASGI processes that hold its open streams.

Redis pub/sub (sync ``PUBLISH`` after commit; in each ASGI process one ``redis.asyncio`` pubsub
connection) against PostgreSQL LISTEN/NOTIFY (sync ``pg_notify`` in the committing transaction;
in each ASGI process one psycopg 3 ``AsyncConnection`` listening). This process publishes, as a
Django worker would; one spawned subscriber per engine holds ``K`` asyncio waiters (one queue
each, as an SSE stream would) and fans each payload out by flow id. Half of the notifications
are for 1,000 of its waiters, half for flows other processes hold (it reads and drops them).
Latency is send -> waiter awake, on CLOCK_MONOTONIC (one clock for all processes on Linux).
Phases run for both engines in turn (in rounds), so machine noise falls on both; ratios PG / Redis.
Loopback only; bounded (about 90 s; ``--quick`` about 15 s). The connection drop kills
only this benchmark's subscriber connections (found by client / application name).

    .venv/bin/python benchmarks/push_engines.py [--quick] [--redis URL] [--postgres DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import psycopg
import redis
import redis.asyncio
from psycopg import sql

K, HIT_FLOWS = 5_000, 1_000
# Pub/sub channels are global to a Redis server (not per db): one of this run's own, which the
# spawned subscribers inherit through the environment.
CHANNEL = os.environ.setdefault("CALLAUTH_BENCH_CHANNEL", f"callauth_bench_engines_{os.getpid()}")
NAME = "callauth-bench-engines"  # the subscribers' client / application name, to kill only them
Events = list[tuple[str, int, str]]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def listen_redis(url: str, deliver: Callable[[str], None], events: Events) -> None:
    pubsub = redis.asyncio.Redis.from_url(url, client_name=NAME).pubsub()
    await pubsub.subscribe(CHANNEL)
    failures = 0
    while True:
        try:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    deliver(message["data"].decode())
                else:  # the confirmation that follows each (re)subscription
                    events.append(("subscribed", time.monotonic_ns(), ""))
                    failures = 0
        except redis.ConnectionError as error:
            # Raised once per drop, though redis-py's retry has often reconnected this pubsub and
            # subscribed again already: listening on the same object goes on (a new pubsub would
            # leave that one subscribed, unread). Its retries take milliseconds, so while the server
            # is away listen() raises at once each time: the backoff is ours to add.
            events.append(("dropped", time.monotonic_ns(), repr(error)))
            await asyncio.sleep(min(failures * 0.1, 2.0))
            failures += 1


async def listen_pg(dsn: str, deliver: Callable[[str], None], events: Events) -> None:
    failures = 0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, application_name=NAME) as conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                events.append(("subscribed", time.monotonic_ns(), ""))
                failures = 0
                async for notify in conn.notifies():  # it wakes every 0.1 s: the idle CPU it shows
                    deliver(notify.payload)
        except psycopg.OperationalError as error:  # no reconnection in psycopg: this one's own
            events.append(("dropped", time.monotonic_ns(), repr(error)))
            await asyncio.sleep(min(failures * 0.1, 2.0))  # at once after a drop, then back off
            failures += 1


async def subscribe(engine: str, where: str, pipe: Connection) -> None:
    queues: dict[int, asyncio.Queue[int]] = {flow: asyncio.Queue() for flow in range(K)}
    seen: list[tuple[int, int]] = []  # (sent, woken) per notification a waiter got
    events: Events = []
    state = {"received": 0, "cpu": cpu()}

    def deliver(payload: str) -> None:
        state["received"] += 1
        flow, sent = payload.split(":", 2)[:2]
        if (queue := queues.get(int(flow))) is not None:
            queue.put_nowait(int(sent))

    async def wait(queue: asyncio.Queue[int]) -> None:
        while True:
            sent = await queue.get()
            seen.append((sent, time.monotonic_ns()))

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    waiters = [asyncio.create_task(wait(queue)) for queue in queues.values()]
    listener = asyncio.create_task((listen_redis if engine == "redis" else listen_pg)(where, deliver, events))
    while not events:
        await asyncio.sleep(0.01)
    pipe.send("ready")
    while (command := await commands.get())[0] != "stop":
        if command[0] == "reset":
            seen.clear()
            events.clear()
            state.update(received=0, cpu=cpu())
            pipe.send("ok")
        else:  # ("report", hits expected, notifications expected, seconds to wait for them at most)
            until = time.monotonic() + command[3]
            while (len(seen) < command[1] or state["received"] < command[2]) and time.monotonic() < until:
                await asyncio.sleep(0.01)
            pipe.send((list(seen), state["received"], cpu() - state["cpu"], list(events)))
    listener.cancel()
    for task in waiters:
        task.cancel()


def child(engine: str, where: str, pipe: Connection) -> None:
    asyncio.run(subscribe(engine, where, pipe))


class Engine:
    def __init__(self, name: str, where: str) -> None:
        self.name, self.where = name, where
        self.pipe, theirs = mp.Pipe()
        self.process = mp.get_context("spawn").Process(target=child, args=(name, where, theirs), daemon=True)
        self.process.start()
        self.rows: dict[str, float] = {}
        if name == "redis":
            self.redis = redis.Redis.from_url(where)
        else:
            self.pg = psycopg.connect(where, autocommit=True)

    def publish(self, flow: int, seq: int) -> int:  # -> subscribers reached, when the engine says
        payload = f"{flow}:{time.monotonic_ns()}:{seq}"
        if self.name == "redis":
            return int(self.redis.publish(CHANNEL, payload))
        self.pg.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        return -1

    def kill(self) -> None:
        if self.name == "redis":
            for client in self.redis.client_list(_type="pubsub"):
                if client["name"] == NAME:
                    self.redis.client_kill_filter(_id=client["id"])
        else:
            query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
            self.pg.execute(query, (NAME,))

    def ask(self, *command: Any) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def run(self, count: int, rate: float | None) -> tuple[list[tuple[int, int]], int, float, float, float]:
        self.ask("reset")
        began_wall, began_cpu = time.monotonic(), cpu()
        for n in range(count):
            if rate is not None:  # paced on an absolute schedule, so a slow publish is not added up
                time.sleep(max(0.0, began_wall + n / rate - time.monotonic()))
            self.publish(n // 2 % HIT_FLOWS if n % 2 == 0 else K + n, n)
        wall, spent = time.monotonic() - began_wall, cpu() - began_cpu
        seen, received, sub_cpu, _ = self.ask("report", (count + 1) // 2, count, 30.0)
        return seen, received, sub_cpu, spent, wall


def percentiles(seen: list[tuple[int, int]]) -> list[float]:
    cuts = statistics.quantiles([(woke - sent) / 1e6 for sent, woke in seen], n=100)
    return [cuts[49], cuts[94], cuts[98]]


def latency(engines: list[Engine], label: str, count: int, rate: float | None, rounds: int = 5) -> None:
    """``count`` notifications per engine, in ``rounds`` interleaved rounds (A, B, A, B...) pooled,
    so that whatever else the machine does falls on both engines alike."""
    seen: dict[str, list[tuple[int, int]]] = {engine.name: [] for engine in engines}
    sums: dict[str, list[float]] = {engine.name: [0.0] * 4 for engine in engines}  # received, CPUs, wall
    for _ in range(rounds):
        for engine in engines:
            got, *more = engine.run(count // rounds, rate)
            assert len(got) == (count // rounds + 1) // 2 and more[0] == count // rounds, engine.name
            seen[engine.name].extend(got)
            sums[engine.name] = [total + add for total, add in zip(sums[engine.name], more, strict=True)]
    for engine in engines:
        received, sub_cpu, pub_cpu, wall = sums[engine.name]
        for quantile, value in zip(("p50", "p95", "p99"), percentiles(seen[engine.name]), strict=True):
            engine.rows[f"{label} latency {quantile}, ms"] = value
        if rate is None:
            engine.rows["burst publishes per second"] = received / wall
            engine.rows["publisher CPU s per 10k publishes"] = pub_cpu * 10_000 / received
            engine.rows["subscriber CPU s per 10k receives"] = sub_cpu * 10_000 / received


def in_transaction(engine: Engine, count: int) -> None:
    """Wall time a transition adds to the committing worker (medians): Redis, a PUBLISH after
    commit; PostgreSQL, one more statement in the transaction (and the notify queue's lock at commit)."""
    spent: dict[bool, list[float]] = {False: [0.0], True: []}
    if engine.name == "redis":
        for n in range(count // 2):
            began = time.perf_counter()
            engine.publish(K + n, n)
            spent[True].append(time.perf_counter() - began)
    else:
        with psycopg.connect(engine.where) as conn:
            spent[False].clear()
            for n in range(count):
                notify = n % 2 == 1  # interleaved, so noise falls on both
                began = time.perf_counter()
                conn.execute("SELECT 1")
                if notify:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{K + n}:0:0"))
                conn.commit()
                spent[notify].append(time.perf_counter() - began)
            for size in (7_999, 8_000):
                try:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{K}:0:".ljust(size, "x")))
                    conn.commit()
                    print(f"postgres: a payload of {size} bytes is accepted")
                except psycopg.Error as error:
                    conn.rollback()
                    print(f"postgres: a payload of {size} bytes fails: {str(error).strip()}")
    added = statistics.median(spent[True]) - statistics.median(spent[False])
    engine.rows["added to a transition, us"] = added * 1e6


def drop(engine: Engine, seconds: float) -> None:
    """Kill the subscriber's connection mid-stream (one hit every 5 ms) and watch what it notices."""
    engine.ask("reset")
    began, killed_at, unheard, sent = time.monotonic(), 0, 0, 0
    while time.monotonic() < began + seconds:
        if not killed_at and time.monotonic() > began + seconds / 4:
            killed_at = time.monotonic_ns()  # before: the subscriber may notice before kill() returns
            engine.kill()
        unheard += engine.publish(0, sent) == 0
        sent += 1
        time.sleep(0.005)
    seen, _, _, events = engine.ask("report", sent, sent, 3.0)
    after = {kind: (at - killed_at) / 1e6 for kind, at, _ in reversed(events)}
    for kind, at, why in events:
        print(f"{engine.name}: {(at - killed_at) / 1e6:7.1f} ms after the kill: {kind} {why}")
    engine.rows["drop: noticed as an error after, ms"] = after.get("dropped", float("nan"))
    engine.rows["drop: subscribed again after, ms"] = after.get("subscribed", float("nan"))
    engine.rows["drop: notifications lost"] = sent - len(seen)
    engine.rows["drop: publishes told 'nobody heard'"] = unheard if engine.name == "redis" else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the notifications, 2 s idle")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    engines = [Engine("redis", args.redis), Engine("postgres", args.postgres)]
    for engine in engines:
        assert engine.pipe.poll(60) and engine.pipe.recv() == "ready", engine.name
    latency(engines, "200/s", 5_000 // scale, 200.0)
    latency(engines, "burst", 10_000 // scale, None)
    idle = 20.0 / scale  # both subscribers idle at once: 2 x 5,000 parked waiters, no traffic
    for engine in engines:
        engine.ask("reset")
    time.sleep(idle)
    for engine in engines:
        engine.rows[f"idle subscriber CPU s over {idle:.0f} s"] = engine.ask("report", 0, 0, 0.0)[2]
    for engine in engines:
        in_transaction(engine, 4_000 // scale)
    for engine in engines:
        drop(engine, 2.0)
    redis_rows, pg_rows = engines[0].rows, engines[1].rows
    print(f"\n{'K = 5,000 waiters per subscriber':<42}{'redis':>10}{'postgres':>10}{'pg/redis':>10}")
    for row, value in redis_rows.items():
        ratio = pg_rows[row] / value if value and not row.startswith("drop") else float("nan")
        print(f"{row:<42}{value:>10.3g}{pg_rows[row]:>10.3g}{ratio:>10.2f}")
    print(
        "\nRedis: PUBLISH goes after commit (on_commit), fire-and-forget: a worker dying between commit and\n"
        "publish loses it; its answer counts the subscribers reached (0: nobody heard). Channels are global to\n"
        "the server, not per db. PostgreSQL: NOTIFY is transactional, delivered on commit and dropped on\n"
        "rollback, one more statement per transition; payloads under 8000 bytes (send the flow id only);\n"
        "a notifying commit takes a database-wide lock (commits that notify are serialized: one writer here).\n"
        "Both: a notification sent while a subscriber is away is lost to it; re-read state after reconnecting."
    )
    for engine in engines:
        engine.pipe.send(("stop",))
        engine.process.join(5)


if __name__ == "__main__":
    main()
