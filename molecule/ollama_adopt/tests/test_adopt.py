"""A host set up by Ollama's install.sh (and the manual tar steps), taken over by the site playbook (converge):
every model is still listed and stored in the role's model directory, the service, user, binary and identity key
are the role's, and what install.sh left is gone. Then a second take-over, of an install.sh store holding a model
the role's store already has under the same name, says what it moved and what it kept."""

from __future__ import annotations

import json

from tests.support.instances import Instance, apply_role, instance_names

(HOST,) = (Instance(name) for name in instance_names())
OLD_HOME = "/usr/share/ollama"
STORE = "/var/lib/ollama/models"


def model_names() -> set[str]:
    return {m["name"] for m in HOST.api("/api/tags")["models"]}


def test_every_model_is_still_listed_and_lives_in_the_role_store() -> None:
    assert model_names() == {"first:latest", "second:1b"}
    for name, tag in (("first", "latest"), ("second", "1b")):
        manifest = json.loads(HOST.sh(f"cat {STORE}/manifests/registry.ollama.ai/library/{name}/{tag}"))
        for layer in [manifest["config"], *manifest["layers"]]:
            blob = f"{STORE}/blobs/{layer['digest'].replace(':', '-')}"
            assert HOST.sh(f"stat -c %U {blob}").strip() == "ollama"
            assert HOST.sh(f"sha256sum {blob}").split()[0] == layer["digest"].split(":")[1]
    assert HOST.sh(f"find {OLD_HOME}/.ollama/models -type f") == ""


def test_the_service_user_and_binary_are_the_roles() -> None:
    assert "Base unit of role ollama" in HOST.sh("cat /etc/systemd/system/ollama.service")
    assert HOST.unit("ActiveState") == "active"
    assert HOST.unit("User") == "ollama"
    assert HOST.unit("ProtectSystem") == "strict"
    assert HOST.api("/api/version")["version"] == "0.34.3"
    *_, home, shell = HOST.sh("getent passwd ollama").strip().split(":")
    assert (home, shell) == ("/var/lib/ollama", "/usr/sbin/nologin")
    assert HOST.sh("systemctl is-enabled ollama").strip() == "enabled"
    # install.sh's WantedBy=default.target link went with its unit.
    assert HOST.sh("ls /etc/systemd/system/default.target.wants/ 2>/dev/null || true").strip() == ""
    # The server keeps its identity (ollama.com signs requests with it).
    key = HOST.sh("sha256sum /var/lib/ollama/.ollama/id_ed25519").split()[0]
    assert key == HOST.sh("cat /root/install-sh-key.sha256").strip()


def test_what_install_sh_left_is_gone() -> None:
    assert HOST.sh("ls -d /usr/bin/ollama /usr/lib/ollama /usr/local/lib/ollama 2>/dev/null || true") == ""
    assert HOST.sh("readlink /usr/local/bin/ollama").strip() == "../lib/ollama-releases/current/bin/ollama"
    assert HOST.sh("command -v ollama").strip() == "/usr/local/bin/ollama"
    assert "0.34.3" in HOST.sh("ollama --version")


def test_a_takeover_says_what_it_moved_and_keeps_both_copies_of_a_clashing_model() -> None:
    """install.sh run again over the role's host: its user home, unit and store come back, with one model of its
    own and one whose name the role's store already holds (different content)."""
    HOST.sh(
        f"systemctl stop ollama && usermod -d {OLD_HOME} ollama && "
        f"mkdir -p {OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/first "
        f"{OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/third {OLD_HOME}/.ollama/models/blobs && "
        f"cp {STORE}/manifests/registry.ollama.ai/library/second/1b "
        f"{OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/third/latest && "
        f"echo '{{}}' > {OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/first/latest && "
        f"chown -R ollama:ollama {OLD_HOME} && "
        "sed -i 's/Base unit of role ollama/Ollama Service/' /etc/systemd/system/ollama.service && "
        "systemctl daemon-reload && systemctl start ollama"
    )

    run = apply_role(HOST.name)

    assert run.rc == 0, run
    assert "1 models (1 files" in run.output and f"from {OLD_HOME}/.ollama/models" in run.output
    assert "kept where they were" in run.output and "first/latest" in run.output
    assert model_names() == {"first:latest", "second:1b", "third:latest"}
    assert HOST.sh(f"cat {OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/first/latest").strip() == "{}"
    assert "Base unit of role ollama" in HOST.sh("cat /etc/systemd/system/ollama.service")
    again = apply_role(HOST.name)
    assert (again.rc, again.stats["changed"]) == (0, 0), again


def test_a_store_outside_the_home_on_another_filesystem_belongs_to_the_service_user() -> None:
    """ollama_data_dir /srv/ollama/models, on a filesystem of its own: the take-over copies across filesystems, and
    every directory it makes in the store (blobs/, manifests/, ...) is the service user's, not root's."""
    HOST.sh(
        f"systemctl stop ollama && usermod -d {OLD_HOME} ollama && mkdir -p /srv && mount -t tmpfs tmpfs /srv && "
        f"mkdir -p {OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/fourth && "
        f"cp {STORE}/manifests/registry.ollama.ai/library/second/1b "
        f"{OLD_HOME}/.ollama/models/manifests/registry.ollama.ai/library/fourth/latest && "
        f"mkdir -p {OLD_HOME}/.ollama/models/blobs && cp {STORE}/blobs/* {OLD_HOME}/.ollama/models/blobs/ && "
        f"chown -R ollama:ollama {OLD_HOME} && "
        "sed -i 's/Base unit of role ollama/Ollama Service/' /etc/systemd/system/ollama.service && "
        "systemctl daemon-reload && systemctl start ollama"
    )
    try:
        run = apply_role(HOST.name, ollama_data_dir="/srv/ollama/models")
        assert run.rc == 0, run
        assert HOST.sh("find /srv/ollama/models ! -user ollama") == "", "files or directories not ollama's"
        assert "fourth:latest" in model_names()
        assert HOST.sh(f"find {OLD_HOME}/.ollama/models -type f") == ""
        again = apply_role(HOST.name, ollama_data_dir="/srv/ollama/models")
        assert (again.rc, again.stats["changed"]) == (0, 0), again
    finally:
        HOST.sh("systemctl stop ollama; umount /srv; true")
