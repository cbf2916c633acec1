#!/usr/bin/python
"""Ansible module of role ollama_models: one model's state in a local Ollama, reached on its API and its store.

Runs on the Ollama host. A model is present when its manifest is in the store
(`<store>/manifests/<host>/<ns>/<model>/<tag>`), as Ollama itself decides. It gets there in one of three ways:
  pull    POST /api/pull (the server downloads; it uses the proxy the ollama role configured), with bounded
          retries and a total deadline; each layer's size is checked against free space when Ollama announces it
          (what it already takes in the store counted)
  bundle  blobs staged on the host from a model bundle are verified (sha256) and moved into blobs/, then the
          manifest is written: blobs before manifests, so the server's start-up prune never drops them
  gguf    a staged GGUF file is uploaded (/api/blobs/<digest>) and the model created (/api/create)
In check mode it says what it would do, and for bundle and gguf which blobs the host still needs (`missing`):
the role copies exactly those, so a re-run moves no bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ollama_model
short_description: One model's state in a local Ollama (pull, bundle import, GGUF create, remove)
description: See the role's README; the module is internal to role ollama_models.
options:
  name: {description: "Normalised name: host/namespace/model:tag.", type: str, required: true}
  state: {description: Wanted state., type: str, choices: [present, absent], default: present}
  store: {description: The server's OLLAMA_MODELS directory., type: path, required: true}
  api_url: {description: The server's base URL., type: str, default: "http://127.0.0.1:11434"}
  source: {description: Where a missing model comes from., type: str, choices: [pull, bundle, gguf], default: pull}
  insecure: {description: Pull over plain http (private registry)., type: bool, default: false}
  retries: {description: Pull attempts after the first one fails., type: int, default: 3}
  timeout: {description: Seconds a pull may take in all, retries included., type: int, default: 3600}
  manifest: {description: "bundle: the manifest from the bundle, base64 (its exact bytes).", type: str, default: ""}
  staging: {description: "bundle, gguf: directory the staged blobs are in (blobs named sha256-<hex>).", type: path}
  gguf_digest: {description: "gguf: sha256:<hex> of the GGUF file.", type: str, default: ""}
  gguf_size: {description: "gguf: the file's size in bytes.", type: int, default: 0}
  template: {description: "gguf: prompt template.", type: str, default: ""}
  system: {description: "gguf: system message.", type: str, default: ""}
  parameters: {description: "gguf: Modelfile parameters.", type: dict, default: {}}
"""

CHUNK = 1 << 20
# Room left on the store's filesystem after a model lands (the server writes logs and runner files).
SPACE_MARGIN = 64 * 1024 * 1024
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
TEXT_MEDIA_TYPES = {
    "template": "application/vnd.ollama.image.template",
    "system": "application/vnd.ollama.image.system",
}
PARAMS_MEDIA_TYPE = "application/vnd.ollama.image.params"


class ModelError(Exception):
    """A refusal or failure, worded for the operator; nothing in the store was changed by the failing step."""


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def split_name(name: str) -> tuple[str, str, str, str]:
    path, _, tag = name.rpartition(":")
    host, namespace, model = path.split("/")
    return host, namespace, model, tag


