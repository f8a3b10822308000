"""Chaos run: the distributed topology under faults, showing that no request is lost.

    python -m monitoring.chaos [--requests N] [--concurrency C] [--workers 2] [--port 5673]
                               [--json OUT] [--faults worker,connections,broker,std,poison]

It starts a RabbitMQ node of its own on ``--port`` (never the shared broker on 5672), std, str,
the str workers and the distributed pipeline as local processes, and sends N small pages of
known words to /pipeline at concurrency C as a careful client. While they run it injects, one
after the other: SIGKILL of a worker in the middle of a batch (it holds unacked crops) and a
replacement, every broker connection dropped, a full restart of the node, SIGKILL and restart of
std_service on its port, and poison messages on the crops queue. It prints one line:

    sent=N succeeded=S failed_clear=F lost=L leftover=Q dead_lettered=D workers_alive=W/2 faults=...

and exits 0 only when nothing was lost and nothing was left in the queues. Every process and the
node are stopped at the end, on errors and on Ctrl-C too; ``--max-seconds`` bounds the run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pika

from monitoring.chaos_broker import BrokerError, ChaosNode, free_port
from monitoring.chaos_load import ClientConfig, Outcome, Page, make_pages, send, tally
from monitoring.chaos_stack import Service, Stack, ready

FAULTS = ("worker", "connections", "broker", "std", "poison")
START_TIMEOUT_S = 240.0  # four model loads at once on two shared cores
RECOVER_TIMEOUT_S = 120.0
BUSY_POLL_S = 0.01
BUSY_WINDOW_S = 0.06
BUSY_CPU_S = 0.03  # recognition-thread CPU within the window that says "a batch is running"


class RunTimeout(Exception):
    """The run reached --max-seconds."""


@dataclass
class FaultRecord:
    name: str
    happened: bool = False
    started_s: float = 0.0
    injected_s: float = 0.0
    recovered_s: float | None = None
    detail: dict = field(default_factory=dict)
    error: str = ""

    def status(self) -> str:
        if self.error and not self.happened:
            return "failed"
        return "ok" if self.happened and self.recovered_s is not None else "unrecovered"


# ----------------------------------------------------------------------------------------------
# The load: client threads fed in shares, so that every fault meets requests in flight
# ----------------------------------------------------------------------------------------------


class Load:
    """C client threads taking pages from a feed; ``feed`` releases more of them."""

    def __init__(self, pages: list[Page], config: ClientConfig, concurrency: int) -> None:
        self.pages = pages
        self.config = config
        self.concurrency = concurrency
        self.clock = time.monotonic()
        self.outcomes: list[Outcome] = []
        self._feed: queue.Queue[Page | None] = queue.Queue()
        self._fed = 0
        self._lock = threading.Lock()
        self.in_flight = 0
        self._threads = [
            threading.Thread(target=self._client, name=f"chaos-client-{i}", daemon=True)
            for i in range(concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def feed(self, count: int) -> None:
        for page in self.pages[self._fed : self._fed + count]:
            self._feed.put(page)
        self._fed = min(len(self.pages), self._fed + count)

    def feed_all_and_close(self) -> None:
        self.feed(len(self.pages))
        for _ in self._threads:
            self._feed.put(None)

    @property
    def unstarted(self) -> int:
        return self._feed.qsize()

    def join(self, deadline: float) -> bool:
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _client(self) -> None:
        while True:
            page = self._feed.get()
            if page is None:
                return
            with self._lock:
                self.in_flight += 1
            try:
                outcome = send(page, self.config, self.clock)
            except Exception as exc:  # a client bug must show, not hang the run
                outcome = Outcome(page.index, "lost", detail=f"client error: {exc!r}")
            with self._lock:
                self.in_flight -= 1
                self.outcomes.append(outcome)

    def settled(self) -> list[Outcome]:
        """Every page's outcome; pages that never finished count as lost."""
        with self._lock:
            done = {o.page: o for o in self.outcomes}
        for page in self.pages:
            if page.index not in done:
                done[page.index] = Outcome(page.index, "lost", detail="no answer by the deadline")
        return [done[i] for i in sorted(done)]


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


class ChaosRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.max_seconds
        self.clock = time.monotonic()
        self.queue = f"chaos.crops.{uuid.uuid4().hex[:8]}"
        self.run_dir = Path(tempfile.mkdtemp(prefix="ocr-chaos-"))
        self.node: ChaosNode | None = None
        self.stack: Stack | None = None
        self.faults: list[FaultRecord] = []
        self.notes: list[str] = []
        self._closed = False

    def now(self) -> float:
        return round(time.monotonic() - self.clock, 2)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check_time(self) -> None:
        if self.left() <= 0:
            raise RunTimeout(f"--max-seconds {self.args.max_seconds:.0f} reached")

    def log(self, message: str) -> None:
        if not self.args.quiet:
            print(f"[chaos {self.now():7.1f}s] {message}", file=sys.stderr, flush=True)

    # -- set-up and tear-down ---------------------------------------------------------------

    def start(self) -> None:
        port = self.args.port or free_port()
        self.node = ChaosNode(port)
        self.log(f"starting node {self.node.name} on :{port} ({self.node.home})")
        took = self.node.start(timeout_s=min(90.0, self.left()))
        self.log(f"node accepts AMQP after {took:.1f}s")
        self.stack = Stack(self.node.url, self.queue, self.run_dir, self.args.ocr_timeout)
        self.stack.start_service("std")
        self.stack.start_service("str")
        for _ in range(self.args.workers):
            self.stack.start_worker()
        self.stack.start_service("pipeline")
        took = self.stack.wait_ready(
            ["std", "str", "pipeline"], timeout_s=min(START_TIMEOUT_S, self.left())
        )
        self.log(f"std, str and pipeline ready after {took:.1f}s; logs in {self.run_dir}")
        self.wait_for(
            lambda: self.consumers() >= self.args.workers, START_TIMEOUT_S, "workers consuming"
        )
        self.log(f"{self.args.workers} workers consuming {self.queue}")

    def close(self) -> None:
        """Stop every process and the node; remove the node's folder. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.stack is not None:
            self.stack.close()
        if self.node is not None:
            self.node.close()

    # -- helpers ----------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll ``predicate`` until true (bounded); return the seconds it took."""
        started = time.monotonic()
        end = min(started + timeout_s, self.deadline)
        while time.monotonic() < end:
            try:
                if predicate():
                    return time.monotonic() - started
            except BrokerError:
                pass  # the node is restarting; ask again
            time.sleep(0.5)
        raise RunTimeout(f"{what}: not within {timeout_s:.0f}s")

    def consumers(self) -> int:
        assert self.node is not None
        return self.node.consumers(self.queue)

    def recovered(self) -> bool:
        """The topology serves again: pipeline ready, every live worker consuming."""
        assert self.stack is not None
        live = len(self.stack.live_workers())
        return ready(self.stack.services["pipeline"].url) and self.consumers() >= live > 0

    def queue_counts(self) -> dict[str, dict[str, int]]:
        assert self.node is not None
        try:
            return self.node.queues()
        except BrokerError as exc:
            self.notes.append(f"list_queues failed: {exc}")
            return {}

    # -- the faults -------------------------------------------------------------------------

    def fault_worker(self, record: FaultRecord) -> None:
        """SIGKILL a worker while it recognises a batch, so it dies holding unacked crops.

        A worker acks a batch's crops only after replying, so while its recognition thread
        computes, the broker counts those crops unacknowledged on its channel. The CLI is too
        slow (about a second a call) to catch a batch of a few hundred milliseconds; /proc is not.
        """
        assert self.stack is not None and self.node is not None
        victim, used = self._busy_worker(timeout_s=min(60.0, self.left()))
        record.detail["cpu_s_in_window"] = round(used, 3)
        record.detail["caught_mid_batch"] = victim is not None
        if victim is None:  # no batch seen in time: kill one anyway, and say so
            victim = self.stack.live_workers()[0]
        victim.kill()
        record.injected_s, record.happened = self.now(), True
        record.detail["killed_pid"] = victim.process.pid
        record.detail["queue_after_kill"] = self.queue_counts().get(self.queue, {})
        self.log(
            f"killed worker {victim.process.pid} (mid-batch: {record.detail['caught_mid_batch']})"
        )
        self.stack.start_worker()
        record.detail["replacement_ready_s"] = round(
            self.wait_for(
                lambda: self.consumers() >= self.args.workers, RECOVER_TIMEOUT_S, "replacement"
            ),
            1,
        )

    def _busy_worker(self, timeout_s: float) -> tuple[Service | None, float]:
        """The first worker whose recognition thread is computing: it is inside a batch."""
        assert self.stack is not None
        history: dict[int, list[tuple[float, float]]] = {}
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            now = time.monotonic()
            for worker in self.stack.live_workers():
                cpu = _side_thread_cpu_seconds(worker.process.pid)
                samples = history.setdefault(worker.process.pid, [])
                samples.append((now, cpu))
                while samples and now - samples[0][0] > BUSY_WINDOW_S:
                    samples.pop(0)
                used = cpu - samples[0][1]
                if used >= BUSY_CPU_S:
                    return worker, used
            time.sleep(BUSY_POLL_S)
        return None, 0.0

    def fault_connections(self, record: FaultRecord) -> None:
        assert self.node is not None
        before = len(self.node.table("list_connections", "name"))
        self.node.close_all_connections("chaos")
        record.injected_s, record.happened = self.now(), True
        record.detail["connections_closed"] = before
        self.log(f"closed {before} broker connections")

    def fault_broker(self, record: FaultRecord) -> None:
        assert self.node is not None
        self.node.stop()
        record.detail["stopped_s"] = self.now()
        record.injected_s, record.happened = self.now(), True
        self.log("node stopped; starting it again")
        record.detail["start_s"] = round(self.node.start(timeout_s=min(90.0, self.left())), 1)

    def fault_std(self, record: FaultRecord) -> None:
        assert self.stack is not None
        std = self.stack.services["std"]
        std.kill()
        record.injected_s, record.happened = self.now(), True
        record.detail["killed_pid"] = std.process.pid
        self.log(f"killed std_service {std.process.pid}; restarting it on :{std.port}")
        self.stack.start_service("std")
        record.detail["std_ready_s"] = round(
            self.stack.wait_ready(["std"], timeout_s=min(RECOVER_TIMEOUT_S, self.left())), 1
        )

    def fault_poison(self, record: FaultRecord) -> None:
        """Publish malformed crop messages; see whether workers answer, dead-letter or die."""
        assert self.node is not None and self.stack is not None
        alive_before = len(self.stack.live_workers())
        connection = pika.BlockingConnection(pika.URLParameters(self.node.url))
        try:
            channel = connection.channel()
            reply_queue = channel.queue_declare("", exclusive=True).method.queue
            sent = publish_poison(channel, self.queue, reply_queue)
            record.injected_s, record.happened = self.now(), True
            record.detail["sent"] = sent
            self.log(f"published {len(sent)} poison messages")
            replies: list[str] = []
            end = time.monotonic() + min(15.0, max(0.0, self.left()))
            while time.monotonic() < end and len(replies) < len(sent):
                method, _props, body = channel.basic_get(reply_queue, auto_ack=True)
                if method is None:
                    connection.sleep(0.5)
                    continue
                replies.append(body.decode("utf-8", "replace")[:200])
            record.detail["error_replies"] = replies
            channel.queue_delete(reply_queue)
        finally:
            if connection.is_open:
                connection.close()
        record.detail["workers_alive_before"] = alive_before
        record.detail["workers_alive_after"] = len(self.stack.live_workers())
        counts = self.queue_counts()
        record.detail["crops_queue_after"] = counts.get(self.queue, {})
        record.detail["dead_letter_queue_after"] = counts.get(f"{self.queue}.dead")

    # -- the sequence -----------------------------------------------------------------------

    def inject(self, load: Load, share: int) -> None:
        for name in self.args.faults:
            self.check_time()
            # Wait until the previous share has started: requests are in flight for the fault.
            end = min(time.monotonic() + 120.0, self.deadline)
            while load.unstarted > 0 and time.monotonic() < end:
                time.sleep(0.2)
            load.feed(share)
            time.sleep(self.args.pause)
            record = FaultRecord(name, started_s=self.now())
            self.faults.append(record)
            try:
                getattr(self, f"fault_{name}")(record)
                # Poison leaves nothing to restart: a topology that survived it is ready at once.
                limit = 30.0 if name == "poison" else RECOVER_TIMEOUT_S
                took = self.wait_for(self.recovered, limit, f"recovery after {name}")
                record.recovered_s = round(self.now() - record.injected_s, 1)
                self.log(f"{name}: recovered in {took:.1f}s after the last step")
            except (
                RunTimeout,
                BrokerError,
                RuntimeError,
                OSError,
                pika.exceptions.AMQPError,
            ) as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                self.log(f"{name}: {record.error}")
                if isinstance(exc, RunTimeout) and self.left() <= 0:
                    raise

    def drain(self) -> dict[str, dict[str, int]]:
        """Wait (bounded) for the crops and reply queues to empty; return the last counts."""
        counts: dict[str, dict[str, int]] = {}
        end = min(time.monotonic() + self.args.drain_seconds, self.deadline + 30.0)
        while True:
            counts = self.queue_counts()
            if leftover(counts, self.queue) == 0 or time.monotonic() >= end:
                return counts
            time.sleep(2.0)

    def execute(self) -> dict:
        pages = make_pages(self.args.requests, seed=self.args.seed)
        self.start()
        assert self.stack is not None
        config = ClientConfig(
            url=self.stack.services["pipeline"].url,
            canvas_size=self.args.canvas_size,
            timeout_s=self.args.ocr_timeout + 15.0,
        )
        load = Load(pages, config, self.args.concurrency)
        share = max(1, len(pages) // (len(self.args.faults) + 1))
        load.feed(share)
        load.start()
        self.log(f"load: {len(pages)} requests at C={self.args.concurrency}, {share} per phase")
        load_started = self.now()
        try:
            self.inject(load, share)
        except RunTimeout as exc:  # report what happened so far; unfinished requests are lost
            self.notes.append(str(exc))
            self.log(str(exc))
        finally:
            load.feed_all_and_close()
            if not load.join(self.deadline):
                self.notes.append("requests still running at --max-seconds count as lost")
        load_ended = self.now()
        counts = self.drain()
        outcomes = load.settled()
        return self.report(outcomes, counts, load_started, load_ended)

    def report(
        self,
        outcomes: list[Outcome],
        counts: dict[str, dict[str, int]],
        load_started: float,
        load_ended: float,
    ) -> dict:
        assert self.stack is not None
        results = {key: sum(1 for o in outcomes if o.result == key) for key in _RESULTS}
        dead = counts.get(f"{self.queue}.dead")
        summary = {
            "sent": len(outcomes),
            "succeeded": results["succeeded"],
            "failed_clear": results["failed_clear"],
            "lost": results["lost"] + results["pending"],
            "leftover": leftover(counts, self.queue),
            "dead_lettered": None if dead is None else dead["ready"] + dead["unacked"],
            "workers_alive": len(self.stack.live_workers()),
            "workers": self.args.workers,
            "faults": {f.name: f.status() for f in self.faults},
        }
        return {
            "summary": summary,
            "line": summary_line(summary),
            "faults": [asdict(f) for f in self.faults],
            "requests": tally(outcomes),
            "not_succeeded": [asdict(o) for o in outcomes if o.result != "succeeded"],
            "load": {"started_s": load_started, "ended_s": load_ended},
            "queues_at_end": counts,
            "queue": self.queue,
            "server_command": self.stack.services["pipeline"].process.args,
            "logs": str(self.run_dir),
            "notes": self.notes,
        }


_RESULTS = ("succeeded", "failed_clear", "lost", "pending")


def leftover(counts: dict[str, dict[str, int]], crops_queue: str) -> int:
    """Messages still in the crops queue and the pipeline's reply queues."""
    total = 0
    for name, row in counts.items():
        if name == crops_queue or name.startswith("amq.gen-"):
            total += row["ready"] + row["unacked"]
    return total


def summary_line(summary: dict) -> str:
    faults = ",".join(f"{name}:{status}" for name, status in summary["faults"].items()) or "none"
    dead = "n/a" if summary["dead_lettered"] is None else summary["dead_lettered"]
    return (
        f"sent={summary['sent']} succeeded={summary['succeeded']} "
        f"failed_clear={summary['failed_clear']} lost={summary['lost']} "
        f"leftover={summary['leftover']} dead_lettered={dead} "
        f"workers_alive={summary['workers_alive']}/{summary['workers']} faults={faults}"
    )


def publish_poison(
    channel: pika.adapters.blocking_connection.BlockingChannel, crops_queue: str, reply_queue: str
) -> list[str]:
    """Five malformed crop messages; return what each one is."""
    deadline_ms = int((time.time() + 120) * 1000)
    good = {"index": 0, "count": 1, "height": 8, "width": 8, "deadline_ms": deadline_ms}
    cases: list[tuple[str, bytes, dict, object, str | None]] = [
        ("index 'abc'", bytes(64), good | {"index": "abc"}, "chaos-poison-1", reply_queue),
        ("empty body", b"", good, "chaos-poison-2", reply_queue),
        ("body not matching the shape", bytes(5), good, "chaos-poison-3", reply_queue),
        ("no reply_to", bytes(64), good, "chaos-poison-4", None),
        ("non-UTF-8 correlation id", bytes(64), good, b"\xff\xfe-poison-5", reply_queue),
    ]
    for _, body, headers, correlation_id, reply_to in cases:
        channel.basic_publish(
            exchange="",
            routing_key=crops_queue,
            body=body,
            properties=pika.BasicProperties(
                correlation_id=correlation_id,  # type: ignore[arg-type] - bytes on purpose
                reply_to=reply_to,
                content_type="application/x-ocr-crop",
                headers=headers,
            ),
        )
    return [case[0] for case in cases]


def _side_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s threads but its main one (from /proc; 0 once it is gone).

    A worker's main thread owns the pika connection; recognition runs on another thread (torch
    with OCR_THREADS=1 computes on the calling thread), so CPU there means a batch is running.
    """
    total = 0
    try:
        tasks = [t for t in Path(f"/proc/{pid}/task").iterdir() if t.name != str(pid)]
    except OSError:
        return 0.0
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


_CLOCK_TICKS = float(os.sysconf("SC_CLK_TCK"))


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", "-n", type=int, default=24)
    parser.add_argument("--concurrency", "-c", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--port", type=int, default=5673, help="the chaos node's AMQP port (0: any)"
    )
    parser.add_argument("--json", type=Path, help="write the details here")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated, in order, from {','.join(FAULTS)}; 'none' for a calm run",
    )
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds before each fault")
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument("--canvas-size", type=int, default=640)
    parser.add_argument("--ocr-timeout", type=float, default=30.0, help="services' OCR_TIMEOUT_S")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet", action="store_true", help="only the final line")
    args = parser.parse_args(argv)
    args.faults = [] if args.faults == "none" else [f for f in args.faults.split(",") if f]
    unknown = [f for f in args.faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown faults: {', '.join(unknown)}")
    if args.port == 5672:
        parser.error("5672 is the machine's shared broker; the chaos node needs another port")
    if args.requests < 1 or args.concurrency < 1 or args.workers < 1:
        parser.error("--requests, --concurrency and --workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run = ChaosRun(args)
    atexit.register(run.close)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def on_alarm(_signum: int, _frame: object) -> None:
        raise RunTimeout("hard stop: --max-seconds plus the drain time passed")

    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.max_seconds + args.drain_seconds + 60))
    try:
        report = run.execute()
    except (RunTimeout, BrokerError, RuntimeError) as exc:
        print(f"chaos run aborted: {type(exc).__name__}: {exc} (logs: {run.run_dir})")
        return 2
    finally:
        signal.alarm(0)
        run.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(report["line"], flush=True)
    summary = report["summary"]
    passed = summary["lost"] == 0 and summary["leftover"] == 0 and all_faults_happened(report)
    if passed:
        shutil.rmtree(run.run_dir, ignore_errors=True)
    else:
        print(f"service logs kept in {run.run_dir}", file=sys.stderr)
    return 0 if passed else 1


def all_faults_happened(report: dict) -> bool:
    return all(fault["happened"] for fault in report["faults"])


if __name__ == "__main__":
    sys.exit(main())
