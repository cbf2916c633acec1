"""Filters of role ollama: which release archives a host needs and whether they fit on its disks. Pure functions,
so they are tested on their own (tests/test_ollama_filters.py) and run unchanged in the role."""

from __future__ import annotations

import re
from typing import Any

# L4T release (first line of /etc/nv_tegra_release) -> JetPack add-on: R35 is JetPack 5, R36 JetPack 6.
TEGRA_ADDON = {"R35": "jetpack5", "R36": "jetpack6"}
# Room left over on a filesystem after the install, for logs and the server's own files.
SPACE_MARGIN = 64 * 1024 * 1024


def ollama_addon(choice: str, arch: str, amd_gpu: bool, tegra: str) -> str:
    """The add-on a host gets: `choice` unless auto; auto picks ROCm for an AMD GPU on amd64, JetPack on a Jetson."""
    if choice == "none":
        return ""
    if choice != "auto":
        return choice
    if arch == "amd64" and amd_gpu:
        return "rocm"
    if arch == "arm64":
        return TEGRA_ADDON.get(tegra, "")
    return ""


def _listed_sha256(checksums_text: str, name: str) -> str:
    """The sha256 a release's sha256sum.txt gives for one archive (`<hex>  ./<name>`, `*` and `./` optional)."""
    m = re.search(rf"^([0-9A-Fa-f]{{64}})[ \t]+\*?(?:\./)?{re.escape(name)}[ \t]*$", checksums_text, re.MULTILINE)
    return m.group(1) if m else ""


def ollama_release_archives(
    version: str,
    *,
    arch: str,
    addon: str,
    ext: str,
    src: str,
    base_url: str,
    archive_sha256: str,
    checksums_file: str,
    checksums_text: str,
    pinned: dict[str, dict[str, str]],
) -> list[dict[str, Any]]:
    """The archives a host unpacks, main first: name, where it comes from, the sha256 expected and who said so.

    The main archive comes from `src` (a URL, a controller path, or a directory ending in /) or else the release
    URL; an add-on from beside it, with the main archive's file name replaced (a mirror URL may carry a query
    string after it). The expected sha256: `archive_sha256` (main archive only), else the release's sha256sum.txt,
    else the pinned table.
    """
    main_name = f"ollama-linux-{arch}.{ext}"
    # A directory (trailing /) holds the release's files under their published names: one setting for a fleet
    # of mixed architectures (an air-gap bundle's ollama/).
    main_src = (src + main_name if src.endswith("/") else src) or f"{base_url.rstrip('/')}/v{version}/{main_name}"
    archives = []
    for part in ["", addon] if addon else [""]:
        name = f"ollama-linux-{arch}{f'-{part}' if part else ''}.{ext}"
        where = main_src if not part else re.sub(rf"/{re.escape(main_name)}(?=$|[?#])", f"/{name}", main_src)
        if archive_sha256 and not part:
            sha, origin = archive_sha256, "ollama_archive_sha256"
        elif checksums_text:
            sha, origin = _listed_sha256(checksums_text, name), f"ollama_checksums_file {checksums_file}"
        else:
            sha, origin = pinned.get(version, {}).get(f"{arch}{f'-{part}' if part else ''}", ""), "ollama_checksums"
        archives.append(
            {
                "version": version,
                "arch": arch,
                "addon": part,
                "name": name,
                "ext": ext,
                "src": where,
                # The path, without a query string or fragment: what preflight checks the file name on.
                "path": re.sub(r"[?#].*$", "", where),
                "is_url": bool(re.match(r"https?://", where)),
                "derived": bool(part) and where == main_src,
                "sha256": sha.lower(),
                "sha256_origin": origin,
            }
        )
    return archives


def ollama_cached_path(archive: dict[str, Any], cache_dir: str, form: str) -> str:
    """Where the controller keeps an archive: `as-published` (the air-gapped file itself, or the download in the
    cache) or `gzip` (the cache's gzip recompression of a .tar.zst, for hosts without zstd)."""
    cached = f"{cache_dir}/{archive['sha256']}/{archive['name']}"
    if form == "gzip":
        return cached.removesuffix(".tar.zst") + ".tar.gz"
    return cached if archive["is_url"] else archive["src"]


def ollama_shipments(stat_results: list[dict[str, Any]], unpacked: dict[str, str]) -> dict[str, dict[str, Any]]:
    """`<sha256>/<form>` -> the controller file a host may be sent: path, sha256, size and the bytes it unpacks to,
    from the results of stat over (archive, form) pairs and the unpacked sizes by archive sha256."""
    shipments = {}
    for result in stat_results:
        archive, form = result["__ollama_item"]
        shipments[f"{archive['sha256']}/{form}"] = {
            "path": result["stat"]["path"],
            "sha256": result["stat"]["checksum"],
            "size": int(result["stat"]["size"]),
            "unpacked": int(unpacked[archive["sha256"]]),
        }
    return shipments


def ollama_space_problems(df_lines: list[str], needs: dict[str, int]) -> list[str]:
    """What does not fit: `needs` maps a directory to the bytes written under it; `df_lines` are the host's
    `<dir> <mount point> <available bytes>` answers for the same directories. Directories on one filesystem add up."""
    mounts: dict[str, list[Any]] = {}
    for line in df_lines:
        directory, mount, available = line.split()
        entry = mounts.setdefault(mount, [int(available), 0, []])
        entry[1] += needs.get(directory, 0)
        entry[2].append(directory)
    problems = []
    for mount, (available, need, dirs) in sorted(mounts.items()):
        if need and need + SPACE_MARGIN > available:
            problems.append(
                f"{' and '.join(dirs)} (filesystem {mount}): needs {need + SPACE_MARGIN} bytes "
                f"({need} plus {SPACE_MARGIN} spare), {available} available"
            )
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "ollama_addon": ollama_addon,
            "ollama_cached_path": ollama_cached_path,
            "ollama_shipments": ollama_shipments,
            "ollama_release_archives": ollama_release_archives,
            "ollama_space_problems": ollama_space_problems,
        }
