"""The local supervisord configs: a killed process comes back, and nothing else is touched.

supervisord runs the real deploy/ configs, but OCR_BIN points at a folder whose ``python`` and
``streamlit`` are tiny shims that print their command line and sleep, so no model loads and the
test stays short. What is checked is supervisord's behaviour under our configs: every program
starts (WORKERS=2 gives two workers with their own metrics ports), a program killed with
SIGKILL is started again with a new pid while the others keep theirs, and SIGTERM stops
supervisord and every program cleanly.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

import pytest
from supervisor.xmlrpc import SupervisorTransport

REPO = Path(__file__).resolve().parents[2]
SHIM = """#!/bin/sh
echo "shim: $(basename "$0") $* PORT=${PORT:-} METRICS_PORT=${METRICS_PORT:-}"
exec sleep 300
"""


def wait_until(check, timeout_s: float, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    return check()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_supervisord(tmp_path: Path, config: str, workers: int):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "streamlit"):
        shim = bin_dir / name
        shim.write_text(SHIM)
        shim.chmod(0o755)
    env = {
        **os.environ,
        "OCR_BIN": str(bin_dir),
        "OCR_RUN_DIR": str(tmp_path),
        "BIND": "127.0.0.1",
        "WORKERS": str(workers),
        "STD_PORT": "15001",
        "STR_PORT": "15002",
        "PIPELINE_PORT": "15000",
        "WEB_PORT": "18501",
    }
    # A pipe, as from a terminal: the programs reopen /dev/stdout, which on a file would
    # start writing at its beginning again.
    process = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(REPO / config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode(errors="replace") for line in process.stdout),
        daemon=True,
    )
    reader.start()
    return process, tmp_path / "supervisor.sock", lines, reader


def running(sock: Path, expected: int) -> dict[str, int] | None:
    """name -> pid once exactly ``expected`` programs are RUNNING, else None."""
    # A fresh proxy each time: the transport can't reuse a connection after a failed call.
    rpc = xmlrpc.client.ServerProxy(
        "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{sock}")
    )
    try:
        infos = rpc.supervisor.getAllProcessInfo()
    except (OSError, http.client.HTTPException, xmlrpc.client.Fault):
        return None
    pids = {info["name"]: info["pid"] for info in infos if info["statename"] == "RUNNING"}
    return pids if len(pids) == expected == len(infos) else None


@pytest.mark.parametrize(
    ("config", "workers", "victim", "programs"),
    [
        (
            "deploy/supervisord.services.conf",
            2,
            "worker_01",
            {"std", "str", "worker_00", "worker_01", "page_worker", "pipeline", "web"},
        ),
        ("deploy/supervisord.embedded.conf", 0, "pipeline", {"pipeline", "web"}),
    ],
    ids=["services", "embedded"],
)
def test_a_killed_process_is_restarted_and_the_others_keep_running(
    tmp_path: Path, config: str, workers: int, victim: str, programs: set[str]
) -> None:
    process, sock, out, reader = run_supervisord(tmp_path, config, workers)
    try:
        before = wait_until(lambda: running(sock, len(programs)), 30)
        assert before, "".join(out)
        assert set(before) == programs
        os.kill(before[victim], signal.SIGKILL)
        after = wait_until(
            lambda: (p := running(sock, len(programs))) and p[victim] != before[victim] and p, 30
        )
        assert after, "".join(out)
        assert not alive(before[victim])
        for name in programs - {victim}:
            assert after[name] == before[name], f"{name} was restarted too"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert wait_until(lambda: not any(alive(pid) for pid in after.values()), 10)
    reader.join(timeout=10)
    text = "".join(out)
    if workers:
        assert "python -m common.server std PORT=15001" in text, text
        assert "python -m str_service.worker PORT= METRICS_PORT=9100" in text, text
        assert "python -m str_service.worker PORT= METRICS_PORT=9101" in text, text
    assert "--server.address 127.0.0.1" in text, text
    assert "python -m common.server pipeline PORT=15000" in text, text
