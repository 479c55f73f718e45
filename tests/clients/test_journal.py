"""The runner's completion journal (``runql/clients/runner/journal.py``): what a restarted runner
finds in it, whatever moment the previous one died at."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from runql.clients.runner.journal import FILE_NAME, Journal, JournalBusy, read_pending


def done(job_id: str, status: str = "DONE") -> dict[str, str]:
    return {"jobId": job_id, "claimToken": f"rqc_{job_id}", "status": status}


def test_a_restart_finds_exactly_the_unacknowledged_completions(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.add([done("1"), done("2"), done("3")])
    journal.acknowledge(["2"])
    journal.replace(done("3", "FAILED"))
    # Died here, mid-way through writing a line.
    with (tmp_path / FILE_NAME).open("ab") as f:
        f.write(b'{"done": {"jobId": "4", "claimTo')
    journal.close()

    again = Journal(tmp_path)
    try:
        assert again.pending == {"1": done("1"), "3": done("3", "FAILED")}
        assert read_pending(tmp_path / FILE_NAME) == again.pending  # compacted, same content
    finally:
        again.close()


def test_the_file_is_emptied_when_everything_is_acknowledged(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    try:
        journal.add([done("1"), done("2")])
        journal.acknowledge(["1", "2"])
        assert (tmp_path / FILE_NAME).stat().st_size == 0
        journal.add([done("5")])
        assert read_pending(tmp_path / FILE_NAME) == {"5": done("5")}
    finally:
        journal.close()


def test_one_runner_per_state_dir_and_tokens_stay_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    try:
        with pytest.raises(JournalBusy, match="in use by another runner"):
            Journal(tmp_path / "state")
        journal.add([done("1")])
        mode = stat.S_IMODE((tmp_path / "state" / FILE_NAME).stat().st_mode)
        assert mode == 0o600
        assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    finally:
        journal.close()
    Journal(tmp_path / "state").close()  # free again once the first is gone
