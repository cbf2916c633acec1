"""roles/cortex_env/files/pack_wheelhouse.py: the tar the role copies to each host must have the same bytes for the
same wheels (else every run copies and reinstalls), and different bytes when a wheel changes under the same name
(a rebuilt cortex_client of the same version)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.support.archives import REPO

PACK = REPO / "roles" / "cortex_env" / "files" / "pack_wheelhouse.py"


def pack(src: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PACK), str(src), str(dest)], capture_output=True, text=True, check=False)


def test_the_same_wheels_give_the_same_bytes_and_a_changed_one_does_not(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "b-1.0-py3-none-any.whl").write_bytes(b"b" * 1000)
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"a" * 10)
    assert pack(wheels, tmp_path / "one.tar").returncode == 0
    os.utime(wheels / "a-1.0-py3-none-any.whl", (0, 0))  # times and order on disk do not count
    assert pack(wheels, tmp_path / "two.tar").returncode == 0
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    with tarfile.open(tmp_path / "one.tar") as tar:
        assert tar.getnames() == ["a-1.0-py3-none-any.whl", "b-1.0-py3-none-any.whl"]
        assert tar.extractfile("a-1.0-py3-none-any.whl").read() == b"a" * 10  # type: ignore[union-attr]

    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"A" * 10)  # rebuilt, same name and size
    assert pack(wheels, tmp_path / "one.tar").returncode == 0
    assert (tmp_path / "one.tar").read_bytes() != (tmp_path / "two.tar").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.tar", "two.tar", "wheels"], "no temporary file left"


def test_an_empty_wheelhouse_is_a_clear_error(tmp_path: Path) -> None:
    result = pack(tmp_path, tmp_path / "out.tar")
    assert result.returncode != 0
    assert "holds no files" in result.stderr
    assert not (tmp_path / "out.tar").exists()
