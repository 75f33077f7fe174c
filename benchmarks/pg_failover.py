"""A PostgreSQL failover under load: kill -9 the primary, promote the standby, count the losses.

It starts a PostgreSQL primary (wal_level=replica) and a streaming standby made with
`pg_basebackup -R`, asynchronous by default or synchronous with `--sync`
(`synchronous_standby_names='*'` on the primary). A small TCP forwarder (its own process, on a
fixed port) stands for the virtual IP, DNS name or pooler that the operator repoints; stmails'
`STMAILS_DATABASE_URL` names it. The schema is migrated through it with `stmails db migrate`.

Load: a real `stmails serve --no-sender` receives bounce events (`POST /webhooks/bounce`, each
with a unique event id) from concurrent keep-alive clients that retry a 503 (or a dropped
connection) with the same event, as an ESP does; `/health/ready` is polled every 100 ms. With
`--with-campaign` a real `stmails worker` sends a campaign to an aiosmtpd sink meanwhile.

After `--before` seconds the primary gets SIGKILL; `--detect-seconds` later (a cluster
manager's failure detection) the standby is promoted (`pg_ctl promote`) and the forwarder is
switched to it, dropping its connections as a moved virtual IP does. The load goes on for
`--after` seconds. It reports how long webhooks and `/health/ready` failed, how many 503s were
answered, whether the stmails processes survived, and the acknowledged events missing from the
promoted database (asynchronous replication may lose the last acknowledged commits), and, with
the campaign, recipients with two messages, missing, in doubt, and that the campaign finished.

Needs the PostgreSQL server binaries (scripts/setup.sh); as root the servers run as `postgres`:

    .venv/bin/python benchmarks/pg_failover.py                    # asynchronous replication
    .venv/bin/python benchmarks/pg_failover.py --sync --with-campaign
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import func, select, text

from ingest_http import API_TOKEN, API_USER, AUTH, exchange, free_port
from multi_worker import Sink, populate
from stmails.db.engine import make_engine, session_factory
from stmails.db.models import Bounce, Campaign, CampaignSend, Subscriber
from stmails.services import settings as settings_service
from stmails.services.sending.campaigns import IN_DOUBT, change_status
from stmails.services.sending.config import SendingConfig

SOURCE = "failover"
SECRET = "benchmark-secret-0123456789"


# ---------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """The primary and the standby: their folders, ports and the binaries that run them."""

    def __init__(self, root: Path, sync: bool, delay: float) -> None:
        dirs = sorted(
            d for d in glob.glob("/usr/lib/postgresql/*/bin") if Path(d, "initdb").exists()
        )
        found = dirs[-1] if dirs else os.path.dirname(shutil.which("initdb") or "")
        if not found:
            raise SystemExit("pg_failover: PostgreSQL binaries not found (scripts/setup.sh)")
        self.bin = Path(found)
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        self.root = root
        root.mkdir(mode=0o755)
        if self.run_as:
            shutil.chown(root, "postgres")
        self.sync = sync
        self.delay = delay
        self.link: Forwarder | None = None
        self.primary_port = free_port()
        self.standby_port = free_port()
        self.primary = root / "primary"
        self.standby = root / "standby"

    def _run(self, *command: str) -> None:
        subprocess.run([*self.run_as, *command], check=True, stdout=subprocess.DEVNULL)

    def _start(self, data: Path, port: int, extra: str = "") -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {self.root} -c fsync=off "
            f"-c wal_level=replica -c max_wal_senders=5 -c max_connections=100 {extra}"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(data), "-l", f"{data}.log", "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def start(self) -> None:
        """initdb, the primary, the database, the base backup and the standby, streaming."""
        self._run(
            str(self.bin / "initdb"), "-D", str(self.primary), "-U", "stmails", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        with open(self.primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._start(self.primary, self.primary_port)
        self._run(
            str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.primary_port),
            "-U", "stmails", "stmails",
        )  # fmt: skip
        # The standby streams through a forwarder that delays each way (the network between
        # them); pg_basebackup -R writes its port into the standby's primary_conninfo.
        self.link = Forwarder(self.primary_port, self.delay)
        self._run(
            str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.link.port),
            "-U", "stmails", "-D", str(self.standby), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self._start(self.standby, self.standby_port)
        want = "sync" if self.sync else "async"
        engine = make_engine(self.url(self.primary_port))
        try:
            if self.sync:
                # Only now that the standby exists: until then every commit would wait for it.
                auto = engine.execution_options(isolation_level="AUTOCOMMIT")
                with auto.connect() as connection:
                    connection.execute(text("ALTER SYSTEM SET synchronous_standby_names = '*'"))
                    connection.execute(text("ALTER SYSTEM SET synchronous_commit = 'on'"))
                    connection.execute(text("SELECT pg_reload_conf()"))
            deadline = time.monotonic() + 30
            while True:
                with engine.connect() as connection:
                    states = connection.scalars(
                        text("SELECT sync_state FROM pg_stat_replication WHERE state='streaming'")
                    ).all()
                if want in states:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the standby is not streaming ({states})")
                time.sleep(0.2)
        finally:
            engine.dispose()

    def kill_primary(self) -> None:
        """The primary's machine dies: the replication link is cut (WAL not delivered to the
        standby yet is lost, as the dead machine's socket buffers would be; on loopback the
        kernel would otherwise still deliver them) and the postmaster and each of its processes
        get SIGKILL at the same moment."""
        if self.link is not None:
            self.link.cut()
        pid = int((self.primary / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(pid):
                children.append(int(stat.parent.name))
        for process in [pid, *children]:
            with suppress(ProcessLookupError):
                os.kill(process, signal.SIGKILL)

    def replication_lag(self) -> str:
        """The standby's lag as the primary sees it now (write, flush and replay)."""
        engine = make_engine(self.url(self.primary_port))
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    text(
                        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), write_lag,"
                        " flush_lag, replay_lag FROM pg_stat_replication"
                    )
                ).one()
        finally:
            engine.dispose()
        lags = ", ".join(
            f"{name} {value.total_seconds() * 1000:.1f} ms"
            for name, value in zip(("write", "flush", "replay"), row[1:], strict=True)
            if value is not None
        )
        return f"{int(row[0])} bytes of WAL not replayed; {lags or 'no lag reported'}"

    def promote(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.standby), "-w", "-t", "60", "promote")

    def stop(self) -> None:
        if self.link is not None:
            self.link.stop()
        for data in (self.primary, self.standby):
            subprocess.run(
                [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate",
                 "stop"],
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    @staticmethod
    def url(port: int) -> str:
        return f"postgresql+psycopg://stmails@127.0.0.1:{port}/stmails"


# ---------------------------------------------------------------------------- the forwarder


def _forwarder_main(port: int, target: int, delay: float, conn: Connection) -> None:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target`, each byte `delay` seconds late (a
    network's latency, each way). The command ("switch", port) sends new connections to another
    port and resets the open ones (as a moved virtual IP does); ("cut",) resets them and refuses
    new ones. ("blackhole",) is a server that vanished without a word (a dead host behind a
    DNS name): the open connections stay open but nothing reaches either end any more, and new
    ones are accepted and never answered, until a ("switch", port, False) that leaves the old
    ones in the hole."""

    async def main() -> None:
        state = {"target": target, "cut": 0, "hole": 0}
        open_pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        holed: set[asyncio.StreamWriter] = set()
        forever = asyncio.Event()
        done = asyncio.Event()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if delay:
                await late_pipe(reader, writer)
                return
            try:
                while data := await reader.read(65536):
                    if writer not in holed:
                        writer.write(data)
                        await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if writer in holed:
                    await forever.wait()
                writer.close()

        async def late_pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
            loop = asyncio.get_running_loop()

            async def deliver() -> None:
                while True:
                    due, data = await queue.get()
                    if not data:
                        break
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    if state["cut"]:
                        break
                    writer.write(data)
                    await writer.drain()

            sender = asyncio.create_task(deliver())
            try:
                while data := await reader.read(65536):
                    queue.put_nowait((loop.time() + delay, data))
                queue.put_nowait((0.0, b""))
                await sender
            except (ConnectionError, OSError):
                sender.cancel()
            finally:
                writer.close()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if state["cut"]:
                writer.transport.abort()
                return
            if state["hole"]:
                holed.add(writer)
                await forever.wait()
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", state["target"])
            except OSError:
                writer.transport.abort()
                return
            pair = (writer, up_writer)
            open_pairs.add(pair)
            try:
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            finally:
                open_pairs.discard(pair)

        def on_command() -> None:
            command = conn.recv()
            if command[0] == "blackhole":
                state["hole"] = 1
                for client, upstream in list(open_pairs):
                    holed.update((client, upstream))
                conn.send("done")
            elif command[0] in ("switch", "cut"):
                if command[0] == "switch":
                    state["target"] = command[1]
                    state["hole"] = 0
                else:
                    state["cut"] = 1
                if command[0] == "cut" or command[2]:
                    for client, upstream in list(open_pairs):
                        client.transport.abort()
                        upstream.transport.abort()
                conn.send("done")
            else:
                done.set()

        server = await asyncio.start_server(accept, "127.0.0.1", port)
        asyncio.get_running_loop().add_reader(conn.fileno(), on_command)
        conn.send("ready")
        await done.wait()
        server.close()

    asyncio.run(main())


class Forwarder:
    """The forwarder's process and its control pipe."""

    def __init__(self, target: int, delay: float = 0.0) -> None:
        self.port = free_port()
        self.parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=_forwarder_main, args=(self.port, target, delay, child), daemon=True
        )
        self.process.start()
        assert self.parent.recv() == "ready"

    def switch(self, target: int, reset: bool = True) -> None:
        self.parent.send(("switch", target, reset))
        assert self.parent.recv() == "done"

    def blackhole(self) -> None:
        self.parent.send(("blackhole",))
        assert self.parent.recv() == "done"

    def cut(self) -> None:
        """Resets the open connections, drops what they have not delivered yet, and refuses
        new ones: the network of a machine that died."""
        self.parent.send(("cut",))
        assert self.parent.recv() == "done"

    def stop(self) -> None:
        self.parent.send(("stop",))
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


# ---------------------------------------------------------------------------- the load


@dataclass
class Load:
    """What the webhook clients and the readiness poller saw; times from time.monotonic()."""

    acked: set[int] = field(default_factory=set)
    answers: list[tuple[float, int]] = field(default_factory=list)  # (time, status or 0)
    ready: list[tuple[float, int]] = field(default_factory=list)
    next_number: int = 0


def bounce_request(host: str, number: int) -> bytes:
    body = (
        b'{"email":"user' + str(number % 5000).encode() + b'@failover.example","source":"'
        + SOURCE.encode() + b'","type":"soft","reason":"mailboxfull","status":"4.2.2",'
        b'"event_id":"' + str(number).encode() + b'"}'
    )  # fmt: skip
    head = (
        f"POST /webhooks/bounce HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _webhook_client(port: int, stop: asyncio.Event, load: Load, retry: float) -> None:
    """Posts events one after the other; retries an event until it is answered 2xx."""
    host = f"127.0.0.1:{port}"
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while not stop.is_set():
        number = load.next_number
        load.next_number += 1
        while not stop.is_set():
            try:
                if streams is None:
                    streams = await asyncio.open_connection("127.0.0.1", port)
                head = await asyncio.wait_for(exchange(*streams, bounce_request(host, number)), 60)
                status = int(head[9:12])
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                status = 0
                if streams is not None:
                    streams[1].close()
                streams = None
            load.answers.append((time.monotonic(), status))
            if 200 <= status < 300:
                load.acked.add(number)
                break
            await asyncio.sleep(retry)
    if streams is not None:
        streams[1].close()


async def _ready_poller(port: int, stop: asyncio.Event, load: Load) -> None:
    request = f"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while not stop.is_set():
        try:
            if streams is None:
                streams = await asyncio.open_connection("127.0.0.1", port)
            head = await asyncio.wait_for(exchange(*streams, request), 10)
            status = int(head[9:12])
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            status = 0
            streams = None
        load.ready.append((time.monotonic(), status))
        await asyncio.sleep(0.1)


def recovery(samples: list[tuple[float, int]], since: float) -> tuple[float | None, int]:
    """(seconds from `since` to the first success after the first failure that follows it, or
    None when it never failed; failures after `since`). Success is 2xx."""
    failed_at = None
    failures = 0
    for moment, status in samples:
        if moment < since:
            continue
        ok = 200 <= status < 300
        if not ok:
            failures += 1
            failed_at = failed_at or moment
        elif failed_at is not None:
            return moment - since, failures
    return (None if failed_at is None else float("inf")), failures


# ---------------------------------------------------------------------------- stmails


@contextmanager
def stmails(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m stmails COMMAND` until the block ends (SIGTERM, then SIGKILL)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stmails", *command], env=env, stdout=out,
            stderr=subprocess.STDOUT, cwd=log.parent,
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise SystemExit(f"stmails serve exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"stmails serve is not ready; see {log}")
        time.sleep(0.2)


def start_campaign(url: str, campaign_id: int) -> None:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            config = SendingConfig.from_settings(settings_service.get_all(session))
            change_status(session, campaign, "running", config)
    finally:
        engine.dispose()


async def drive(
    args: argparse.Namespace, pg: Postgres, forwarder: Forwarder, port: int
) -> tuple[Load, float, float]:
    """The load, the kill and the promotion; (what the load saw, kill time, switch time)."""
    load = Load()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_webhook_client(port, stop, load, args.retry_seconds))
        for _ in range(args.clients)
    ]
    tasks.append(asyncio.create_task(_ready_poller(port, stop, load)))
    await asyncio.sleep(args.before)
    print(f"  just before the kill: {await asyncio.to_thread(pg.replication_lag)}")
    killed = time.monotonic()
    if args.blackhole:
        forwarder.blackhole()
    pg.kill_primary()
    print(f"  t=0.0 s: primary killed (SIGKILL), {len(load.acked)} events acknowledged")
    await asyncio.sleep(args.detect_seconds)
    await asyncio.to_thread(pg.promote)
    promoted = time.monotonic() - killed
    await asyncio.to_thread(forwarder.switch, pg.standby_port, not args.blackhole)
    switched = time.monotonic()
    print(f"  t={promoted:.1f} s: standby promoted; t={switched - killed:.1f} s: forwarder moved")
    await asyncio.sleep(args.after)
    stop.set()
    await asyncio.gather(*tasks)
    return load, killed, switched


