"""Role ollama's filters: which archives a host gets (add-ons, mirrors with query strings, where each sha256 comes
from) and whether they fit on its filesystems. The filters are the code the role runs."""

from __future__ import annotations

from pathlib import Path
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
    version = overrides.pop("version", "0.34.3")
    result: list[dict[str, Any]] = F.ollama_release_archives(version, **{**spec, **overrides})
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
    main, rocm = archives(addon="rocm", pinned=pinned, archive_sha256="A" * 64)
    # A pinned version is trusted through its pin (lower-cased); ollama_archive_sha256 may only agree with it.
    assert (main["sha256"], main["sha256_origin"], main["sha256_problem"]) == ("a" * 64, "ollama_checksums", "")
    assert (rocm["sha256"], rocm["sha256_origin"]) == ("b" * 64, "ollama_checksums")
    # Unpinned: ollama_archive_sha256 names the main archive only; a checksums file kept apart gives the add-on.
    main, rocm = archives(addon="rocm", archive_sha256="C" * 64, checksums_text=SUMS, checksums_file="/etc/sums.txt")
    assert (main["sha256"], main["sha256_origin"]) == ("c" * 64, "ollama_archive_sha256")
    assert (rocm["sha256"], rocm["sha256_origin"]) == ("2" * 64, "ollama_checksums_file /etc/sums.txt")
    # A checksums file that lacks the add-on gives no sha256: the problem names the file and the archive.
    _, rocm = archives(addon="rocm", checksums_text=SUMS.splitlines()[0], checksums_file="/etc/sums.txt")
    assert rocm["sha256"] == ""
    assert rocm["sha256_problem"].startswith("/etc/sums.txt (ollama_checksums_file) has no line for ")
    assert "ollama-linux-amd64-rocm.tar.zst of ollama 0.34.3" in rocm["sha256_problem"]
    assert "ollama_gpu_addon: none" in rocm["sha256_problem"]
    (main,) = archives()
    assert main["sha256_problem"].startswith("no pinned sha256 for ollama-linux-amd64.tar.zst of ollama 0.34.3")


def test_a_checksums_file_that_disagrees_with_the_pin_is_refused_naming_both() -> None:
    """A doctored bundle: the archive swapped and its sha256sum.txt rewritten to match. The pin wins."""
    pinned = {"0.34.3": {"amd64": "a" * 64}}
    (main,) = archives(
        pinned=pinned,
        src="/srv/bundle/ollama/",
        checksums_text=SUMS,
        checksums_file="/srv/bundle/ollama/sha256sum.txt",
        trusted_for=["0.34.3"],
    )
    assert main["sha256"] == ""
    problem = main["sha256_problem"]
    assert f"ollama_checksums_file /srv/bundle/ollama/sha256sum.txt says {'1' * 64}" in problem
    assert f"the pinned table ollama_checksums says {'a' * 64}" in problem
    (main,) = archives(pinned=pinned, archive_sha256="d" * 64)
    assert "ollama_archive_sha256 says " + "d" * 64 in main["sha256_problem"]


@pytest.mark.parametrize(
    ("src", "checksums_file", "trusted_for", "trusted"),
    [
        ("/srv/bundle/ollama/", "/srv/bundle/ollama/sha256sum.txt", [], False),  # travels with the archive
        ("/srv/bundle/ollama/ollama-linux-amd64.tar.zst", "/srv/bundle/ollama/./sha256sum.txt", [], False),
        ("/srv/bundle/ollama/", "/srv/bundle/ollama/sha256sum.txt", ["0.34.3"], True),  # opted in by version
        ("/srv/bundle/ollama/", "/srv/bundle/ollama/sha256sum.txt", ["0.34.2"], False),  # another version's opt-in
        ("/srv/bundle/ollama/", "/etc/ollama-release/sha256sum.txt", [], True),  # kept apart
        ("https://mirror.example/ollama/ollama-linux-amd64.tar.zst", "/srv/sha256sum.txt", [], True),
    ],
)
def test_an_unpinned_version_trusts_only_a_checksums_file_kept_apart_or_named(
    src: str, checksums_file: str, trusted_for: list[str], trusted: bool
) -> None:
    (main,) = archives(src=src, checksums_text=SUMS, checksums_file=checksums_file, trusted_for=trusted_for)
    assert (main["sha256"] == "1" * 64) is trusted
    if not trusted:
        assert "lies beside the archive" in main["sha256_problem"]
        assert "ollama_bundled_checksums_trusted_for: ['0.34.3']" in main["sha256_problem"]


