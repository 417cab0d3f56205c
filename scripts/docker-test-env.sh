#!/usr/bin/env bash
# A private dockerd for the Docker containerizer tests (kubelet-agent/tests/common/dockerd.rs).
#
#   docker-test-env.sh install             installs docker.io and busybox-static if missing (root)
#   docker-test-env.sh start DIR [PID]     starts dockerd with everything under DIR, imports the
#                                          offline test image busybox:latest, prints the API
#                                          socket path; with PID, a watchdog stops dockerd and
#                                          deletes DIR once process PID has exited
#   docker-test-env.sh stop DIR            stops that dockerd (and its containers), deletes DIR
#   docker-test-env.sh watch PID DIR       (the watchdog) stop DIR once PID has exited
#
# Network: ports are published by docker-proxy on 127.0.0.1 only (--ip 127.0.0.1, and the
# containerizer binds 127.0.0.1 explicitly); --iptables=false, --ip-forward=false and
# --ip-masq=false give containers no route off the machine. The default bridge is kept because
# `--bridge none` disables port publishing; tests only ever connect to 127.0.0.1:<host port>.
# Watched instances are serialised by a lock (they share the docker0 bridge): a second test
# binary waits until the previous one's dockerd has stopped.
set -euo pipefail

script="$(readlink -f "$0")"
lock_file="${TMPDIR:-/tmp}/kumos-docker-test.lock"
image_tools=(sh sleep echo nc httpd wget true false cat mkdir touch rm test ls env hostname)

die() { echo "docker-test-env: $*" >&2; exit 1; }

# Whether a process runs (a zombie does not: an exited dockerd may never be reaped here).
alive() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ "$state" != Z* ]]
}

static_busybox() {
    [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1
}

install() {
    [ "$(id -u)" -eq 0 ] || die "must run as root to install packages"
    local packages=()
    command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
    static_busybox || packages+=(busybox-static)
    [ "${#packages[@]}" -eq 0 ] && return 0
    echo "docker-test-env: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${packages[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${packages[@]}" >&2; }
    # Debian's package may start a system dockerd; the tests use their own.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop docker docker.socket >/dev/null 2>&1 || true; fi
}

start() {
    local dir="${1:?usage: start DIR [PID]}" watch="${2:-}"
    [ "$(id -u)" -eq 0 ] || die "dockerd needs root"
    if ! command -v dockerd >/dev/null 2>&1 || ! static_busybox; then install; fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (apt-get install docker.io)"
    command -v docker >/dev/null 2>&1 || die "docker CLI not found (apt-get install docker.io)"
    if [ -n "$watch" ]; then
        exec 9>"$lock_file"
        flock -w 300 9 || die "another test dockerd still holds $lock_file"
    fi
    mkdir -p "$dir"
    local sock="$dir/docker.sock"
    export DOCKER_HOST="unix://$sock"

    rm -rf "$dir/rootfs"
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/tmp"
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    for tool in "${image_tools[@]}"; do ln -s busybox "$dir/rootfs/bin/$tool"; done

    setsid dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" --iptables=false --ip-forward=false --ip-masq=false \
        --ip 127.0.0.1 --shutdown-timeout 2 \
        >"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
    local pid=$!
    echo "$pid" >"$dir/dockerd.child-pid"
    if [ -n "$watch" ]; then
        # Holds the lock (fd 9) until dockerd is stopped.
        setsid bash "$script" watch "$watch" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    exec 9>&-

    local waited=0
    until docker info >/dev/null 2>&1; do
        if ! alive "$pid"; then
            tail -n 30 "$dir/dockerd.log" >&2 || true
            die "dockerd exited during startup (log: $dir/dockerd.log)"
        fi
        waited=$((waited + 1))
        if [ "$waited" -gt 600 ]; then
            tail -n 30 "$dir/dockerd.log" >&2 || true
            die "dockerd did not answer within 60s"
        fi
        sleep 0.1
    done
    tar -C "$dir/rootfs" -c . | docker import - busybox:latest >/dev/null \
        || die "importing the test image failed"
    echo "$sock"
}

stop() {
    local dir="${1:?usage: stop DIR}"
    local pid
    pid="$(cat "$dir/dockerd.child-pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        local waited=0
        while alive "$pid" && [ "$waited" -lt 300 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # Mounts dockerd may have left behind (after a SIGKILL).
    local mounts
    mounts="$(grep -o " $dir/[^ ]*" /proc/mounts 2>/dev/null | sort -r || true)"
    for mnt in $mounts; do umount -l "$mnt" 2>/dev/null || true; done
    rm -rf "$dir"
}

# Stops the dockerd of DIR once process PID has exited.
watch() {
    local pid="${1:?usage: watch PID DIR}" dir="${2:?usage: watch PID DIR}"
    while alive "$pid"; do sleep 1; done
    stop "$dir"
}

case "${1:-}" in
    install) install ;;
    watch) shift; watch "$@" ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) die "usage: $0 install | start DIR [PID] | stop DIR" ;;
esac
