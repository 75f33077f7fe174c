"""Multiprocess mode (`STMAILS_METRICS_DIR`): what several processes count is summed by the
exposition of any of them, and the directory is refused once the metrics were imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stmails.metrics_dir import use_directory

COUNT = """
import sys
from pathlib import Path
from stmails.metrics_dir import use_directory
use_directory(Path(sys.argv[1]), wipe=False)
from stmails import metrics
metrics.event_ingested("mp-test", "stored", int(sys.argv[2]))
metrics.smtp_result("mx.example:25", "sent")
"""

SCRAPE = """
import sys
from pathlib import Path
from stmails.metrics_dir import use_directory
use_directory(Path(sys.argv[1]), wipe=False)
from stmails.web.metrics import exposition
sys.stdout.write(exposition().decode())
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counts_of_several_processes_are_summed(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    run(COUNT, str(directory), "3")
    run(COUNT, str(directory), "4")
    text = run(SCRAPE, str(directory))
    assert 'stmails_events_ingested_total{outcome="stored",source="mp-test"} 7.0' in text
    assert 'stmails_smtp_messages_total{outcome="sent",server="mx.example:25"} 2.0' in text


def test_the_directory_must_come_before_the_metrics(tmp_path: Path) -> None:
    # This test process imported prometheus-client long ago, without the directory.
    import stmails.metrics  # noqa: F401

    with pytest.raises(RuntimeError, match="before the metrics are imported"):
        use_directory(tmp_path / "late", wipe=False)


def test_serve_empties_the_directory_of_an_earlier_run(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    run(COUNT, str(directory), "5")
    assert list(directory.glob("*.db"))
    wipe = "import sys\nfrom pathlib import Path\nfrom stmails.metrics_dir import use_directory\n"
    run(wipe + "use_directory(Path(sys.argv[1]), wipe=True)", str(directory))
    assert not list(directory.glob("*.db"))
