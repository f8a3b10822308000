"""A throw-away RabbitMQ node for the chaos run, so that restarting a broker never touches the
machine's shared one on 5672.

The node runs from its own temporary folder: its own HOME (hence its own Erlang cookie, so no CLI
call of ours can reach another node), mnesia, logs, pid file, an empty plugin list (no
management or Prometheus listener to clash with) and a config file that listens on loopback only.
The packaged ``/usr/lib/rabbitmq/bin`` scripts run as the current user; ``/usr/sbin``'s wrappers
would switch to the rabbitmq user and drop this environment. The server runs in the foreground
in a process group of its own, so that cleaning up can always kill it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika
import pika.exceptions

PACKAGED_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT_S = 90.0


class BrokerError(RuntimeError):
    """The chaos node did not start, stop or answer a CLI call."""


class NodeExited(BrokerError):
    """rabbitmq-server ended while it was starting; the message ends with what it printed."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tool(name: str) -> str:
    packaged = PACKAGED_BIN / name
    if packaged.exists():
        return str(packaged)
    found = shutil.which(name)
    if not found:
        raise BrokerError(f"{name} not found (install rabbitmq-server)")
    return found


class ChaosNode:
    """One RabbitMQ node on ``port``; ``start``, ``restart``, ``close`` and CLI helpers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dist_port = free_port()
        self.name = f"chaos-{os.getpid()}-{secrets.token_hex(3)}@localhost"
        self.home = Path(tempfile.mkdtemp(prefix="ocr-chaos-rabbit-"))
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        self._process: subprocess.Popen | None = None
        self._prepare()

    def _prepare(self) -> None:
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        (self.home / "rabbitmq-env.conf").write_text("")  # shadows /etc/rabbitmq's NODENAME

    def env(self) -> dict[str, str]:
        home = str(self.home)
        return os.environ | {
            "HOME": home,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{home}/mnesia",
            "RABBITMQ_LOG_BASE": f"{home}/log",
            "RABBITMQ_PID_FILE": f"{home}/node.pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{home}/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": f"{home}/rabbitmq.conf",
            "RABBITMQ_CONF_ENV_FILE": f"{home}/rabbitmq-env.conf",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Start the node and wait until it accepts AMQP; return the seconds that took."""
        if port_in_use(self.port):
            raise BrokerError(f"port {self.port} is already in use; pass another --port")
        started = time.monotonic()
        log = open(self.home / "server.out", "ab")  # not `with`: the child keeps it
        self._process = subprocess.Popen(
            [_tool("rabbitmq-server")],
            cwd=self.home,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise NodeExited(
                    f"rabbitmq-server exited with {code} while starting; it printed:\n"
                    + self._output_tail()
                )
            if self.accepts_amqp():
                return time.monotonic() - started
            time.sleep(0.5)
        raise BrokerError(f"node {self.name} did not accept AMQP within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 60.0) -> None:
        """Shut the node down cleanly (``rabbitmqctl shutdown``), killing it if that fails."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                self.ctl("shutdown", timeout_s=timeout_s)
            except BrokerError:
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(process)
        self._process = None

    def restart(self, attempts: int = 2) -> float:
        """Full stop and start on the same data: durable queues must come back. The fault is
        the broker's absence, not its start-up, so a node that exits while starting is started
        again (up to ``attempts`` in all), each time once its ports are free."""
        self.stop()
        for _ in range(attempts - 1):
            self._wait_for_free_ports()
            try:
                return self.start()
            except NodeExited as error:
                print(f"chaos node: {error}\nstarting it again", file=sys.stderr)
        self._wait_for_free_ports()
        return self.start()

    def _wait_for_free_ports(self, timeout_s: float = 30.0) -> None:
        """Until nothing listens on the node's AMQP and distribution ports (a node killed a
        moment ago may still hold them)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not (port_in_use(self.port) or port_in_use(self.dist_port)):
                return
            time.sleep(0.5)

    def _output_tail(self, lines: int = 20) -> str:
        """The end of what the node printed, kept in the error: close() deletes its folder."""
        try:
            text = (self.home / "server.out").read_text(errors="replace")
        except OSError as error:
            return f"(server.out unreadable: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop the node and remove its folder; safe to call twice and after errors."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    # -- probes and CLI ---------------------------------------------------------------------------

    def accepts_amqp(self) -> bool:
        params = pika.URLParameters(self.url)
        params.socket_timeout = 2
        params.connection_attempts = 1
        try:
            pika.BlockingConnection(params).close()
        except (pika.exceptions.AMQPError, OSError):
            return False
        return True

    def consumers(self, queue: str) -> int:
        """Consumers of ``queue`` through AMQP (a passive declare is far cheaper than the CLI)."""
        params = pika.URLParameters(self.url)
        params.socket_timeout = 2
        params.connection_attempts = 1
        try:
            connection = pika.BlockingConnection(params)
        except (pika.exceptions.AMQPError, OSError):
            return 0
        try:
            declared = connection.channel().queue_declare(queue, passive=True)
            return declared.method.consumer_count
        except pika.exceptions.AMQPError:
            return 0  # no such queue yet, or the node went away meanwhile
        finally:
            if connection.is_open:
                connection.close()

    def ctl(self, *args: str, timeout_s: float = 30.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` against this node only; return its stdout."""
        try:
            done = subprocess.run(
                [_tool("rabbitmqctl"), "-n", self.name, *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BrokerError(f"rabbitmqctl {args[0]} timed out") from None
        if done.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()[-300:]}")
        return done.stdout

    def table(self, command: str, *columns: str) -> list[dict[str, str]]:
        """A ``list_*`` command as rows of column -> value."""
        out = self.ctl(command, *columns, "-q", "--no-table-headers")
        rows = []
        for line in out.splitlines():
            if line.strip():
                rows.append(dict(zip(columns, line.split("\t"), strict=False)))
        return rows

    def queues(self) -> dict[str, dict[str, int]]:
        """Every queue's ready, unacknowledged and consumer counts."""
        rows = self.table(
            "list_queues", "name", "messages_ready", "messages_unacknowledged", "consumers"
        )
        return {
            row["name"]: {
                "ready": _int(row.get("messages_ready")),
                "unacked": _int(row.get("messages_unacknowledged")),
                "consumers": _int(row.get("consumers")),
            }
            for row in rows
        }

    def close_all_connections(self, reason: str = "chaos") -> None:
        self.ctl("close_all_connections", reason)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
