#!/usr/bin/env bash
# What the container executor's tests and benchmark need, idempotently and without any image registry: Podman
# (Docker-compatible API) with runc, and Docker Engine (docker.io), both started by the tests on private sockets,
# and two small local images with Python and numpy, made from a Debian rootfs built by debootstrap from the mirror
# apt already uses (imported into Podman here; the tests import the same rootfs tarball into their dockerd).
#
#   jupyter-pipelines-test:py3      the test image (python3, python3-numpy; Debian bookworm minbase)
#   jupyter-pipelines-test:py3-alt  the same files, another image id (the cache tests retag it)
#
# The rootfs tarball is kept in .cache/containers/ (git-ignored), so a rerun skips debootstrap; a second run with
# the images present only checks. Podman reads scripts/containers.conf (runc, explicit ulimits: see that file).
# Set JP_SKIP_CONTAINERS=1 to skip all of this (the container tests then report "skipped: no container engine").
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${JP_SKIP_CONTAINERS:-}" = 1 ]; then
  echo "setup-containers: skipped (JP_SKIP_CONTAINERS=1)"
  exit 0
fi
export CONTAINERS_CONF="$PWD/scripts/containers.conf"
IMAGE=jupyter-pipelines-test:py3
ALT_IMAGE=jupyter-pipelines-test:py3-alt
CACHE=.cache/containers
TARBALL="$CACHE/rootfs-bookworm-py3.tar"

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

missing=()
for package in podman runc debootstrap docker.io; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-containers: installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if podman image exists "$IMAGE" && podman image exists "$ALT_IMAGE" && [ -s "$TARBALL" ]; then
  exit 0
fi

# The Debian mirror apt uses (deb822 .sources "URIs:" or one-line "deb URL bookworm ..."), not the security one.
mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')"
if [ -z "$mirror" ]; then
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '$1 == "deb" && $2 ~ /debian/ && $2 !~ /security/ {print $2; exit}')"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if [ ! -s "$TARBALL" ]; then
  echo "setup-containers: building a Debian rootfs with python3 and numpy (debootstrap from $mirror, ~1 min)"
  mkdir -p "$CACHE"
  rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  trap '$sudo rm -rf "$rootfs"' EXIT
  $sudo debootstrap --variant=minbase --include=python3,python3-numpy bookworm "$rootfs" "$mirror" >/dev/null
  # What a step never needs: apt's lists and caches, documentation, locales (about a third of the size).
  $sudo rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc \
    "$rootfs"/usr/share/man "$rootfs"/usr/share/locale "$rootfs"/usr/share/info
  $sudo tar -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  $sudo rm -rf "$rootfs"
  trap - EXIT
fi

echo "setup-containers: importing $IMAGE and $ALT_IMAGE (podman import)"
if ! podman image exists "$IMAGE"; then
  podman import --quiet --change 'ENV JP_TEST_IMAGE=main' --change 'CMD ["python3"]' "$TARBALL" "$IMAGE" >/dev/null
fi
if ! podman image exists "$ALT_IMAGE"; then
  podman import --quiet --change 'ENV JP_TEST_IMAGE=alt' --change 'CMD ["python3"]' "$TARBALL" "$ALT_IMAGE" >/dev/null
fi
# Check it runs here (runc, ulimits, no network), so a broken engine shows now rather than as failing tests.
if ! out="$(podman run --rm --network none "$IMAGE" python3 -c 'import numpy; print("ok")' 2>&1)" || [ "$out" != ok ]; then
  echo "setup-containers: podman cannot run $IMAGE here: $out" >&2
  exit 1
fi
echo "setup-containers: ready ($(podman --version), images $IMAGE and $ALT_IMAGE)"