class Store:
    """Ollama's on-disk layout (manifest/paths.go): what is present and what a manifest still needs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def manifest_path(self, name: str) -> Path:
        return self.root.joinpath("manifests", *split_name(name))

    def blob_path(self, digest: str) -> Path:
        algo, _, hexdigest = digest.replace("-", ":", 1).partition(":")
        if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ModelError(f"invalid blob digest {digest!r}")
        return self.root / "blobs" / f"sha256-{hexdigest}"

    def manifest(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.manifest_path(name).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise ModelError(f"the manifest of {name} in {self.root} is not JSON ({e})") from None
        return data if isinstance(data, dict) else None

    def free_bytes(self) -> int:
        existing = next(p for p in (self.root, *self.root.parents) if p.exists())  # check mode before install
        st = os.statvfs(existing)
        return st.f_bavail * st.f_frsize

    def check_space(self, name: str, needed: int) -> None:
        free = self.free_bytes()
        if needed + SPACE_MARGIN > free:
            raise ModelError(
                f"not enough free space for {name}: it needs {human(needed)} more (+{human(SPACE_MARGIN)} spare), "
                f"{self.root} has {human(free)} free; nothing was changed"
            )

    def has_blob(self, digest: str, size: int) -> bool:
        """The blob is there whole: a blob of another size (cut short, or grown: drift) counts as missing."""
        try:
            return self.blob_path(digest).stat().st_size == size
        except FileNotFoundError:
            return False

    def blob_names(self) -> set[str]:
        blobs = self.root / "blobs"
        return {p.name for p in blobs.iterdir()} if blobs.is_dir() else set()

    def allocated(self, digest: str) -> int:
        """Bytes a layer already takes in the store: its blob, or the partial files of its download (which Ollama
        may create at full size, sparse: the blocks count, not the length)."""
        blob = self.blob_path(digest)
        files = [blob] if blob.exists() else blob.parent.glob(blob.name + "-partial*")
        total = 0
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_blocks * 512
        return total

    def referenced(self) -> set[str]:
        """Blob file names some manifest in the store names."""
        names = set()
        for path in (self.root / "manifests").rglob("*"):
            if path.is_file():
                with contextlib.suppress(OSError, ValueError, ModelError):
                    names |= {
                        self.blob_path(layer["digest"]).name for layer in layers_of(json.loads(path.read_bytes()))
                    }
        return names

    def layer_text(self, manifest: dict[str, Any], media_type: str) -> str | None:
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == media_type:
                try:
                    return self.blob_path(layer["digest"]).read_text(encoding="utf-8")
                except OSError:
                    return None
        return None


def layers_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The config blob and every layer, each {digest, size}; a manifest that lacks them is refused."""
    out = []
    for layer in [manifest.get("config"), *manifest.get("layers", [])]:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str) or "size" not in layer:
            raise ModelError("the manifest lists a layer without digest and size")
        out.append({"digest": layer["digest"].replace("-", ":", 1), "size": int(layer["size"])})
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file's data (or a directory's entries) to disk: a rename is atomic, but after a power loss without
    this the new name may point at a file whose data never reached the disk (a zero-length blob or manifest)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def same_owner_as(path: Path, reference: Path) -> None:
    st = reference.stat()
    os.chown(path, st.st_uid, st.st_gid)


