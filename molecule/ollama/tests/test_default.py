"""What converge left on each distro: the ollama user, root-owned binaries, the hardened unit, a loopback-only
server answering the pinned version (the TEST DOUBLE 0.34.3), and a drop-in that a user's override.conf beats.
"""

from __future__ import annotations

import shlex

import pytest

from tests.support.archives import RELEASES, archive_path
from tests.support.instances import Instance, apply_role, instance_names

VERSION = "0.34.3"
PREFIX = "/usr/local"
RELEASES_DIR = f"{PREFIX}/lib/ollama-releases"
HOME = "/var/lib/ollama"
MODELS = "/var/lib/ollama/models"


@pytest.fixture(params=instance_names(), scope="module")
def host(request: pytest.FixtureRequest) -> Instance:
    return Instance(request.param)


def stat(host: Instance, path: str) -> str:
    return host.sh(f"stat -c '%U %G %a' {path}").strip()


def existing_groups(host: Instance, names: list[str]) -> list[str]:
    return [name for name in names if host.sh(f"getent group {name}", check=False)]


def test_user_and_device_groups(host: Instance) -> None:
    *_, home, shell = host.sh("getent passwd ollama").strip().split(":")
    assert (home, shell) == (HOME, "/usr/sbin/nologin")
    groups = host.sh("id -nG ollama").split()
    expected = existing_groups(host, ["render", "video"])
    assert expected, "the images have at least the video group"
    assert set(expected) <= set(groups)
    assert groups[0] == "ollama"


def test_binary_and_libraries_are_root_owned(host: Instance) -> None:
    """bin/ollama links through releases/current into a release directory holding bin/ and lib/ollama."""
    assert host.sh(f"readlink {PREFIX}/bin/ollama").strip() == "../lib/ollama-releases/current/bin/ollama"
    release = host.sh(f"readlink -f {RELEASES_DIR}/current").strip()
    assert stat(host, f"{release}/bin/ollama") == "root root 755"
    assert stat(host, f"{release}/lib/ollama") == "root root 755"
    # Nothing in the releases belongs to anyone else or is writable by group/others (the service cannot alter it).
    assert host.sh(f"find {RELEASES_DIR} ! -type l \\( ! -user root -o -perm /022 \\)") == ""
    assert host.sh(f"find {release}/lib/ollama -type f | wc -l").strip() != "0"
    assert host.sh(f"ls -d {PREFIX}/lib/ollama 2>/dev/null || true") == ""  # no flat layout beside it


def test_state_and_models_owned_by_ollama(host: Instance) -> None:
    assert stat(host, HOME) == "ollama ollama 750"
    assert stat(host, MODELS) == "ollama ollama 750"
    # The server wrote its key into HOME under ProtectSystem=strict, so HOME really is writable for it.
    assert stat(host, f"{HOME}/.ollama/id_ed25519").startswith("ollama ollama")


def test_installed_archive_is_recorded_and_staging_is_clean(host: Instance) -> None:
    sums = (RELEASES / VERSION / "sha256sum.txt").read_text()
    expected = next(line.split()[0] for line in sums.splitlines() if line.endswith(archive_path(VERSION).name))
    assert host.sh(f"cat {RELEASES_DIR}/current/.cortex-release").strip() == expected
    assert host.sh("ls -A /var/cache/cortex-ollama 2>/dev/null || true") == ""


def test_unit_runs_as_ollama_and_is_enabled(host: Instance) -> None:
    assert host.sh("systemctl is-enabled ollama").strip() == "enabled"
    assert host.unit("ActiveState") == "active"
    assert host.unit("User") == "ollama"
    assert host.unit("Group") == "ollama"
    assert host.unit("ExecStart").startswith(f"{{ path={PREFIX}/bin/ollama ; argv[]={PREFIX}/bin/ollama serve ;")
    assert host.unit("SupplementaryGroups").split() == existing_groups(host, ["render", "video"])
    assert host.unit("Restart") == "always"
    assert host.unit("StartLimitBurst") == "5"


