"""The directory ``runql serve`` shares among its workers' metrics
(``runql.observe.metrics.multiprocess_directory``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runql.observe.metrics import MULTIPROC_ENV, multiprocess_directory


def test_several_workers_get_a_fresh_directory_removed_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)

    with multiprocess_directory(2) as path:
        assert path is not None and os.environ[MULTIPROC_ENV] == path
        assert Path(path).is_dir() and not any(Path(path).iterdir())
        (Path(path) / "counter_1.db").write_bytes(b"")

    assert MULTIPROC_ENV not in os.environ
    assert not Path(path).exists()


def test_the_operators_directory_is_emptied_of_old_values_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_4242.db").write_bytes(b"from an earlier server")
    (shared / "README").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(shared))

    with multiprocess_directory(4) as path:
        assert path == str(shared)
        assert sorted(p.name for p in shared.iterdir()) == ["README"]

    assert shared.is_dir() and os.environ[MULTIPROC_ENV] == str(shared)


def test_one_worker_needs_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)

    with multiprocess_directory(1) as path:
        assert path is None and MULTIPROC_ENV not in os.environ