class Api:
    """The server's HTTP API (docs/api.md); connections are made per call, with a timeout per read."""

    def __init__(self, base_url: str, timeout: float = 30) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ModelError(f"api_url {base_url!r} is not an http(s) URL")
        self.url = url
        self.timeout = timeout

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        return kind(self.url.hostname or "", self.url.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> tuple[int, bytes]:
        conn = self.connect(timeout or self.timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError as e:
            raise ModelError(f"Ollama at {self.url.geturl()} did not answer {method} {path}: {e}") from None
        finally:
            conn.close()

    def stream(self, path: str, body: Any, timeout: float) -> tuple[http.client.HTTPConnection, Any]:
        """POST and return the open connection and response, for reading NDJSON lines."""
        conn = self.connect(timeout)
        try:
            conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            return conn, conn.getresponse()
        except OSError as e:
            conn.close()
            raise ModelError(f"Ollama at {self.url.geturl()} did not answer POST {path}: {e}") from None

    def upload_blob(self, digest: str, path: Path) -> None:
        status, _ = self.request("HEAD", f"/api/blobs/{digest}")
        if status == 200:
            return
        conn = self.connect(max(self.timeout, 600))
        try:
            size = path.stat().st_size
            conn.putrequest("POST", f"/api/blobs/{digest}")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    conn.send(chunk)
            resp = conn.getresponse()
            body = resp.read()
        except OSError as e:
            raise ModelError(f"uploading {path.name} to Ollama failed: {e}") from None
        finally:
            conn.close()
        if resp.status not in (200, 201):
            raise ModelError(f"Ollama refused the blob {digest}: HTTP {resp.status} {error_text(body)}")


def error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:300]
    return str(data.get("error", data)) if isinstance(data, dict) else str(data)


# --- sources ---------------------------------------------------------------------------------------------


class Pull:
    """/api/pull with bounded retries and one deadline; every layer's size is checked when Ollama announces it."""

    def __init__(self, api: Api, store: Store, name: str, *, insecure: bool, retries: int, timeout: float) -> None:
        self.api, self.store, self.name = api, store, name
        self.insecure, self.retries, self.timeout = insecure, retries, timeout
        self.progress: list[str] = []
        # What the store held when the pull began (set by run, not per attempt: an earlier attempt's layers are
        # this pull's): layers the space check may skip, and what a refused pull may not remove.
        self.blobs_before: set[str] = set()
        self.had_manifest = False

    def run(self) -> int:
        """Pull; return the bytes the server reported downloading."""
        deadline = time.monotonic() + self.timeout
        failures: list[str] = []
        self.blobs_before = self.store.blob_names()
        self.had_manifest = self.store.manifest_path(self.name).exists()
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                return self.attempt(left)
            except PullFailed as e:
                failures.append(str(e))
                self.progress.append(f"attempt {attempt + 1} failed: {e}")
                time.sleep(min(2**attempt, max(0.0, deadline - time.monotonic())))
        tried = len(failures)
        raise ModelError(
            f"pulling {self.name} failed after {tried} attempt{'s' * (tried != 1)} within {self.timeout:.0f} s; "
            f"last error: {failures[-1] if failures else 'no time left'}"
        )

    def attempt(self, left: float) -> int:
        started = time.monotonic()
        conn, resp = self.api.stream("/api/pull", {"model": self.name, "insecure": self.insecure, "stream": True}, left)
        seen: dict[str, int] = {}
        marks: dict[str, int] = {}
        downloaded = 0
        try:
            if resp.status != 200:
                raise PullFailed(f"HTTP {resp.status} {error_text(resp.read())}")
            for raw in resp:
                if time.monotonic() - started > left:
                    raise PullFailed("the pull ran past its deadline")
                if not raw.strip():
                    continue
                event = json.loads(raw)
                if "error" in event:
                    raise PullFailed(str(event["error"]))
                digest, total = event.get("digest"), int(event.get("total") or 0)
                if digest and digest not in seen:
                    seen[digest] = int(event.get("completed") or 0)
                    self.check_layer_fits(digest, total)
                if digest and total:
                    completed = int(event.get("completed") or 0)
                    downloaded += max(0, completed - marks.get(digest, seen[digest]))
                    marks[digest] = completed
                    self.note(digest, completed, total)
                if event.get("status") == "success":
                    return downloaded
        except NoSpace:
            conn.close()
            self.remove_leftovers()
            raise
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise PullFailed(f"the stream broke: {e}") from None
        finally:
            conn.close()
        raise PullFailed("the stream ended before Ollama reported success")

    def check_layer_fits(self, digest: str, total: int) -> None:
        """The layer, once whole, must leave SPACE_MARGIN free. What it still needs is read from the store, not
        from the event: the stream can lag behind the server, and a small layer may be whole on disk by the time
        its first event is read (checking only layers not yet on disk let such a pull through on a full disk)."""
        if self.store.blob_path(digest).name in self.blobs_before:
            return
        remaining = max(0, total - self.store.allocated(digest))
        free = self.store.free_bytes()
        if remaining + SPACE_MARGIN > free:
            raise NoSpace(
                digest,
                f"not enough free space to pull {self.name}: layer {digest[7:19]} needs {human(remaining)} "
                f"(+{human(SPACE_MARGIN)} spare), {self.store.root} has {human(free)} free; the pull was stopped",
            )

    def remove_leftovers(self) -> None:
        """A refused pull leaves nothing: Ollama keeps a stopped download as *-partial files (for a resume), and
        layers it finished before it noticed the closed connection as blobs no manifest names, also of layers it
        went on to after the one that did not fit, which this client never saw announced. So remove whatever
        appeared in blobs/ since the pull began that no manifest names. A server whose
        stream lags behind may even have finished the pull, manifest included, before the refusal: a manifest that
        was not there before the pull goes too, and its layers with it. The server notices the closed connection a
        moment later (seconds on a loaded host), so sweep until it has been quiet for 3 s."""
        blobs = self.store.root / "blobs"
        manifest = self.store.manifest_path(self.name)
        quiet = 0
        for _ in range(120):
            wrote_manifest = not self.had_manifest and manifest.exists()
            if wrote_manifest:  # first, so that its layers count as unreferenced below
                manifest.unlink(missing_ok=True)
            found = self.store.blob_names() - self.blobs_before - self.store.referenced()
            for name in found:
                (blobs / name).unlink(missing_ok=True)
            quiet = 0 if found or wrote_manifest else quiet + 1
            if quiet >= 12:
                return
            time.sleep(0.25)

    def note(self, digest: str, completed: int, total: int) -> None:
        pct = completed * 100 // total
        line = f"{digest[7:19]}: {pct // 25 * 25}% of {human(total)}"
        if not self.progress or self.progress[-1] != line:
            self.progress.append(line)


class PullFailed(Exception):
    """One pull attempt failed in a way a retry may fix."""


class NoSpace(ModelError):
    """A layer Ollama announced would not fit: the pull is stopped, not retried."""

    def __init__(self, digest: str, message: str) -> None:
        super().__init__(message)
        self.digest = digest


def bundle_missing(store: Store, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Layers the store lacks, or holds with another size than the manifest's (a blob cut short or grown: drift)."""
    return [layer for layer in layers_of(manifest) if not store.has_blob(layer["digest"], layer["size"])]


def staged_path(store: Store, staging: str | None, digest: str) -> Path | None:
    """Where the role staged a blob for this run, if it is there (on the store's filesystem: moving it in is a
    rename, which needs no space)."""
    if not staging:
        return None
    path = Path(staging) / store.blob_path(digest).name
    return path if path.is_file() else None


def import_bundle(store: Store, name: str, raw_manifest: bytes, staging: Path) -> int:
    """Verify every staged blob, move it into blobs/, then write the manifest; return the bytes moved in.

    A blob that fails its digest stops the import before anything becomes visible (the staged files stay for the
    role's cleanup); blobs already in the store are not touched."""
    manifest = json.loads(raw_manifest)
    missing = bundle_missing(store, manifest)
    staged = []
    for layer in missing:
        path = staging / store.blob_path(layer["digest"]).name
        if not path.is_file():
            raise ModelError(f"blob {layer['digest']} of {name} was not staged at {path}")
        got = sha256_file(path)
        if got != layer["digest"] or path.stat().st_size != layer["size"]:
            raise ModelError(
                f"blob {layer['digest']} of {name} in the bundle is corrupt: its sha256 is {got} "
                f"({path.stat().st_size} bytes, {layer['size']} expected); nothing was imported"
            )
        staged.append(path)
    moved = 0
    blobs = store.root / "blobs"
    for path in staged:
        os.chmod(path, 0o644)
        same_owner_as(path, blobs)
        moved += path.stat().st_size
        fsync_path(path)
        os.replace(path, blobs / path.name)  # staging is inside the store: one filesystem, an atomic rename
    if staged:
        fsync_path(blobs)  # the blobs' names are on disk before a manifest names them
    write_manifest(store, name, raw_manifest)
    return moved


def write_manifest(store: Store, name: str, raw: bytes) -> None:
    target = store.manifest_path(name)
    manifests = store.root / "manifests"
    made = [p for p in reversed(target.parents) if manifests in p.parents and not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    for directory in made:
        same_owner_as(directory, manifests)
    tmp = target.with_name(f".{target.name}.cortex-tmp")
    tmp.write_bytes(raw)
    os.chmod(tmp, 0o644)
    same_owner_as(tmp, manifests)
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(target.parent)


def wanted_settings(params: dict[str, Any]) -> dict[str, list[str]]:
    """Parameters compared as Ollama stores them: every value a list of strings (stop may repeat)."""
    out = {}
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        out[key] = [json.dumps(v) if isinstance(v, bool) else str(v) for v in values]
    return out


def gguf_up_to_date(store: Store, manifest: dict[str, Any] | None, p: dict[str, Any]) -> bool:
    if manifest is None:
        return False
    models = [layer for layer in manifest.get("layers", []) if layer.get("mediaType") == MODEL_MEDIA_TYPE]
    if [layer.get("digest") for layer in models] != [p["gguf_digest"]]:
        return False
    if not store.has_blob(p["gguf_digest"], p["gguf_size"]):
        return False  # the model's file cut short or grown in the store (drift)
    for key, media_type in TEXT_MEDIA_TYPES.items():
        # No template asked for: the server picks one from the GGUF's chat template, and that is not a change.
        if key == "template" and not p[key]:
            continue
        if (store.layer_text(manifest, media_type) or "") != p[key]:
            return False
    stored = store.layer_text(manifest, PARAMS_MEDIA_TYPE)
    have = wanted_settings(json.loads(stored)) if stored else {}
    return have == wanted_settings(p["parameters"])


def create_from_gguf(api: Api, store: Store, name: str, p: dict[str, Any]) -> int:
    staged = Path(p["staging"]) / store.blob_path(p["gguf_digest"]).name
    moved = 0
    if not store.has_blob(p["gguf_digest"], p["gguf_size"]):
        # A blob of the wrong size (drift) goes first: the server answers "present" for any file of that name and
        # would never take the upload.
        store.blob_path(p["gguf_digest"]).unlink(missing_ok=True)
        if not staged.is_file():
            raise ModelError(f"the GGUF file for {name} was not staged at {staged}")
        got = sha256_file(staged)
        if got != p["gguf_digest"]:
            raise ModelError(f"the staged GGUF for {name} is corrupt: sha256 {got}, {p['gguf_digest']} expected")
        api.upload_blob(p["gguf_digest"], staged)
        moved = staged.stat().st_size
    body: dict[str, Any] = {"model": name, "files": {"model.gguf": p["gguf_digest"]}, "stream": False}
    for key in ("template", "system", "parameters"):
        if p[key]:
            body[key] = p[key]
    status, answer = api.request("POST", "/api/create", body, timeout=600)
    if status != 200:
        raise ModelError(f"Ollama could not create {name}: HTTP {status} {error_text(answer)}")
    return moved


def remove(api: Api, name: str) -> bool:
    status, body = api.request("DELETE", "/api/delete", {"model": name})
    if status == 404:
        return False
    if status != 200:
        raise ModelError(f"Ollama could not remove {name}: HTTP {status} {error_text(body)}")
    return True


# --- the state -----------------------------------------------------------------------------------------


def ensure(p: dict[str, Any], check: bool) -> dict[str, Any]:
    """Bring one model to its state; the result is the module's return value."""
    store = Store(Path(p["store"]))
    api = Api(p["api_url"])
    name = p["name"]
    if name.count("/") != 2 or ":" not in name.rpartition("/")[2]:
        raise ModelError(f"{name!r} is not a normalised name (host/namespace/model:tag)")
    manifest = store.manifest(name)
    result: dict[str, Any] = {"changed": False, "missing": [], "needs": [], "bytes_moved": 0}
    if check:
        result.update(free_bytes=store.free_bytes(), spare_bytes=SPACE_MARGIN)

    if p["state"] == "absent":
        if manifest is None:
            return result | {"msg": f"{name} is not present"}
        result["changed"] = check or remove(api, name)
        return result | {"msg": f"{name} {'would be ' if check else ''}removed"}

    # Space is counted once: in check mode (the role's plan, before anything is staged) for everything the change
    # writes, staged copies included; when applying, only for what was not staged (the plan counted the rest, and
    # the staged copies already take their room). `needs` lets the role add up all models before any copy.
    if p["source"] == "bundle":
        # base64: ansible-core 2.18 turns a JSON text it templated into a dict, and a dict into its Python repr.
        raw = base64.b64decode(p["manifest"])
        wanted = json.loads(raw)
        missing = bundle_missing(store, wanted)
        if manifest == wanted and not missing:
            return result | {"msg": f"{name} is present"}
        unstaged = [layer for layer in missing if check or not staged_path(store, p["staging"], layer["digest"])]
        store.check_space(name, sum(layer["size"] for layer in unstaged))
        result.update(
            changed=True, missing=missing, needs=[{"digest": m["digest"], "bytes": m["size"]} for m in missing]
        )
        if check:
            return result | {"msg": f"{name} would be imported ({len(missing)} blobs to copy)"}
        started = time.monotonic()
        result["bytes_moved"] = import_bundle(store, name, raw, Path(p["staging"]))
        result["seconds"] = round(time.monotonic() - started, 3)
        return result | {"msg": f"{name} imported from the bundle ({human(result['bytes_moved'])} moved in)"}

    if p["source"] == "gguf":
        if gguf_up_to_date(store, manifest, p):
            return result | {"msg": f"{name} is present"}
        if not store.has_blob(p["gguf_digest"], p["gguf_size"]):
            # The staged file, and the server's own copy in blobs/ until the staged one is removed.
            staged = not check and staged_path(store, p["staging"], p["gguf_digest"])
            store.check_space(name, (1 if staged else 2) * p["gguf_size"])
            result["missing"] = [{"digest": p["gguf_digest"], "size": p["gguf_size"]}]
            result["needs"] = [{"digest": p["gguf_digest"], "bytes": 2 * p["gguf_size"]}]
        result["changed"] = True
        if check:
            return result | {"msg": f"{name} would be created from its GGUF file"}
        result["bytes_moved"] = create_from_gguf(api, store, name, p)
        return result | {"msg": f"{name} created from its GGUF file"}

    if manifest is not None:
        return result | {"msg": f"{name} is present"}
    result["changed"] = True
    if check:
        return result | {"msg": f"{name} would be pulled"}
    started = time.monotonic()
    pull = Pull(api, store, name, insecure=p["insecure"], retries=p["retries"], timeout=p["timeout"])
    try:
        downloaded = pull.run()
    finally:
        result["progress"] = pull.progress
    if store.manifest(name) is None:
        raise ModelError(f"Ollama reported success pulling {name}, but {store.manifest_path(name)} does not exist")
    seconds = time.monotonic() - started
    result.update(bytes_moved=downloaded, seconds=round(seconds, 3))
    return result | {"msg": f"{name} pulled ({human(downloaded)} in {seconds:.1f} s)"}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "store": {"type": "path", "required": True},
            "api_url": {"type": "str", "default": "http://127.0.0.1:11434"},
            "source": {"type": "str", "choices": ["pull", "bundle", "gguf"], "default": "pull"},
            "insecure": {"type": "bool", "default": False},
            "retries": {"type": "int", "default": 3},
            "timeout": {"type": "int", "default": 3600},
            "manifest": {"type": "str", "default": ""},
            "staging": {"type": "path"},
            "gguf_digest": {"type": "str", "default": ""},
            "gguf_size": {"type": "int", "default": 0},
            "template": {"type": "str", "default": ""},
            "system": {"type": "str", "default": ""},
            "parameters": {"type": "dict", "default": {}},
        },
        required_if=[
            ("source", "bundle", ("manifest", "staging")),
            ("source", "gguf", ("gguf_digest", "staging")),
        ],
        supports_check_mode=True,
    )
    try:
        result = ensure(module.params, module.check_mode)
    except ModelError as e:
        module.fail_json(msg=str(e))
    # `needed` survives the role's changed_when: false on its planning call (check mode).
    module.exit_json(needed=result["changed"], **result)


if __name__ == "__main__":
    main()
