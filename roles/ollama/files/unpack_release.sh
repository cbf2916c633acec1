#!/bin/bash
# Role ollama, on the host: verify the staged archives and unpack them into a new release directory, renamed into
# place only when complete and when its binary is the version asked for; a corrupted copy, a full disk, an
# interrupted unpack or an archive of another release leave the installed release as it was.
# Environment: RELEASES, STAGING, ID (release directory name), VERSION, MARKER, SHAS (the marker's content),
# SENT ("<sha256>=<staged file name> ...").
set -euo pipefail
rm -rf "$RELEASES"/.partial-* # what an interrupted earlier run left
for pair in $SENT; do
  file=$STAGING/${pair#*=} want=${pair%%=*}
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "the copy of ${file##*/} on this host has sha256 $got, the controller's has $want;" \
      "nothing was unpacked (disk full or corrupted transfer?)" >&2
    exit 1
  fi
done
part=$(mktemp -d "$RELEASES/.partial-$ID.XXXXXX")
trap 'rm -rf "$part"' EXIT
for pair in $SENT; do
  file=$STAGING/${pair#*=}
  case $file in *.tar.zst) prog=zstd ;; *) prog=gzip ;; esac
  tar -x -I "$prog" --no-same-owner --no-same-permissions -C "$part" -f "$file"
done
[ -x "$part/bin/ollama" ] || { echo "the archives hold no bin/ollama" >&2; exit 1; }
# The binary's own version, with no server to ask (port 1 answers nobody): "Warning: client version is X".
# A binary that cannot run here (another arch, a noexec mount) reports nothing: the message below says so.
got=$(OLLAMA_HOST=127.0.0.1:1 "$part/bin/ollama" --version 2>&1 | sed -n 's/.*client version is //p' | head -n 1 || true)
if [ "$got" != "$VERSION" ]; then
  echo "the archive holds Ollama ${got:-of an unknown version}, not ollama_version $VERSION: nothing was installed," \
    "the running release is untouched. Point ollama_archive_src at the $VERSION archive, or set ollama_version" \
    "to ${got:-its version}" >&2
  exit 1
fi
chmod -R u+rwX,go+rX,go-w "$part" # whatever the umask: readable, never writable, by the service
printf '%s\n' "$SHAS" >"$part/$MARKER"
rm -rf "${RELEASES:?}/$ID"
mv -T "$part" "$RELEASES/$ID"
trap - EXIT