def test_hardening_keeps_gpu_devices_reachable(host: Instance) -> None:
    assert host.unit("PrivateDevices") == "no"
    assert host.unit("DevicePolicy") == "closed"
    allowed = set(host.sh("systemctl show -p DeviceAllow ollama").splitlines())
    assert {"DeviceAllow=char-nvidia* rw", "DeviceAllow=char-drm rw", "DeviceAllow=char-kfd rw"} <= allowed
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelTunables": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        # Deliberately off: CUDA/ROCm JIT needs W+X memory (see the unit template).
        "MemoryDenyWriteExecute": "no",
        # One runner killed for memory must not stop the server.
        "OOMPolicy": "continue",
    }
    assert {prop: host.unit(prop) for prop in expected} == expected
    assert host.unit("ReadWritePaths").split() == [HOME, MODELS]


def test_device_nodes_come_from_their_own_unit_not_an_exec_start_pre(host: Instance) -> None:
    # A node made by the unit's own ExecStartPre is not in the device allow-list fixed at its start.
    assert host.unit("ExecStartPre") == ""
    assert "nvidia-device-nodes.service" in host.unit("After").split()


def test_gpu_check_reads_the_servers_discovery_from_its_journal() -> None:
    """tasks/ollama_gpu.yml of role nvidia_driver against the running server's real journal: the TEST DOUBLE logs
    `inference compute ... library=cpu` like Ollama on a host where CUDA is unusable. With a GPU present
    (__nvidia_driver_gpus, which the role's probe sets, given here) that is a silent CPU fallback."""
    host = Instance(instance_names()[0])
    gpu = [{"address": "0000:17:00.0", "device": "0x2330", "class": "0x030200", "driver": "nvidia"}]
    failed = apply_role(host.name, role="nvidia_driver", tasks="ollama_gpu", __nvidia_driver_gpus=gpu)
    assert failed.rc != 0
    message = " ".join(failed.failures)
    assert "Ollama runs on cpu, not on the NVIDIA GPU" in message and "library=cpu" in message, message
    warned = apply_role(
        host.name,
        role="nvidia_driver",
        tasks="ollama_gpu",
        __nvidia_driver_gpus=gpu,
        nvidia_driver_ollama_gpu_check="warn",
    )
    assert warned.rc == 0 and "Ollama runs on cpu, not on the NVIDIA GPU" in warned.output, warned
    no_gpu = apply_role(host.name, role="nvidia_driver", tasks="ollama_gpu")
    assert no_gpu.rc == 0 and no_gpu.stats["changed"] == 0 and "Ollama runs on" not in no_gpu.output, no_gpu


def test_sandbox_is_in_force_for_the_running_server(host: Instance) -> None:
    pid = host.unit("MainPID")
    mounts = {}
    for line in host.sh(f"cat /proc/{pid}/mountinfo").splitlines():
        fields = line.split()
        mounts[fields[4]] = fields[5].split(",")
    assert "ro" in mounts["/"], "ProtectSystem=strict did not make / read-only for the server"
    assert "rw" in mounts[HOME]
    status = host.sh(f"cat /proc/{pid}/status")
    assert "NoNewPrivs:\t1" in status
    assert "CapEff:\t0000000000000000" in status


def test_environment_comes_from_the_drop_in(host: Instance) -> None:
    assert host.unit("DropInPaths") == "/etc/systemd/system/ollama.service.d/10-cortex.conf"
    env = host.unit("Environment").split()
    assert env == [
        f"HOME={HOME}",
        "OLLAMA_HOST=127.0.0.1:11434",
        f"OLLAMA_MODELS={MODELS}",
        "OLLAMA_KEEP_ALIVE=5m",
        "OLLAMA_NUM_PARALLEL=1",
        "OLLAMA_MAX_LOADED_MODELS=0",
    ]


def test_listens_on_loopback_only(host: Instance) -> None:
    listeners = [line.split()[3] for line in host.sh("ss -ltnH").splitlines()]
    assert [addr for addr in listeners if addr.endswith(":11434")] == ["127.0.0.1:11434"]