def test_mirror_credentials_never_reach_what_is_shown() -> None:
    src = "https://ops:s3cr%40t@mirror.example/ollama/ollama-linux-amd64.tar.zst?sig=1"
    main, rocm = archives(addon="rocm", src=src, checksums_text=SUMS, checksums_file="/srv/sums.txt")
    for archive in (main, rocm):
        assert "s3cr" not in repr(archive) and "ops" not in repr(archive)
    assert main["src"] == "https://mirror.example/ollama/ollama-linux-amd64.tar.zst?sig=1"
    assert F.ollama_url_credentials(src, BASE) == {"username": "ops", "password": "s3cr@t"}
    assert F.ollama_url_credentials("/srv/bundle/ollama/", "https://tok@mirror.example/") == {
        "username": "tok",
        "password": "",
    }
    assert F.ollama_url_credentials("", BASE) == {"username": "", "password": ""}
    (base,) = archives(base_url="http://u:p4ss@mirror.example/releases")
    assert base["src"] == "http://mirror.example/releases/v0.34.3/ollama-linux-amd64.tar.zst"


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("REGISTRY_TOKEN", "x", True),
        ("DB_PASS", "x", True),
        ("SMTP_PWD", "x", True),
        ("SVC_APIKEY", "x", True),
        ("AWS_CREDS", "x", True),
        ("CLIENT_SECRET", "x", True),
        ("PRIVATE_KEY_PATH", "x", True),
        ("HTTPS_PROXY", "http://token@proxy.example:3128", True),
        ("HTTPS_PROXY", "http://ops:pw@proxy.example:3128", True),
        ("HTTPS_PROXY", "http://proxy.example:3128", False),
        ("OLLAMA_DEBUG", "1", False),
        ("OLLAMA_KV_CACHE_TYPE", "q8_0", False),
    ],
)
def test_secret_settings_by_name_or_url_userinfo(name: str, value: str, secret: bool) -> None:
    assert (F.ollama_secret_keys({name: value}) == [name]) is secret


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


def test_a_bundle_s_sums_speak_only_for_the_release_it_holds(tmp_path: Path) -> None:
    """A rollback asks for 0.34.2 from a bundle of 0.34.3: the bundle's sha256sum.txt lists the same file names, but
    its hashes are 0.34.3's; only the pins (or another source) may vouch for 0.34.2."""
    bundle = f"{tmp_path}/bundle/ollama/"
    spec = {"src": bundle, "checksums_file": f"{bundle}sha256sum.txt", "checksums_text": SUMS}
    (main,) = archives(version="0.34.2", trusted_for=["0.34.2"], archive_version="0.34.3", **spec)
    assert main["sha256"] == "" and "has no line for" not in main["sha256_problem"], main
    (main,) = archives(version="0.34.3", trusted_for=["0.34.3"], archive_version="0.34.3", **spec)
    assert main["sha256"] == "1" * 64, main


def test_a_bundle_tarball_named_as_a_directory_says_to_unpack_it(tmp_path: Path) -> None:
    tarball = tmp_path / "bundle.tar"
    tarball.write_bytes(b"not a directory")
    hint = F.ollama_missing_path_hint(f"{tarball}/ollama/ollama-linux-amd64.tar.zst")
    assert hint.startswith(f"{tarball} is a file, not a directory")
    assert f"tar -xf {tarball} -C {tmp_path}" in hint
    assert F.ollama_missing_path_hint(f"{tmp_path}/nowhere/ollama-linux-amd64.tar.zst") == ""
    assert F.ollama_missing_path_hint(str(tarball)) == ""


def test_an_untrusted_hash_is_told_apart_from_no_hash() -> None:
    """A hash offered and not trusted (against the pin, or a bundle's file vouching for itself) is an integrity alarm
    the role refuses even where no host needs the archive; no hash at all is fine for a release a host kept."""
    pinned = {"0.34.3": {"amd64": "3" * 64}}
    (conflict,) = archives(checksums_file="/srv/b/sha256sum.txt", checksums_text=SUMS, pinned=pinned)
    assert conflict["sha256_problem"] and conflict["sha256_untrusted"]
    beside = {"src": "/srv/b/", "checksums_file": "/srv/b/sha256sum.txt", "checksums_text": SUMS}
    (self_vouching,) = archives(**beside)
    assert self_vouching["sha256_problem"] and self_vouching["sha256_untrusted"]
    (nothing,) = archives()
    assert nothing["sha256_problem"] and not nothing["sha256_untrusted"]
    (trusted,) = archives(pinned={"0.34.3": {"amd64": "1" * 64}}, checksums_text=SUMS, checksums_file="/x/s.txt")
    assert not trusted["sha256_problem"] and not trusted["sha256_untrusted"]
