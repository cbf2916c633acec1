"""Filters of role ollama: which release archives a host needs and whether they fit on its disks. Pure functions,
so they are tested on their own (tests/test_ollama_filters.py) and run unchanged in the role."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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


def ollama_missing_path_hint(path: str) -> str:
    """Why a controller path is missing when a parent of it is a file (a bundle's tarball not unpacked yet), with
    what to do; "" otherwise."""
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.path.exists(path) or not parent.is_file():
        return ""
    return (
        f"{parent} is a file, not a directory: if it is a bundle's tarball, unpack it first "
        f"(tar -xf {parent} -C {parent.parent}) and point at the directory it holds"
    )


def _listed_sha256(checksums_text: str, name: str) -> str:
    """The sha256 a release's sha256sum.txt gives for one archive (`<hex>  ./<name>`, `*` and `./` optional)."""
    m = re.search(rf"^([0-9A-Fa-f]{{64}})[ \t]+\*?(?:\./)?{re.escape(name)}[ \t]*$", checksums_text, re.MULTILINE)
    return m.group(1).lower() if m else ""


# A URL's user and password (`https://user:pass@host/`, `http://token@proxy`): .match() at a URL's start, .search()
# anywhere in a value.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/@?#\s]*)@")


def ollama_url_credentials(src: str, base_url: str = "") -> dict[str, str]:
    """The user and password in the URL archives come from (`src` if it is a URL, else `base_url`), percent-decoded,
    for get_url's url_username/url_password: those are kept out of output, a URL's userinfo is not."""
    url = src if re.match(r"https?://", src) else base_url
    m = _USERINFO.match(url)
    user, _, password = (m.group(2) if m else "").partition(":")
    return {"username": unquote(user), "password": unquote(password)}


def _trusted_sha256(
    *,
    name: str,
    key: str,
    version: str,
    archive_sha256: str,
    checksums_file: str,
    checksums_text: str,
    beside: bool,
    trusted_for: list[str],
    pinned: dict[str, dict[str, str]],
) -> tuple[str, str, str]:
    """(sha256, who vouches for it, the problem if no trusted sha256 exists). A pinned version is trusted only
    through its pinned hash: a checksums file or ollama_archive_sha256 that disagrees is refused, naming both. For
    another version the hash must come from outside what travels with the archive (ollama_archive_sha256, a
    checksums file kept elsewhere), or the operator names the version in ollama_bundled_checksums_trusted_for."""
    pin = pinned.get(version, {}).get(key, "").lower()
    listed = _listed_sha256(checksums_text, name) if checksums_text else ""
    given = archive_sha256.lower()
    if pin:
        for other, origin in ((given, "ollama_archive_sha256"), (listed, f"ollama_checksums_file {checksums_file}")):
            if other and other != pin:
                return (
                    "",
                    "",
                    f"{name} of ollama {version}: {origin} says {other}, the pinned table ollama_checksums says "
                    f"{pin}. The pinned hash wins: the file or archive may have been tampered with. Fetch the "
                    "release again, or correct ollama_checksums if the pin is wrong",
                )
        return pin, "ollama_checksums", ""
    if given:
        return given, "ollama_archive_sha256", ""
    if listed and (not beside or version in trusted_for):
        return listed, f"ollama_checksums_file {checksums_file}", ""
    if listed:
        return (
            "",
            "",
            f"{name} of ollama {version} has no entry {key!r} in the pinned table ollama_checksums, and "
            f"{checksums_file} lies "
            "beside the archive, so whoever could swap the archive could swap it too: give the sha256 from "
            "somewhere else (add the version to ollama_checksums, set ollama_archive_sha256, or point "
            "ollama_checksums_file at a copy of the release's sha256sum.txt kept outside the bundle), or trust the "
            f"file by naming the version: ollama_bundled_checksums_trusted_for: ['{version}']",
        )
    remedy = (
        "give the release's sha256sum.txt, fetched separately, as ollama_checksums_file, or add the version to "
        "ollama_checksums"
        + (
            f", or set ollama_gpu_addon: none to go without the {key.partition('-')[2]} add-on"
            if "-" in key
            else " or set ollama_archive_sha256"
        )
    )
    if checksums_file:
        return "", "", f"{checksums_file} (ollama_checksums_file) has no line for {name} of ollama {version}: {remedy}"
    return "", "", f"no pinned sha256 for {name} of ollama {version} (no entry {key!r} in ollama_checksums): {remedy}"


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
    trusted_for: list[str] | None = None,
    archive_version: str = "",
) -> list[dict[str, Any]]:
    """The archives a host unpacks, main first: name, where it comes from, the sha256 expected and who said so
    (or, in `sha256_problem`, why no trusted sha256 exists: preflight refuses the run with it).

    The main archive comes from `src` (a URL, a controller path, or a directory ending in /) or else the release
    URL; an add-on from beside it, with the main archive's file name replaced (a mirror URL may carry a query
    string after it). A URL's user and password are left out (see ollama_url_credentials). The expected sha256:
    see _trusted_sha256 (ollama_archive_sha256 names the main archive only). A checksums file beside an archive
    source that holds another release (`archive_version`, an air-gap bundle's) says nothing about `version`.
    """
    main_name = f"ollama-linux-{arch}.{ext}"
    # A directory (trailing /) holds the release's files under their published names: one setting for a fleet
    # of mixed architectures (an air-gap bundle's ollama/).
    main_src = (src + main_name if src.endswith("/") else src) or f"{base_url.rstrip('/')}/v{version}/{main_name}"
    main_src = _USERINFO.sub(r"\1", main_src, count=1) if _USERINFO.match(main_src) else main_src
    # A checksums file in the archive's own directory travels with it (an air-gap bundle's sha256sum.txt).
    # Compared as the controller resolves them: a link or another spelling of the bundle's directory is the same one.
    beside = (
        bool(checksums_file)
        and not re.match(r"https?://", main_src)
        and os.path.dirname(os.path.realpath(checksums_file)) == os.path.dirname(os.path.realpath(main_src))
    )
    if beside and archive_version and archive_version != version:
        checksums_file = checksums_text = ""
    archives = []
    for part in ["", addon] if addon else [""]:
        name = f"ollama-linux-{arch}{f'-{part}' if part else ''}.{ext}"
        where = main_src if not part else re.sub(rf"/{re.escape(main_name)}(?=$|[?#])", f"/{name}", main_src)
        sha, origin, problem = _trusted_sha256(
            name=name,
            key=f"{arch}{f'-{part}' if part else ''}",
            version=version,
            archive_sha256="" if part else archive_sha256,
            checksums_file=checksums_file,
            checksums_text=checksums_text,
            beside=beside,
            trusted_for=[str(v) for v in trusted_for or []],
            pinned=pinned,
        )
        offered = ("" if part else archive_sha256) or (_listed_sha256(checksums_text, name) if checksums_text else "")
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
                "sha256": sha,
                "sha256_origin": origin,
                "sha256_problem": problem,
                # A hash was offered and is not trusted (it disagrees with the pin, or vouches for itself): an
                # integrity alarm, refused whether or not a host needs the archive now.
                "sha256_untrusted": bool(problem) and bool(offered),
            }
        )
    return archives


# Setting names that look like credentials (API_KEY, APIKEY, REGISTRY_TOKEN, DB_PASS, SMTP_PWD, AWS_CREDS, ...).
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASS|PWD|CRED|PRIVATE|AUTH|KEY", re.IGNORECASE)


def ollama_secret_keys(env: dict[str, Any]) -> list[str]:
    """The names in `env` whose values must stay out of world-readable files and output: a name that looks like a
    credential, or a value with a URL's user or password in it."""
    return sorted(k for k, v in env.items() if _SECRET_NAME.search(k) or _USERINFO.search(str(v)))


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
            "ollama_missing_path_hint": ollama_missing_path_hint,
            "ollama_shipments": ollama_shipments,
            "ollama_release_archives": ollama_release_archives,
            "ollama_secret_keys": ollama_secret_keys,
            "ollama_space_problems": ollama_space_problems,
            "ollama_url_credentials": ollama_url_credentials,
        }
