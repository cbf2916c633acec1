"""An air-gapped host (an internal network: no route out) runs Ollama installed from controller files."""

from __future__ import annotations

from tests.support.instances import Instance, instance_names

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
