"""scripts/fetch_graphiql_assets.py: what ``make install`` does without and with a bad npm.

A stand-in ``npm`` on PATH hands out a tarball that is not the pinned one; the real
download is exercised by ``make install`` itself and checked by
tests/http/test_graphiql.py::test_installed_assets_match_the_pinned_hashes.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from runql.web import graphiql

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_graphiql_assets.py"

FAKE_NPM = """\
#!{python}
# Stand-in for `npm pack SPEC --json --pack-destination DIR`: a tarball of junk.
import io, json, sys, tarfile
from pathlib import Path
spec, dest = sys.argv[2], Path(sys.argv[sys.argv.index("--pack-destination") + 1])
(Path({log!r})).open("a").write(spec + "\\n")
name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-") + ".tgz"
with tarfile.open(dest / name, "w:gz") as tar:
    data = b"not the pinned file"
    info = tarfile.TarInfo("package/index.js")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
print(json.dumps([{{"filename": name}}]))
"""


@pytest.fixture
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_graphiql_assets", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only a fake npm; returns the file it logs each packed spec to."""
    bin_dir, log = tmp_path / "bin", tmp_path / "npm.log"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(textwrap.dedent(FAKE_NPM.format(python=sys.executable, log=str(log))))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_without_npm_prints_one_line_and_succeeds(
    script: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    dest = tmp_path / "assets"
    assert script.main(["--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "npm not found" in out
    assert not dest.exists()


def test_a_tarball_that_is_not_the_pinned_one_installs_nothing(
    script: ModuleType, tmp_path: Path, fake_npm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "assets"
    dest.mkdir()
    (dest / "kept.txt").write_text("previous install")
    assert script.main(["--dest", str(dest)]) == 1
    assert "INTEGRITY MISMATCH" in capsys.readouterr().err
    assert [p.name for p in dest.iterdir()] == ["kept.txt"]
    assert fake_npm.read_text().splitlines() == [
        f"{p.name}@{p.version}" for p in graphiql.load_manifest().packages[:1]
    ]


def test_installed_assets_are_not_fetched_again(
    script: ModuleType, tmp_path: Path, fake_npm: Path
) -> None:
    if graphiql.missing_assets(graphiql.load_manifest(), graphiql.ASSETS_DIR):
        pytest.skip("GraphiQL assets not installed: run `make install`")
    dest = tmp_path / "assets"
    shutil.copytree(graphiql.ASSETS_DIR, dest)
    assert script.main(["--dest", str(dest)]) == 0
    assert not fake_npm.exists()
