"""How ``make test`` spreads the suite over the cores with pytest-xdist (``-n auto``).

Tests go to whichever worker is free, one at a time, except the tests of a file that can
share a module-scoped fixture (a ``runql serve`` process per backend, tests/clients/,
tests/test_workers.py): those stay together on one worker, which then starts that process
once rather than once per worker. Such files are the ones that define a module-scoped
fixture, or sit below a ``conftest.py`` that does. Those groups are handed out first
(xdist orders work units by their number of tests), so the slow process tests do not
finish last on one core while the other idles.

xdist's own ``--dist loadgroup`` would do with ``xdist_group`` marks, but it marks the
group in the test id, which pytest 9.2 no longer lets it change (pytest-xdist#1386);
this asks nothing of the test ids.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

_MODULE_SCOPE = re.compile(r"""scope\s*=\s*["']module["']""")


@functools.cache
def _defines_module_fixture(path: Path) -> bool:
    try:
        return bool(_MODULE_SCOPE.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False


class FileGroupScheduling(LoadScopeScheduling):
    """xdist's ``load``, except for files with module-scoped fixtures: one unit each."""

    def _split_scope(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        path = self.config.rootpath / file
        conftests = (
            parent / "conftest.py"
            for parent in path.parents
            if parent == self.config.rootpath or self.config.rootpath in parent.parents
        )
        if _defines_module_fixture(path) or any(map(_defines_module_fixture, conftests)):
            return file
        return nodeid


def make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling | None:
    """The scheduler for ``--dist load`` (xdist's default with ``-n``); other ``--dist``
    modes keep xdist's own."""
    if config.getvalue("dist") != "load":
        return None
    return FileGroupScheduling(config, log)  # type: ignore[arg-type]
