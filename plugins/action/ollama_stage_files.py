"""Action plugin of roles ollama and ollama_models: send controller files into a staging directory on a host.

ansible.builtin.copy would put each file in Ansible's remote tmp first (usually on /, whatever filesystem the store
is on, and outside every space check), hash it with sha1 on both sides, then move it. This plugin uploads each file
over the connection straight into a directory on the destination's own filesystem, then renames it into the staging
directory as root. A root connection uploads into a temporary directory inside the destination; another user (with
become) into one of its own at the root of the destination's filesystem, since it cannot enter the destination
(the model store is the service user's, 0750). Either way the only bytes
written are the file's, on the filesystem the role's space check counted, and the one hash pass is the role's own
sha256 check (ollama_model's when it imports a blob, release.yml's before it unpacks an archive).

Options: files (controller paths, or {src, name} where the name in dest differs), dest (the staging directory).
"""

from __future__ import annotations

import os
import shlex
import time
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # it transfers them itself, not through a remote tmp
    _VALID_ARGS = frozenset(("files", "dest"))

    def _sh(self, script: str, *, become: bool) -> str:
        result = self._low_level_execute_command(f"/bin/sh -c {shlex.quote(script)}", sudoable=become)
        if result["rc"] != 0:
            raise AnsibleActionFail(f"{script.splitlines()[0]}: {result.get('stderr') or result.get('stdout')}")
        return str(result["stdout"]).strip()

    @staticmethod
    def _task_vars_host(task_vars: dict[str, Any] | None) -> str:
        return str((task_vars or {}).get("inventory_hostname", ""))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        files: list[dict[str, str]] = [
            {"src": f, "name": os.path.basename(f)} if isinstance(f, str) else {"src": f["src"], "name": f["name"]}
            for f in self._task.args.get("files") or []
        ]
        dest: str = self._task.args["dest"]
        for f in files:
            if not os.path.isfile(f["src"]):
                raise AnsibleActionFail(f"{f['src']} is not a file on the controller")
            if "/" in f["name"] or f["name"] in ("", ".", ".."):
                raise AnsibleActionFail(f"{f['name']!r} is not a file name")
        total = sum(os.path.getsize(f["src"]) for f in files)
        result.update(changed=bool(files), files=len(files), bytes=total)
        if not files or self._task.check_mode:
            return result
        started = time.monotonic()
        # Round trips cost as much as a few MB of the transfer: the connecting user from the connection's settings
        # where it has one, else from the host.
        try:
            user = str(self._connection.get_option("remote_user") or "") or self._sh("id -un", become=False)
        except KeyError:
            user = self._sh("id -un", become=False)
        # Uploads land on the destination's filesystem, so the move into it is a rename.
        if user == "root":
            upload = self._sh(f"mktemp -d {shlex.quote(dest)}/.upload-XXXXXXXX", become=True)
        else:
            upload = self._sh(
                f"set -e; mount=$(df --output=target -- {shlex.quote(dest)} | tail -n 1)\n"
                'mkdir -p -m 0711 "$mount/.cortex-upload"\n'
                'dir=$(mktemp -d "$mount/.cortex-upload/XXXXXXXX")\n'
                f'chown {shlex.quote(user)} "$dir"; echo "$dir"',
                become=True,
            )
            # A filesystem whose root the user cannot enter (a data disk mounted at the store itself, 0750): the
            # user's own temporary directory instead, on another filesystem, and said so.
            if self._low_level_execute_command(f"test -w {shlex.quote(upload)}", sudoable=False)["rc"] != 0:
                self._sh(f"rm -rf {shlex.quote(upload)}; rmdir {shlex.quote(os.path.dirname(upload))} || true",
                         become=True)  # fmt: skip
                upload = self._sh("mktemp -d", become=False)
                result["through"] = upload
                display.warning(f"{user} cannot reach {dest}'s filesystem: files go through {upload} on another one")
        cleanup = f"rm -rf {shlex.quote(upload)}" + (
            "" if user == "root" else f"; rmdir {shlex.quote(os.path.dirname(upload))} 2>/dev/null"
        )
        try:
            for i, f in enumerate(files, 1):
                size, sent = os.path.getsize(f["src"]), time.monotonic()
                self._connection.put_file(f["src"], f"{upload}/{f['name']}")
                rate = size / max(time.monotonic() - sent, 1e-6) / 1e6
                host = self._task_vars_host(task_vars)
                # On stderr: progress for the operator's terminal, never mixed into a machine-read stdout (json).
                display.display(
                    f"  [{host}] sent {i}/{len(files)}: {f['name']} ({size} bytes, {rate:.0f} MB/s)", stderr=True
                )
            moves = " ".join(shlex.quote(f["name"]) for f in files)
            # Into place and the upload directory gone, in one round trip.
            self._sh(
                f"set -e; cd {shlex.quote(upload)}\n"
                f"chown root:root {moves}; chmod 0600 {moves}; mv -f {moves} {shlex.quote(dest)}/\n"
                f"cd /; {{ {cleanup}; }} || true",
                become=True,
            )
            upload = ""
        finally:
            if upload:  # a failure on the way: what was sent goes
                self._low_level_execute_command(f"/bin/sh -c {shlex.quote(cleanup + '; true')}", sudoable=True)
        seconds = time.monotonic() - started
        result.update(
            seconds=round(seconds, 3),
            sent=[f["name"] for f in files],
            msg=f"{len(files)} files, {total} bytes in {seconds:.1f} s",
        )
        return result