def run(args: argparse.Namespace, work: Path) -> int:
    pg = Postgres(work / "pg", args.sync, args.replication_delay_ms / 1000)
    sink: Sink | None = None
    forwarder: Forwarder | None = None
    try:
        pg.start()
        forwarder = Forwarder(pg.primary_port)
        url = Postgres.url(forwarder.port)
        env = {key: value for key, value in os.environ.items() if not key.startswith("STMAILS_")}
        env.update(
            STMAILS_DATABASE_URL=url, STMAILS_SECRET_KEY=SECRET, STMAILS_API_USER=API_USER,
            STMAILS_API_TOKEN=API_TOKEN, STMAILS_ADMIN_PASSWORD="bench-admin-password",
            STMAILS_DATA_DIR=str(work / "serve"),
        )  # fmt: skip
        (work / "serve").mkdir()
        (work / "worker").mkdir()
        subprocess.run(
            [sys.executable, "-m", "stmails", "db", "migrate"], env=env, check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        campaign_id = None
        if args.with_campaign:
            sink = Sink(args.latency_ms / 1000)
            engine = make_engine(url)
            campaign_id = populate(engine, args.subscribers, sink, args.connections, 500)
            engine.dispose()
        port = free_port()
        serve_log = work / "serve" / "serve.log"
        worker_log = work / "worker" / "worker.log"
        with stmails(["serve", "--no-sender", "--port", str(port)], env, serve_log) as serve:
            wait_ready(port, serve, serve_log)
            with ExitStack() as stack:
                worker = None
                finished: list[float] = []
                if campaign_id is not None:
                    worker_env = {**env, "STMAILS_DATA_DIR": str(work / "worker")}
                    command = ["worker", "--poll", "0.2"]
                    worker = stack.enter_context(stmails(command, worker_env, worker_log))
                    start_campaign(url, campaign_id)
                    watcher = threading.Thread(
                        target=wait_finished, args=(url, campaign_id, args.timeout, finished)
                    )
                    watcher.start()
                load, killed, switched = asyncio.run(drive(args, pg, forwarder, port))
                finished_after = None
                if campaign_id is not None:
                    watcher.join()
                    if finished:
                        finished_after = finished[0] - killed
                serve_alive = serve.poll() is None
                worker_alive = worker is None or worker.poll() is None
        return report(args, pg, load, killed, switched, serve_alive, worker_alive, url,
                      campaign_id, finished_after, sink, work)  # fmt: skip
    finally:
        if forwarder is not None:
            forwarder.stop()
        if sink is not None:
            sink.stop()
        pg.stop()


def wait_finished(url: str, campaign_id: int, timeout: float, finished: list[float]) -> None:
    """Appends to `finished` the time (time.monotonic()) when the campaign is seen finished,
    polling every 0.2 s through the forwarder; nothing when it is not within `timeout`."""
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with engine.connect() as connection:
                    status = connection.scalar(
                        select(Campaign.status).where(Campaign.id == campaign_id)
                    )
            except Exception:
                status = None
            if status == "finished":
                finished.append(time.monotonic())
                return
            time.sleep(0.2)
    finally:
        engine.dispose()


def report(
    args: argparse.Namespace, pg: Postgres, load: Load, killed: float, switched: float,
    serve_alive: bool, worker_alive: bool, url: str, campaign_id: int | None,
    finished_after: float | None, sink: Sink | None, work: Path,
) -> int:  # fmt: skip
    """Prints the figures; 1 when an acknowledged event is missing in --sync mode."""
    webhooks, _ = recovery(load.answers, killed)
    before = sum(1 for moment, status in load.answers if moment < killed and status == 200)
    print(f"  before the kill: {before / args.before:.0f} events/s acknowledged")
    ready, not_ready = recovery(load.ready, killed)
    busy = sum(1 for moment, status in load.answers if moment >= killed and status == 503)
    dropped = sum(1 for moment, status in load.answers if moment >= killed and status == 0)

    def seconds(value: float | None) -> str:
        return "never failed" if value is None else f"{value:.1f} s"

    print(
        f"  webhooks answered 2xx again {seconds(webhooks)} after the kill "
        f"({seconds(webhooks - (switched - killed)) if webhooks else '-'} after the move); "
        f"{busy} answers 503 and {dropped} dropped connections meanwhile"
    )
    print(f"  /health/ready 200 again {seconds(ready)} after the kill ({not_ready} polls not 200)")
    print(
        f"  stmails serve kept running without restart: {serve_alive}"
        + (f"; stmails worker: {worker_alive}" if args.with_campaign else "")
    )
    engine = make_engine(Postgres.url(pg.standby_port))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Bounce.dedup_key, func.count())
                .where(Bounce.source == SOURCE)
                .group_by(Bounce.dedup_key)
            ).all()
            stored = {key: count for key, count in rows}
            missing = sorted(n for n in load.acked if f"{SOURCE}:{n}" not in stored)
            duplicates = sum(1 for count in stored.values() if count > 1)
            print(
                f"  events acknowledged {len(load.acked)}, stored on the promoted standby "
                f"{len(stored)}: acknowledged but MISSING {len(missing)}"
                + (f" (event numbers {missing[:10]}...)" if missing else "")
                + f", duplicates {duplicates}"
            )
            if campaign_id is not None and sink is not None:
                sends = connection.execute(
                    select(Subscriber.email, CampaignSend.reason)
                    .join(CampaignSend, CampaignSend.subscriber_id == Subscriber.id)
                    .where(CampaignSend.campaign_id == campaign_id)
                ).all()
                received = Counter(address.lower() for address in sink.ask("report"))
                doubt = {email for email, reason in sends if reason == IN_DOUBT}
                twice = sum(1 for count in received.values() if count > 1)
                absent = sum(
                    1 for i in range(args.subscribers)
                    if f"r{i}@example.com" not in received and f"r{i}@example.com" not in doubt
                )  # fmt: skip
                print(
                    f"  campaign of {args.subscribers}: finished on the new primary "
                    f"{seconds(finished_after) if finished_after else 'NO'} after the kill; "
                    f"{len(received)} recipients received, {twice} received 2 messages, "
                    f"{absent} missing (neither received nor in doubt), {len(doubt)} in_doubt"
                )
    finally:
        engine.dispose()
    kept = f"; logs in {work}" if args.keep else ""
    print(f"  load average now {os.getloadavg()[0]:.1f}{kept}")
    return 1 if args.sync and missing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync", action="store_true", help="synchronous replication")
    parser.add_argument("--with-campaign", action="store_true", help="a worker sends meanwhile")
    parser.add_argument("--detect-seconds", type=float, default=2.0, help="kill to promote")
    parser.add_argument("--before", type=float, default=6.0, help="load before the kill (s)")
    parser.add_argument("--after", type=float, default=20.0, help="load after the move (s)")
    parser.add_argument(
        "--replication-delay-ms", type=float, default=0.0, help="primary-standby latency, each way"
    )
    parser.add_argument(
        "--blackhole",
        action="store_true",
        help="the dead primary answers nothing, not even resets (a DNS name, not a moved VIP)",
    )
    parser.add_argument("--clients", type=int, default=16, help="webhook connections")
    parser.add_argument("--retry-seconds", type=float, default=0.2, help="client's retry delay")
    parser.add_argument("--subscribers", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=10.0, help="the sink's delay")
    parser.add_argument("--connections", type=int, default=4, help="the worker's SMTP conns")
    parser.add_argument("--timeout", type=float, default=120.0, help="for the campaign")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs)")
    args = parser.parse_args()
    mode = "synchronous" if args.sync else "asynchronous"
    print(
        f"pg_failover: {mode} replication, {args.clients} webhook clients (503 retried after "
        f"{args.retry_seconds:g} s), detection {args.detect_seconds:g} s, replication link "
        f"{args.replication_delay_ms:g} ms each way"
        + (f", campaign of {args.subscribers} meanwhile" if args.with_campaign else "")
        + f"; Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    work = Path(tempfile.mkdtemp(prefix="stmails-failover-"))
    os.chmod(work, 0o755)
    try:
        return run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
