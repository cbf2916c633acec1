"""Pack a wheelhouse directory into one tar on the controller: pack_wheelhouse.py SRC_DIR DEST_TAR.

The tar's bytes depend only on the files' names and contents (sorted, no times or owners), so the role copies one
file per host, and nothing when the host already has these wheels: copying the directory itself costs one round
trip per file and host.
"""

import os
import sys
import tarfile
import tempfile
from pathlib import Path


def main(src: Path, dest: Path) -> None:
    files = sorted(p for p in src.iterdir() if p.is_file())
    if not files:
        sys.exit(f"cortex_env_wheelhouse {src} holds no files")
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.name)
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as data:
                tar.addfile(info, data)
    os.replace(tmp, dest)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
