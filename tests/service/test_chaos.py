"""The chaos run: ``python -m monitoring.chaos`` end to end, and the client's judging rules.

``test_chaos_run_loses_nothing`` is THE chaos run (marked slow, a few minutes on two cores): its
own RabbitMQ node on a free port (the shared broker on 5672 is never touched), std, str, two
workers and the distributed pipeline as processes, and every fault injected under load. It
asserts that every fault step happened, that no request was lost and that no message was left
queued. The other tests check, without servers, how the client counts an answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from monitoring import chaos
from monitoring.chaos_broker import ChaosNode, NodeExited, free_port
from monitoring.chaos_load import Outcome, Page, judge, make_pages, read_words

REPO_ROOT = Path(__file__).resolve().parents[2]


def response(status: int, body: object, headers: dict | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    answer.headers.update({"Content-Type": "application/json"} | (headers or {}))
    return answer


PAGE = Page(0, ("house", "river", "green", "table"), b"")
WORDS_OK = {"words": [{"text": w} for w in PAGE.words]}


def test_right_words_succeed_and_wrong_words_are_lost() -> None:
    ok, wrong = Outcome(0), Outcome(0)
    assert judge(ok, PAGE, response(200, WORDS_OK), last=False)
    assert ok.result == "succeeded"
    swapped = {"words": [{"text": w} for w in reversed(PAGE.words)]}
    assert judge(wrong, PAGE, response(200, swapped), last=False)
    assert wrong.result == "lost" and "wrong words" in wrong.detail


def test_passing_errors_are_retried_then_count_as_clear_failures() -> None:
    outcome = Outcome(0)
    busy = response(503, {"error": {"code": "overloaded", "message": "busy"}}, {"Retry-After": "1"})
    assert not judge(outcome, PAGE, busy, last=False)  # retried
    assert judge(outcome, PAGE, busy, last=True)
    assert outcome.result == "failed_clear"
    assert outcome.attempts == ["503 overloaded", "503 overloaded"]


def test_a_5xx_without_the_error_shape_is_lost_at_once() -> None:
    outcome = Outcome(0)
    assert judge(outcome, PAGE, response(502, b"<html>oops</html>"), last=False)
    assert outcome.result == "lost"


def test_pages_are_deterministic_and_the_summary_line_has_every_field() -> None:
    assert [p.words for p in make_pages(3)] == [p.words for p in make_pages(3)]
    assert read_words({"words": [{"text": " House "}]}) == ["house"]
    line = chaos.summary_line(
        {
            "sent": 2,
            "succeeded": 1,
            "failed_clear": 1,
            "lost": 0,
            "leftover": 0,
            "dead_lettered": None,
            "workers_alive": 2,
            "workers": 2,
            "faults": {"worker": "ok", "poison": "ok"},
        }
    )
    assert line == (
        "sent=2 succeeded=1 failed_clear=1 lost=0 leftover=0 dead_lettered=n/a "
        "workers_alive=2/2 faults=worker:ok,poison:ok"
    )


def test_the_shared_broker_port_is_refused() -> None:
    with pytest.raises(SystemExit):
        chaos.parse_args(["--port", "5672"])


def _needs_rabbitmq_server() -> None:
    if not (Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() or shutil.which("rabbitmqctl")):
        pytest.skip("rabbitmq-server is not installed; the chaos run needs a node of its own")


def test_a_node_that_fails_to_restart_is_tried_again_and_says_why(capsys) -> None:
    """The broker fault restarts the chaos node; a start that fails is retried once, and the
    error carries what the node printed, since closing the node deletes its folder."""
    _needs_rabbitmq_server()
    node = ChaosNode(free_port())
    try:
        config = node.home / "rabbitmq.conf"
        good = config.read_text()
        config.write_text("listeners.tcp.1 = not a listener\n")
        with pytest.raises(NodeExited, match="failed_to_prepare_configuration"):
            node.restart()
        assert "starting it again" in capsys.readouterr().err
        config.write_text(good)
        node.restart()
        assert node.accepts_amqp()
    finally:
        node.close()
    assert not node.home.exists()


@pytest.mark.slow  # the chaos run: minutes of real services, models and a broker node
def test_chaos_run_loses_nothing(tmp_path: Path) -> None:
    _needs_rabbitmq_server()
    out = tmp_path / "chaos.json"
    args = ["--requests", "18", "--concurrency", "3", "--port", "0", "--max-seconds", "330"]
    run = subprocess.run(
        [sys.executable, "-m", "monitoring.chaos", *args, "--json", str(out), "--quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.exists(), run.stdout + run.stderr
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert run.stdout.strip().splitlines()[-1] == report["line"]
    assert [f["name"] for f in report["faults"]] == list(chaos.FAULTS)
    assert all(f["happened"] for f in report["faults"]), report["faults"]
    worker_fault = report["faults"][0]
    assert worker_fault["detail"]["caught_mid_batch"], worker_fault  # it held unacked crops
    assert summary["sent"] == 18
    assert summary["lost"] == 0, report["not_succeeded"]
    assert summary["leftover"] == 0, report["queues_at_end"]
    assert summary["succeeded"] > 0, report["requests"]
    assert run.returncode == 0, run.stdout + run.stderr
