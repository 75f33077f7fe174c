"""`stmails worker --metrics-port`: a worker on a host without `stmails serve` serves its own
metrics on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from running_server import environment, free_port


def test_a_worker_serves_its_metrics_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = environment(
        STMAILS_DATABASE_URL=f"sqlite:///{tmp_path / 'stmails.db'}",
        STMAILS_DATA_DIR=str(tmp_path),
    )
    with (tmp_path / "worker.out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stmails", "worker", "--metrics-port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "worker.out").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the worker's metrics did not come up"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert "# TYPE stmails_smtp_messages_total counter" in answer.text
        assert "# TYPE stmails_alerts_raised_total counter" in answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
