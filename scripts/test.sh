#!/usr/bin/env bash
# Runs every Kumos check and test. Installs what the tests need when it is missing (etcd for the etcd
# tests, protoc for etcd-client's build, curl for the HTTP end-to-end tests, docker.io and
# busybox-static for the Docker containerizer tests), then: rustfmt, clippy with
# warnings as errors, and the whole test suite (unit, storage contract on embedded + real etcd, and
# end-to-end tests driving `kumos server` with real kubectl, and `kumos master`/`kumos agent` with a
# real pymesos scheduler from PyPI, set up in a virtualenv here).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_packages=()
command -v etcd >/dev/null 2>&1 || need_packages+=(etcd-server)
command -v protoc >/dev/null 2>&1 || need_packages+=(protobuf-compiler)
command -v curl >/dev/null 2>&1 || need_packages+=(curl)
if [ "${#need_packages[@]}" -gt 0 ]; then
    echo "==> installing ${need_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y "${need_packages[@]}" || {
        as_root apt-get update
        as_root apt-get install -y "${need_packages[@]}"
    }
fi
# Debian's etcd-server package starts a system etcd on 2379; the tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1; then as_root systemctl stop etcd >/dev/null 2>&1 || true; fi

# The Docker containerizer tests start their own dockerd (docker.io) and build their image from
# busybox-static offline; install both here so a missing package fails early.
echo "==> docker.io and busybox-static for the Docker containerizer tests"
as_root bash scripts/docker-test-env.sh install

command -v etcd >/dev/null || { echo "etcd is required (apt-get install etcd-server)" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl is required on PATH" >&2; exit 1; }
kubectl_dir="$(dirname "$(readlink -f "$(command -v kubectl)")")"
[ -x "$kubectl_dir/kubectl.1.28" ] || { echo "kubectl.1.28 is required beside $kubectl_dir/kubectl" >&2; exit 1; }

command -v python3 >/dev/null || { echo "python3 is required for the pymesos tests" >&2; exit 1; }
export KUMOS_PYMESOS_VENV="${KUMOS_PYMESOS_VENV:-${TMPDIR:-/tmp}/kumos-pymesos-venv}"
echo "==> pymesos virtualenv in $KUMOS_PYMESOS_VENV"
bash conformance/python/setup-pymesos.sh "$KUMOS_PYMESOS_VENV"

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test"
cargo test --workspace
echo "==> all tests passed"
