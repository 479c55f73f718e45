#!/usr/bin/env python3
"""Install GraphiQL's browser assets for offline use (run by ``make install``).

For each package pinned in runql/web/graphiql/assets.json: ``npm pack`` the exact version into
a temporary folder, check the tarball against its pinned ``integrity`` (npm's sha512), take
the listed files out of it, check each against its SRI hash, and put them in the git-ignored
runql/web/graphiql/assets/ (replaced as a whole, so a failed run leaves the old set untouched).

Exit codes: 0 when the assets are installed, already up to date, or cannot be fetched on
this machine (no npm, registry unreachable): runql then serves the CDN page and says so in
its log. 1 when a download does not match its pinned hash: that is never papered over.

``--print-hashes`` packs the pinned versions and prints the hashes to paste into
assets.json after changing a version (it checks nothing).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runql.web.graphiql import ASSETS_DIR, Manifest, Package, load_manifest

PREFIX = "graphiql assets:"


class IntegrityError(Exception):
    pass


class FetchError(Exception):
    pass


def sri(algorithm: str, data: bytes) -> str:
    """A Subresource Integrity string (``sha384-<base64>``), npm uses the same form."""
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode()}"


def _check(expected: str, data: bytes, what: str) -> None:
    algorithm = expected.split("-", 1)[0]
    actual = sri(algorithm, data)
    if actual != expected:
        raise IntegrityError(f"{what}: expected {expected}, got {actual}")


def installed(manifest: Manifest, assets_dir: Path) -> bool:
    """Every file present with its pinned hash."""
    for asset in manifest.assets:
        path = assets_dir / asset.relative_path
        if not path.is_file():
            return False
        try:
            _check(asset.integrity, path.read_bytes(), asset.relative_path)
        except IntegrityError:
            return False
    return True


def npm_pack(npm: str, package: Package, dest: Path) -> bytes:
    """The tarball of ``name@version`` from the npm registry, as bytes."""
    spec = f"{package.name}@{package.version}"
    try:
        done = subprocess.run(
            [npm, "pack", spec, "--json", "--pack-destination", str(dest)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        raise FetchError(f"npm pack {spec} timed out") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"npm pack {spec} failed: {last}")
    filename = json.loads(done.stdout)[0]["filename"]
    return (dest / filename).read_bytes()


def _members(tarball: bytes, work: Path) -> tarfile.TarFile:
    path = work / "package.tgz"
    path.write_bytes(tarball)
    return tarfile.open(path, "r:gz")


def fetch(manifest: Manifest, assets_dir: Path, npm: str) -> None:
    """Pack, verify and install every file; replaces ``assets_dir`` only on success."""
    with tempfile.TemporaryDirectory(prefix="runql-graphiql-") as tmp:
        work = Path(tmp)
        staging = work / "assets"
        for package in manifest.packages:
            packed = work / package.name.replace("/", "+")
            packed.mkdir()
            tarball = npm_pack(npm, package, packed)
            _check(package.integrity, tarball, f"{package.name}@{package.version} tarball")
            with _members(tarball, packed) as tar:
                for asset in (a for a in manifest.assets if a.package == package.name):
                    member = tar.extractfile(f"package/{asset.path}")
                    if member is None:
                        raise IntegrityError(f"{asset.relative_path}: not a file in the tarball")
                    data = member.read()
                    _check(asset.integrity, data, asset.relative_path)
                    target = staging / asset.relative_path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
        # Same filesystem: stage next to the target, then swap.
        assets_dir.parent.mkdir(parents=True, exist_ok=True)
        incoming = assets_dir.with_name(assets_dir.name + ".incoming")
        shutil.rmtree(incoming, ignore_errors=True)
        shutil.copytree(staging, incoming)
        shutil.rmtree(assets_dir, ignore_errors=True)
        incoming.rename(assets_dir)


def print_hashes(manifest: Manifest, npm: str) -> None:
    with tempfile.TemporaryDirectory(prefix="runql-graphiql-") as tmp:
        for package in manifest.packages:
            packed = Path(tmp) / package.name.replace("/", "+")
            packed.mkdir()
            tarball = npm_pack(npm, package, packed)
            print(f"{package.name}@{package.version}  {sri('sha512', tarball)}")
            with _members(tarball, packed) as tar:
                for asset in (a for a in manifest.assets if a.package == package.name):
                    member = tar.extractfile(f"package/{asset.path}")
                    data = member.read() if member else b""
                    print(f"  {asset.path}  {sri('sha384', data)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ASSETS_DIR, help="default: %(default)s")
    parser.add_argument("--print-hashes", action="store_true")
    args = parser.parse_args(argv)
    manifest = load_manifest()

    if not args.print_hashes and installed(manifest, args.dest):
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print(f"{PREFIX} npm not found; GraphiQL will load its assets from {manifest.cdn}")
        return 0
    try:
        if args.print_hashes:
            print_hashes(manifest, npm)
            return 0
        fetch(manifest, args.dest, npm)
    except FetchError as exc:
        print(f"{PREFIX} {exc}; GraphiQL will load its assets from {manifest.cdn}")
        return 0
    except IntegrityError as exc:
        print(f"{PREFIX} INTEGRITY MISMATCH, nothing installed: {exc}", file=sys.stderr)
        return 1
    print(f"{PREFIX} {len(manifest.assets)} files installed in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
