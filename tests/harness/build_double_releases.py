#!/usr/bin/env python3
"""Build Ollama release archives whose `bin/ollama` is the TEST DOUBLE (ollama_double.py); a local registry.

Layout per version, like the real GitHub releases (as Ollama's release workflow builds them):
  OUT/<version>/ollama-linux-<arch>[-<addon>].tgz       versions below 0.14.0 (gzip)
  OUT/<version>/ollama-linux-<arch>[-<addon>].tar.zst   versions from 0.14.0 (zstd; needs the `zstd` command)
  OUT/<version>/sha256sum.txt                            `<hex>  ./<archive>` lines
The main archive holds `bin/ollama` (0755) and `lib/ollama/...`; the GPU add-ons (`-rocm` for amd64,
`-jetpack5`/`-jetpack6` for arm64) only their backend directory under `lib/ollama`, unpacked into the same tree.
As the release workflow packs them (`tar c -T list --owner 0 --group 0`): names without `./`, no entries for
`bin/`, `lib/` or `lib/ollama/` (tar makes them), entries owned 0:0 with fixed mtimes (two builds give the same
bytes), and libraries as a real file with `.so.N` and `.so` symlinks to it. Library names differ by version
(cuda_v12 before 0.14.0, cuda_v13 after) and every file names its version, so a test can tell whether an upgrade
wiped the old `lib/ollama`, and the double refuses to start beside another version's libraries.

`--registry DIR` writes a tiny model registry in the model-store layout (manifests/ + blobs/) that the
double's `pull` reads through OLLAMA_DOUBLE_REGISTRY. Outputs that are already up to date are left alone.

Usage (from the repository root):
  python -m tests.harness.build_double_releases --out DIR [--versions 0.13.4 0.34.3] [--arch amd64 arm64]
      [--registry DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.harness import ollama_double as double

HERE = Path(__file__).resolve().parent
DOUBLE_SOURCE = HERE / "ollama_double.py"
DEFAULT_VERSIONS = ["0.13.4", "0.13.5", "0.34.2", "0.34.3"]
ARCHES = ["amd64", "arm64"]
ZSTD_FROM = (0, 14, 0)
MTIME = 1_700_000_000  # fixed so archives are reproducible
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-rc\d+)?$")  # release candidates too, e.g. 0.14.0-rc1


def parse_version(text: str) -> tuple[int, int, int]:
    m = VERSION_RE.match(text)
    if not m:
        raise ValueError(f"invalid version {text!r}: expected X.Y.Z or X.Y.Z-rcN, e.g. 0.13.5")
    major, minor, patch = (int(g) for g in m.groups())
    return major, minor, patch


# Add-on archives per arch: the GPU backends install.sh adds on AMD (ROCm) and Jetson (JetPack) hosts.
ADDONS = {"amd64": ["rocm"], "arm64": ["jetpack5", "jetpack6"]}


def archive_name(version: str, arch: str, addon: str = "") -> str:
    ext = "tar.zst" if parse_version(version) >= ZSTD_FROM else "tgz"
    return f"ollama-linux-{arch}{f'-{addon}' if addon else ''}.{ext}"


def double_binary(version: str) -> bytes:
    source = DOUBLE_SOURCE.read_text()
    marker = 'VERSION = "@@VERSION@@"'
    if source.count(marker) != 1:
        raise RuntimeError(f"{DOUBLE_SOURCE.name}: expected exactly one line {marker}")
    return source.replace(marker, f'VERSION = "{version}"').encode()


def library_files(version: str, arch: str, addon: str = "") -> dict[str, bytes]:
    """Real library files (named with their full .so.X.Y.Z version) under lib/ollama, by relative path."""
    if addon:
        backend = {"rocm": "rocm_v7", "jetpack5": "cuda_jetpack5", "jetpack6": "cuda_jetpack6"}[addon]
        names = [f"{backend}/libggml-{'hip' if addon == 'rocm' else 'cuda'}.so"]
    else:
        cpu = "x64" if arch == "amd64" else "arm64"
        cuda = "cuda_v13" if parse_version(version) >= ZSTD_FROM else "cuda_v12"
        names = [
            f"{double.GGML_BASE}.0.0.0",
            f"libggml-cpu-{cpu}.so",
            f"{cuda}/libggml-cuda.so",
            f"{cuda}/libcublas.so.12.8.4",
        ]
    return {name: double.library_text(version, f"{name} linux-{arch}").encode() for name in names}


def library_links(files: dict[str, bytes]) -> dict[str, str]:
    """`.so.N` and `.so` symlinks to each versioned library (libfoo.so.12.8.4: libfoo.so.12, libfoo.so)."""
    links = {}
    for name in files:
        stem, _, numbers = name.partition(".so.")
        if not numbers:
            continue
        target = name.rpartition("/")[2]
        links[f"{stem}.so.{numbers.split('.')[0]}"] = target
        links[f"{stem}.so"] = target
    return links


def tar_bytes(version: str, arch: str, addon: str = "") -> bytes:
    """The uncompressed archive, as the release workflow writes it (see the module docstring)."""
    entries: list[tuple[str, bytes | str | None, int]] = []
    if not addon:
        entries.append(("bin/ollama", double_binary(version), 0o755))
    files = library_files(version, arch, addon)
    links = library_links(files)
    for subdir in sorted({name.rpartition("/")[0] for name in [*files, *links] if "/" in name}):
        entries.append((f"lib/ollama/{subdir}", None, 0o755))
    entries += [(f"lib/ollama/{name}", data, 0o644) for name, data in sorted(files.items())]
    entries += [(f"lib/ollama/{name}", target, 0o777) for name, target in sorted(links.items())]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(data: bytes, name: str) -> bytes:
    if name.endswith(".tgz"):
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        return out.getvalue()
    return subprocess.run(["zstd", "-q", "-19", "-c"], input=data, capture_output=True, check=True).stdout


def decompress(data: bytes, name: str) -> bytes:
    if name.endswith(".tgz"):
        return gzip.decompress(data)
    return subprocess.run(["zstd", "-q", "-d", "-c"], input=data, capture_output=True, check=True).stdout


def up_to_date(path: Path, tar: bytes) -> bool:
    if not path.is_file():
        return False
    try:
        return decompress(path.read_bytes(), path.name) == tar
    except (OSError, EOFError, gzip.BadGzipFile, subprocess.CalledProcessError):
        return False


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # builds run side by side (scenarios, the try-out)
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def build_release(out: Path, version: str, arches: list[str]) -> list[str]:
    """Write one version's archives (main and add-ons) and sha256sum.txt; a line per archive saying what happened."""
    vdir = out / version
    vdir.mkdir(parents=True, exist_ok=True)
    report, sums = [], []
    for arch in arches:
        for addon in ["", *ADDONS[arch]]:
            name = archive_name(version, arch, addon)
            path = vdir / name
            tar = tar_bytes(version, arch, addon)
            if up_to_date(path, tar):
                state = "up to date"
            else:
                write_if_changed(path, compress(tar, name))
                state = "built"
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            sums.append(f"{digest}  ./{name}\n")
            report.append(f"{state}: {version}/{name} sha256 {digest}")
    # The lines of archives built earlier for other arches stay: a build of one arch (the try-out's) must not drop
    # the others from the release's sha256sum.txt, nor from checksums.json, which the scenarios pin.
    built = {line.split()[1] for line in sums}
    listing = vdir / "sha256sum.txt"
    kept = [
        f"{line}\n"
        for line in (listing.read_text().splitlines() if listing.is_file() else [])
        if line.split()[1] not in built and (vdir / line.split()[1]).is_file()
    ]
    write_if_changed(listing, "".join(sorted(sums + kept, key=lambda s: s.split()[1])).encode())
    return report


