"""An air-gapped host (an internal network: no route out) runs Ollama installed from controller files, with the
service's egress locked to loopback (ollama_egress_lock)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tests.support.archives import ARCH, RELEASES, archive_path
from tests.support.instances import Instance, apply_role, instance_names

(HOST,) = (Instance(name) for name in instance_names())
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)"


def test_host_cannot_reach_the_outside() -> None:
    assert HOST.sh("ip route show default") == ""
    for address, port in [("1.1.1.1", "443"), ("8.8.8.8", "53"), ("10.0.2.2", "80")]:
        out = HOST.sh(f"python3 -c '{CONNECT}' {address} {port} 2>&1; echo rc=$?", check=False)
        assert "Network is unreachable" in out, out
        assert "rc=1" in out


def test_service_answers_without_cloud() -> None:
    assert HOST.unit("ActiveState") == "active"
    assert HOST.api("/api/version")["version"] == "0.34.3"
    assert HOST.api("/api/tags") == {"models": []}
    assert "OLLAMA_NO_CLOUD=1" in HOST.unit("Environment").split()


# A listener on the host's own network address, and a connection to it made from inside ollama.service's cgroup
# (where systemd's IPAddressDeny applies) or from outside it.
LISTEN = "python3 -m http.server 8765 --bind {ip} >/dev/null 2>&1 & sleep 0.5"
FROM_SERVICE = """
cg=$(systemctl show ollama.service -p ControlGroup --value)
dir=/sys/fs/cgroup/unified$cg; [ -d "$dir" ] || dir=/sys/fs/cgroup$cg
sh -c 'echo $$ > "$0/cgroup.procs" && exec python3 -c "$1" "$2" 8765' "$dir" "{connect}" {ip} 2>&1; echo rc=$?
"""


def test_the_egress_lock_keeps_the_service_to_loopback_and_the_networks_allowed() -> None:
    ip = HOST.sh("hostname -I").split()[0]
    HOST.sh(LISTEN.format(ip=ip))
    from_service = FROM_SERVICE.format(connect=CONNECT, ip=ip)
    try:
        assert HOST.unit("IPAddressDeny") == "0.0.0.0/0 ::/0"
        assert "rc=0" in HOST.sh(f"python3 -c '{CONNECT}' {ip} 8765; echo rc=$?")  # the host itself may connect
        out = HOST.sh(from_service, check=False)
        assert "rc=1" in out and ("timed out" in out or "not permitted" in out), out
        assert HOST.api("/api/version")["version"] == "0.34.3"  # loopback clients still get answers

        run = apply_role(HOST.name, ollama_egress_allow=[f"{ip}/32"])
        assert run.rc == 0, run
        assert "rc=0" in HOST.sh(from_service, check=False)
    finally:
        HOST.sh("pkill -f '[h]ttp.server 8765'; true")
        assert apply_role(HOST.name).rc == 0
    assert "rc=1" in HOST.sh(from_service, check=False)


def test_a_doctored_bundle_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """Someone with access to the bundle swaps the archive for another binary and rewrites its sha256sum.txt to
    match. For a pinned version the pin wins; for an unpinned one the bundle's own file vouches for nothing."""
    bundle = tmp_path / "ollama"
    shutil.copytree(RELEASES / "0.34.3", bundle)
    main = archive_path("0.34.3").name
    shutil.copy(archive_path("0.34.2"), bundle / main)  # another binary under the expected name
    forged = hashlib.sha256((bundle / main).read_bytes()).hexdigest()
    sums = bundle / "sha256sum.txt"
    sums.write_text(
        "".join(
            f"{forged}  ./{main}\n" if line.endswith(main) else line + "\n" for line in sums.read_text().splitlines()
        )
    )
    pinned = json.loads((RELEASES / "checksums.json").read_text())
    release, starts = HOST.sh("readlink -f /usr/local/lib/ollama-releases/current"), HOST.starts()
    common = {"ollama_archive_src": f"{bundle}/", "ollama_checksums_file": str(sums)}

    # Pinned: refused even with the bundle's file trusted by name, naming both hashes.
    run = apply_role(HOST.name, **common, ollama_bundled_checksums_trusted_for=["0.34.3"])
    assert run.rc != 0, run
    message = " ".join(run.failures)
    assert f"says {forged}" in message and f"ollama_checksums says {pinned['0.34.3'][ARCH]}" in message, message
    # Unpinned: the file beside the archive is not enough.
    run = apply_role(HOST.name, **common, ollama_checksums={})
    assert run.rc != 0, run
    assert "lies beside the archive" in " ".join(run.failures), run
    assert HOST.sh("readlink -f /usr/local/lib/ollama-releases/current") == release
    assert HOST.starts() == starts
    assert HOST.api("/api/version")["version"] == "0.34.3"