def test_api_and_cli_report_the_pinned_version(host: Instance) -> None:
    assert host.api("/api/version") == {"version": VERSION}
    assert VERSION in host.sh(f"{PREFIX}/bin/ollama --version")


def test_settings_reach_the_server_and_revert() -> None:
    host = Instance(instance_names()[0])
    odd = 'a "quoted" 50% \\ value'
    settings = {
        "ollama_keep_alive": "1h30m",
        "ollama_num_parallel": 2,
        "ollama_max_loaded_models": 3,
        "ollama_context_length": 8192,
        "ollama_flash_attention": False,
        "ollama_no_cloud": True,
        "ollama_origins": ["https://app.example.com", "https://*.cortex.example.com", "chrome-extension://abcdef"],
        "ollama_https_proxy": "http://proxy.example.internal:3128",
        "ollama_no_proxy": "localhost,127.0.0.1",
        "ollama_extra_env": {"OLLAMA_DEBUG": "1", "CORTEX_ODD": odd},
    }
    starts = host.starts()
    try:
        run = apply_role(host.name, ollama_version=VERSION, **settings)
        assert run.rc == 0, run
        assert host.starts() == starts + 1, "a settings change restarts the server exactly once"
        env = dict(item.split("=", 1) for item in shlex.split(host.unit("Environment")))
        assert env == {
            "HOME": HOME,
            "OLLAMA_HOST": "127.0.0.1:11434",
            "OLLAMA_MODELS": MODELS,
            "OLLAMA_KEEP_ALIVE": "1h30m",
            "OLLAMA_NUM_PARALLEL": "2",
            "OLLAMA_MAX_LOADED_MODELS": "3",
            "OLLAMA_CONTEXT_LENGTH": "8192",
            "OLLAMA_FLASH_ATTENTION": "0",
            "OLLAMA_ORIGINS": "https://app.example.com,https://*.cortex.example.com,chrome-extension://abcdef",
            "OLLAMA_NO_CLOUD": "1",
            "HTTPS_PROXY": "http://proxy.example.internal:3128",
            "NO_PROXY": "localhost,127.0.0.1",
            "CORTEX_ODD": odd,
            "OLLAMA_DEBUG": "1",
        }
        # The running server (the double logs its OLLAMA_* settings at start) got them too.
        config = host.sh("journalctl -u ollama -o cat | grep 'server config' | tail -1")
        assert "OLLAMA_NO_CLOUD:1" in config
        assert "OLLAMA_KEEP_ALIVE:1h30m" in config
    finally:
        restore = apply_role(host.name, ollama_version=VERSION)
    assert restore.rc == 0, restore
    assert "OLLAMA_NO_CLOUD=1" not in host.unit("Environment")
    assert host.api("/api/version") == {"version": VERSION}


def test_secret_settings_stay_in_a_root_only_file_and_out_of_every_output() -> None:
    host = Instance(instance_names()[0])
    password, token = "Pr0xy-Pa55-w0rd", "tok-0123456789abcdef"
    proxy = f"http://ops:{password}@proxy.example.internal:3128"
    settings = {"ollama_https_proxy": proxy, "ollama_extra_env": {"REGISTRY_TOKEN": token, "OLLAMA_DEBUG": "1"}}
    try:
        run = apply_role(host.name, ollama_version=VERSION, diff=True, **settings)
        assert run.rc == 0, run
        dropin = host.sh("cat /etc/systemd/system/ollama.service.d/10-cortex.conf")
        shown = host.unit("Environment")  # what any local user can read with systemctl show
        for text in (run.output, dropin, shown):
            assert password not in text
            assert token not in text
        assert "EnvironmentFile=/etc/ollama/secrets.env" in dropin
        assert "OLLAMA_DEBUG=1" in shown  # not a secret: stays in the drop-in
        assert stat(host, "/etc/ollama/secrets.env") == "root root 600"
        assert stat(host, "/etc/ollama") == "root root 700"
        environ = host.sh(f"tr '\\0' '\\n' < /proc/{host.unit('MainPID')}/environ").splitlines()
        assert f"HTTPS_PROXY={proxy}" in environ  # the server itself gets them
        assert f"REGISTRY_TOKEN={token}" in environ
        again = apply_role(host.name, ollama_version=VERSION, **settings)
        assert again.stats.get("changed", 0) == 0, again
    finally:
        restore = apply_role(host.name, ollama_version=VERSION)
    assert restore.rc == 0, restore
    assert not host.host.file("/etc/ollama/secrets.env").exists
    assert "EnvironmentFile" not in host.sh("cat /etc/systemd/system/ollama.service.d/10-cortex.conf")