def write_pinned_table(out: Path) -> None:
    """checksums.json: every built version's sha256 as role ollama's pinned table (ollama_checksums) keys them
    (`{version: {"amd64": ..., "amd64-rocm": ...}}`). The scenarios pin the double's releases this way, as the
    role's defaults pin Ollama's: the double is not Ollama, so Ollama's own pins would (rightly) refuse it."""
    table: dict[str, dict[str, str]] = {}
    for sums in sorted(out.glob("*/sha256sum.txt")):
        for line in sums.read_text().splitlines():
            digest, name = line.split()
            key = name.removeprefix("./ollama-linux-").split(".", 1)[0]
            table.setdefault(sums.parent.name, {})[key] = digest
    write_if_changed(out / "checksums.json", (json.dumps(table, indent=1, sort_keys=True) + "\n").encode())


# --- local model registry -------------------------------------------------------------------------------

# name -> (family, parameter size, quantization, blob size, extra layers)
REGISTRY_MODELS: dict[str, tuple[str, str, str, int, dict[str, str]]] = {
    "tinyllama-double:latest": (
        "llama",
        "1.1B",
        "Q4_0",
        4096,
        {"template": "<|user|>\n{{ .Prompt }}</s>\n<|assistant|>\n", "license": "TEST DOUBLE licence text"},
    ),
    "smollm-double:1b": ("llama", "1.7B", "Q4_K_M", 6144, {"template": "{{ .Prompt }}"}),
    # An embedding-only model (like nomic-embed-text: /api/generate answers 400) and a thinking one (like qwen3:
    # its first tokens are reasoning, so a short generate has an empty response).
    "nomic-embed-double:latest": ("nomic-bert", "137M", "F16", 2048, {"capabilities": "embedding"}),
    "qwen3-double:0.6b": (
        "qwen3",
        "751.63M",
        "Q4_K_M",
        3072,
        {"template": "{{ .Prompt }}", "capabilities": "completion thinking"},
    ),
}


