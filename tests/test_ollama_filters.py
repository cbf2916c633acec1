"""Role ollama's filters: which archives a host gets (add-ons, mirrors with query strings, where each sha256 comes
from) and whether they fit on its filesystems. The filters are the code the role runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.filters import role_filters

F = role_filters("ollama")
SUMS = (
    "1111111111111111111111111111111111111111111111111111111111111111  ./ollama-linux-amd64.tar.zst\n"
    "2222222222222222222222222222222222222222222222222222222222222222  ./ollama-linux-amd64-rocm.tar.zst\n"
)
BASE = "https://github.com/ollama/ollama/releases/download"


def archives(**overrides: Any) -> list[dict[str, Any]]:
    spec: dict[str, Any] = {
        "arch": "amd64",
        "addon": "",
        "ext": "tar.zst",
        "src": "",
        "base_url": BASE,
        "archive_sha256": "",
        "checksums_file": "",
        "checksums_text": "",
        "pinned": {},
    }
    result: list[dict[str, Any]] = F.ollama_release_archives("0.34.3", **{**spec, **overrides})
    return result


@pytest.mark.parametrize(
    ("choice", "arch", "amd_gpu", "tegra", "addon"),
    [
        ("auto", "amd64", True, "", "rocm"),
        ("auto", "amd64", False, "", ""),
        ("auto", "arm64", False, "R36", "jetpack6"),
        ("auto", "arm64", False, "R35", "jetpack5"),
        ("auto", "arm64", False, "R32", ""),  # JetPack 4: no add-on (install.sh warns the same)
        ("auto", "amd64", False, "R36", ""),  # a Tegra release file on an x86 host means nothing
        ("auto", "arm64", True, "", ""),  # Ollama ships no ROCm add-on for arm64
        ("none", "amd64", True, "", ""),
        ("rocm", "amd64", False, "", "rocm"),
    ],
)
def test_the_addon_follows_the_hardware_unless_chosen(
    choice: str, arch: str, amd_gpu: bool, tegra: str, addon: str
) -> None:
    assert F.ollama_addon(choice, arch, amd_gpu, tegra) == addon


def test_release_urls_and_the_addon_beside_the_main_archive() -> None:
    main, rocm = archives(addon="rocm", checksums_text=SUMS, checksums_file="/srv/sha256sum.txt")
    assert main["src"] == f"{BASE}/v0.34.3/ollama-linux-amd64.tar.zst"
    assert rocm["src"] == f"{BASE}/v0.34.3/ollama-linux-amd64-rocm.tar.zst"
    assert (main["sha256"], rocm["sha256"]) == ("1" * 64, "2" * 64)
    assert rocm["sha256_origin"] == "ollama_checksums_file /srv/sha256sum.txt"
    assert not rocm["derived"]


def test_a_directory_holds_each_arch_and_add_on_under_its_published_name() -> None:
    for arch in ("amd64", "arm64"):
        main, addon = archives(src="/srv/bundle/ollama/", arch=arch, addon="rocm" if arch == "amd64" else "jetpack6")
        assert main["src"] == f"/srv/bundle/ollama/ollama-linux-{arch}.tar.zst"
        assert addon["src"] == f"/srv/bundle/ollama/{addon['name']}"
        assert not main["is_url"] and not addon["derived"]


def test_a_mirror_url_with_a_query_string() -> None:
    src = "https://mirror.example/ollama/ollama-linux-amd64.tar.zst?X-Amz-Signature=abc&X-Amz-Expires=300"
    main, rocm = archives(addon="rocm", src=src, checksums_text=SUMS)
    assert main["src"] == src and main["is_url"]
    assert main["path"] == "https://mirror.example/ollama/ollama-linux-amd64.tar.zst"
    assert rocm["src"] == src.replace("amd64.tar.zst?", "amd64-rocm.tar.zst?")
    assert rocm["path"].endswith("/ollama-linux-amd64-rocm.tar.zst")


def test_an_addon_cannot_be_found_beside_a_renamed_archive() -> None:
    _, rocm = archives(addon="rocm", src="/srv/ollama-0.34.3.tar.zst", checksums_text=SUMS)
    assert rocm["derived"], "preflight refuses it: the add-on's place cannot be worked out"


def test_where_each_sha256_comes_from() -> None:
    pinned = {"0.34.3": {"amd64": "a" * 64, "amd64-rocm": "B" * 64}}
    main, rocm = archives(addon="rocm", pinned=pinned, archive_sha256="C" * 64)
    # ollama_archive_sha256 names the main archive only; the add-on comes from the pinned table (lower-cased).
    assert (main["sha256"], main["sha256_origin"]) == ("c" * 64, "ollama_archive_sha256")
    assert (rocm["sha256"], rocm["sha256_origin"]) == ("b" * 64, "ollama_checksums")
    # A checksums file that lacks the add-on gives no sha256, never the pinned one: preflight names the file.
    _, rocm = archives(addon="rocm", pinned=pinned, checksums_text=SUMS.splitlines()[0])
    assert rocm["sha256"] == ""


def test_cached_paths_by_form() -> None:
    (url_archive,) = archives()
    (local,) = archives(src="/srv/bundle/ollama-linux-amd64.tar.zst")
    sha = url_archive["sha256"]
    assert F.ollama_cached_path(url_archive, "/c", "as-published") == f"/c/{sha}/ollama-linux-amd64.tar.zst"
    assert F.ollama_cached_path(url_archive, "/c", "gzip") == f"/c/{sha}/ollama-linux-amd64.tar.gz"
    assert F.ollama_cached_path(local, "/c", "as-published") == "/srv/bundle/ollama-linux-amd64.tar.zst"


def test_space_on_one_filesystem_adds_up() -> None:
    margin = F.SPACE_MARGIN
    df = ["/var/cache/cortex-ollama / 1000000000", "/usr/local/lib/ollama-releases / 1000000000"]
    needs = {"/var/cache/cortex-ollama": 400_000_000, "/usr/local/lib/ollama-releases": 600_000_000 - margin}
    assert F.ollama_space_problems(df, needs) == []
    needs["/usr/local/lib/ollama-releases"] += 1
    (problem,) = F.ollama_space_problems(df, needs)
    assert "/var/cache/cortex-ollama and /usr/local/lib/ollama-releases (filesystem /)" in problem
    assert "1000000000 available" in problem


def test_space_on_separate_filesystems_is_checked_apart() -> None:
    df = ["/var/cache/cortex-ollama /var 10", "/usr/local/lib/ollama-releases / 999999999999"]
    (problem,) = F.ollama_space_problems(df, {"/var/cache/cortex-ollama": 5, "/usr/local/lib/ollama-releases": 5})
    assert problem.startswith("/var/cache/cortex-ollama (filesystem /var)")