def test_override_conf_wins_and_survives_a_rerun() -> None:
    host = Instance(instance_names()[0])
    override = "/etc/systemd/system/ollama.service.d/override.conf"
    host.sh(f"printf '[Service]\\nEnvironment=OLLAMA_KEEP_ALIVE=1h\\n' > {override} && systemctl daemon-reload")
    try:
        assert "OLLAMA_KEEP_ALIVE=1h" in host.unit("Environment").split()
        run = apply_role(host.name, ollama_version=VERSION)
        assert run.rc == 0, run
        assert run.stats["changed"] == 0, run
        assert "OLLAMA_KEEP_ALIVE=1h" in host.sh(f"cat {override}")
        assert "OLLAMA_KEEP_ALIVE=1h" in host.unit("Environment").split()
    finally:
        host.sh(f"rm -f {override} && systemctl daemon-reload")
    assert "OLLAMA_KEEP_ALIVE=5m" in host.unit("Environment").split()


@pytest.mark.parametrize(
    ("override", "files", "complaints"),
    [
        (
            # One run, every guarantee broken at once: the refusal names each of them.
            "Environment=OLLAMA_HOST=0.0.0.0:11434\nEnvironment=OLLAMA_MODELS=/srv/models\n"
            "Environment=OLLAMA_ORIGINS=app://cortex\n",
            {},
            [
                "OLLAMA_HOST=0.0.0.0:11434 (from Environment=) binds beyond this host without ollama_allow_remote_bind",
                "OLLAMA_MODELS=/srv/models (from Environment=) is not in a writable path",
                "OLLAMA_ORIGINS entries (from Environment=) that stop the server or admit any site: app://cortex",
            ],
        ),
        ("Environment=OLLAMA_HOST=http://[::]:11434\n", {}, ["binds beyond this host"]),
        (
            # An EnvironmentFile= wins over every Environment= line, the role's drop-in included.
            "EnvironmentFile=-/etc/default/ollama\n",
            {"/etc/default/ollama": "# site settings\nOLLAMA_HOST=0.0.0.0\n"},
            ["OLLAMA_HOST=0.0.0.0 (from /etc/default/ollama) binds beyond this host"],
        ),
    ],
    ids=["all-interfaces-models-origins", "ipv6-any", "environment-file"],
)
def test_an_override_that_breaks_a_guarantee_fails_the_run(
    override: str, files: dict[str, str], complaints: list[str]
) -> None:
    """Ollama's FAQ tells people to set OLLAMA_HOST=0.0.0.0 in override.conf (or a file it names); the role reads
    the environment systemd really gives the service and refuses to go on, without restarting it."""
    host = Instance(instance_names()[0])
    dropin = "/etc/systemd/system/ollama.service.d/override.conf"
    starts = host.starts()
    for path, text in files.items():
        host.sh(f"printf %s {shlex.quote(text)} > {path}")
    host.sh(f"printf '[Service]\n{override}' > {dropin}")  # no daemon-reload: the role must see it
    try:
        run = apply_role(host.name, ollama_version=VERSION)
        assert run.rc != 0, run
        message = " ".join(run.failures)
        assert "override.conf" in message, message
        for complaint in complaints:
            assert complaint in message, message
        assert host.starts() == starts, "the service was restarted with the bad override"
    finally:
        host.sh(f"rm -f {dropin} {' '.join(files)} && systemctl daemon-reload")
    assert apply_role(host.name, ollama_version=VERSION).rc == 0