def fake_gguf(label: str, size: int) -> bytes:
    """Bytes that start like a GGUF v3 file (magic, version) followed by deterministic filler."""
    head = b"GGUF" + (3).to_bytes(4, "little") + label.encode()
    filler = b""
    counter = 0
    while len(head) + len(filler) < size:
        filler += hashlib.sha256(f"{label}:{counter}".encode()).digest()
        counter += 1
    return (head + filler)[:size]


def gguf_with_chat_template(label: str, size: int, template: str) -> bytes:
    """A GGUF v3 header with one metadata key, `tokenizer.chat_template` (as llama.cpp's converters write it),
    then filler: a file from which Ollama's create detects a template."""

    def string(text: str) -> bytes:
        data = text.encode()
        return len(data).to_bytes(8, "little") + data

    head = b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
    head += string("tokenizer.chat_template") + (8).to_bytes(4, "little") + string(template)
    return head + fake_gguf(label, max(size - len(head), 0))[len(head) :]


def build_registry(root: Path) -> list[str]:
    store = double.Store(root)
    store.ensure_dirs()
    report = []
    for model, (family, params, quant, size, extra) in REGISTRY_MODELS.items():
        name = double.parse_name(model)
        layers = [{"mediaType": double.MODEL_MEDIA_TYPE, **double.put_blob(store, fake_gguf(model, size))}]
        if "template" in extra:
            layers.append(
                {
                    "mediaType": double.TEMPLATE_MEDIA_TYPE,
                    **double.put_blob(store, extra["template"].encode()),
                }
            )
        if "license" in extra:
            layers.append({"mediaType": double.LICENSE_MEDIA_TYPE, **double.put_blob(store, extra["license"].encode())})
        params_blob = json.dumps({"stop": ["</s>"]}, separators=(",", ":")).encode()
        layers.append({"mediaType": double.PARAMS_MEDIA_TYPE, **double.put_blob(store, params_blob)})
        config = double.model_config(
            family=family,
            parameter_size=params,
            quantization=quant,
            diff_ids=[layer["digest"] for layer in layers],
            architecture="amd64",
            capabilities=extra.get("capabilities", "").split(),
        )
        config_layer = {"mediaType": double.CONFIG_MEDIA_TYPE, **double.put_blob(store, config)}
        raw = double.manifest_bytes(config_layer, layers)
        path = store.manifest_path(name)
        changed = not path.is_file() or path.read_bytes() != raw
        if changed:
            store.write_manifest(name, raw)
        report.append(f"{'built' if changed else 'up to date'}: registry {name.shortest()} ({size} B model blob)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="directory for <version>/ archives and sha256sum.txt")
    parser.add_argument("--versions", nargs="+", default=DEFAULT_VERSIONS, metavar="X.Y.Z")
    parser.add_argument("--arch", nargs="+", default=ARCHES, choices=ARCHES)
    parser.add_argument("--registry", type=Path, help="also write a tiny local model registry here")
    args = parser.parse_args(argv)
    if args.out is None and args.registry is None:
        parser.error("nothing to do: give --out DIR and/or --registry DIR")
    for v in args.versions:  # validate everything before writing anything
        try:
            parse_version(v)
        except ValueError as e:
            parser.error(str(e))
    report: list[str] = []
    if args.out is not None:
        for v in args.versions:
            report += build_release(args.out, v, args.arch)
        write_pinned_table(args.out)
    if args.registry is not None:
        report += build_registry(args.registry)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
