"""``runql documents check MANIFEST``: a deploy step that names every shipped document the
current schema would refuse, and exits 1 when there is one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def check(
    tmp_path: Path, manifest: object, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "manifest.json"
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return subprocess.run(
        [sys.executable, "-m", "runql.cli", "documents", "check", str(path)],
        env={"PATH": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_document_fits(tmp_path: Path) -> None:
    result = check(tmp_path, {"a1": "query Me { me { name } }", "b2": "{ __typename }"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("all 2 documents in ")


def test_each_broken_document_is_named(tmp_path: Path) -> None:
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": "ok", "name": "Me", "type": "query", "body": "query Me { me { name } }"},
            {"id": "gone", "name": "Old", "type": "query", "body": "query Old { me { email } }"},
            {"id": "torn", "name": "Torn", "type": "query", "body": "query Torn { me {"},
        ],
    }

    result = check(tmp_path, manifest)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "BROKEN gone (Old):" in lines
    assert "  Cannot query field 'email' on type 'User'." in lines
    assert "BROKEN torn (Torn):" in lines
    assert not any("ok" in line.split() for line in lines)
    assert lines[-1].startswith("2 of 3 documents in ")


def test_an_unusable_manifest_is_exit_1(tmp_path: Path) -> None:
    result = check(tmp_path, "{not json")

    assert result.returncode == 1
    assert "not a JSON manifest" in result.stderr


def test_the_document_limits_of_the_environment_apply(tmp_path: Path) -> None:
    deep = "query Deep { projects { edges { node { name } } } }"

    default = check(tmp_path, {"d": deep})
    strict = check(tmp_path, {"d": deep}, {"RUNQL_MAX_QUERY_DEPTH": "3"})

    assert default.returncode == 0, default.stdout
    assert strict.returncode == 1
    assert "over the limit of 3 (RUNQL_MAX_QUERY_DEPTH)" in strict.stdout