def test_drifted_ownership_and_modes_are_repaired() -> None:
    """The re-run skips the directory and group modules when the host probe shows them as wanted; when they have
    drifted, the probe sees it and the modules run again."""
    host = Instance(instance_names()[1])
    host.sh(f"chmod 0700 {MODELS} && chown root:root {HOME}")
    run = apply_role(host.name, ollama_version=VERSION)
    assert run.rc == 0, run
    assert run.stats["changed"] == 1, run  # the one directory task, both items
    assert stat(host, HOME) == "ollama ollama 750"
    assert stat(host, MODELS) == "ollama ollama 750"
    again = apply_role(host.name, ollama_version=VERSION)
    assert again.stats["changed"] == 0, again


def test_drifted_unit_settings_account_and_service_are_repaired() -> None:
    """The unit, drop-in, user and service tasks are skipped where the probe shows them as the role leaves them
    (sha1, owner and mode of each file; the account; the service enabled and running): drift in each must still
    be seen and repaired, and the repaired host must again be left alone."""
    host = Instance(instance_names()[1])
    unit, dropin = "/etc/systemd/system/ollama.service", "/etc/systemd/system/ollama.service.d/10-cortex.conf"
    wanted = {path: host.sh(f"sha1sum {path}").split()[0] for path in (unit, dropin)}
    host.sh(
        f"chmod 0600 {unit} && echo '# drift' >> {dropin} && usermod -s /bin/sh -c drift ollama"
        " && systemctl disable --now ollama"
    )
    run = apply_role(host.name, ollama_version=VERSION)
    assert run.rc == 0, run
    assert host.sh(f"stat -c '%U %G %a' {unit}").strip() == "root root 644"
    assert {path: host.sh(f"sha1sum {path}").split()[0] for path in (unit, dropin)} == wanted
    assert host.sh("getent passwd ollama | cut -d: -f5,7").strip() == "Ollama server:/usr/sbin/nologin"
    assert host.unit("ActiveState") == "active" and host.sh("systemctl is-enabled ollama").strip() == "enabled"
    assert host.api("/api/version")["version"] == VERSION
    again = apply_role(host.name, ollama_version=VERSION)
    assert again.stats["changed"] == 0, again


def test_absent_uninstalls_keeping_models_unless_asked_then_present_restores() -> None:
    host = Instance(instance_names()[-1])
    gone = f"{PREFIX}/bin/ollama {RELEASES_DIR} /etc/systemd/system/ollama.service"
    host.sh(f"echo keep > {MODELS}/keep-me && chown ollama:ollama {MODELS}/keep-me")

    run = apply_role(host.name, ollama_version=VERSION, ollama_state="absent")
    assert run.rc == 0, run
    assert host.sh(f"ls -d {gone} /etc/systemd/system/ollama.service.d 2>/dev/null || true") == ""
    assert host.unit("LoadState") == "not-found"
    assert not [line for line in host.sh("ss -ltnH").splitlines() if ":11434 " in line]
    assert host.sh(f"cat {MODELS}/keep-me").strip() == "keep"
    assert host.sh("getent passwd ollama", check=False), "the user stays while it owns the kept models"
    again = apply_role(host.name, ollama_version=VERSION, ollama_state="absent")
    assert (again.rc, again.stats["changed"]) == (0, 0), again

    purge = apply_role(host.name, ollama_version=VERSION, ollama_state="absent", ollama_remove_data=True)
    assert purge.rc == 0, purge
    assert host.sh(f"ls -d {HOME} 2>/dev/null || true") == ""
    assert host.sh("getent passwd ollama; getent group ollama", check=False) == ""

    restore = apply_role(host.name, ollama_version=VERSION)
    assert restore.rc == 0, restore
    assert host.api("/api/version") == {"version": VERSION}
