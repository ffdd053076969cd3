# A private containerd for shell tests and the demo: own root, state, sockets and config
# under a work directory, never the system's instance. Source this file, then:
#
#   private_containerd_start WORK [NAME=value ...]  start it, with extra environment
#   pctr ARGS...                                    ctr against it (namespace $PCTR_NS)
#   private_containerd_pid                          its process id
#   private_containerd_stop                         stop it, unmount, remove WORK
#
# containerd runs the shim it finds on its PATH (give PATH=... to choose one).

PCTR_NS=${PCTR_NS:-shimtest}

private_containerd_start() {
    pc_work=$1
    shift
    mkdir -p "$pc_work"
    chmod 755 "$pc_work"
    cat > "$pc_work/containerd.toml" <<TOML
version = 2
root = "$pc_work/root"
state = "$pc_work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$pc_work/containerd.sock"
[ttrpc]
  address = "$pc_work/containerd.sock.ttrpc"
TOML
    env "$@" containerd --config "$pc_work/containerd.toml" >"$pc_work/containerd.log" 2>&1 &
    pc_pid=$!
    for _ in $(seq 100); do pctr version >/dev/null 2>&1 && return 0; sleep 0.1; done
    cat "$pc_work/containerd.log"
    echo "private containerd did not start"
    return 1
}

pctr() { command ctr -a "$pc_work/containerd.sock" -n "$PCTR_NS" "$@"; }

private_containerd_pid() { echo "$pc_pid"; }

private_containerd_stop() {
    [ -n "${pc_work:-}" ] || return 0
    local id
    for id in $(pctr tasks ls -q 2>/dev/null); do
        pctr task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
        pctr task rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(pctr containers ls -q 2>/dev/null); do pctr containers rm "$id" >/dev/null 2>&1 || true; done
    if [ -n "${pc_pid:-}" ]; then kill "$pc_pid" 2>/dev/null && wait "$pc_pid" 2>/dev/null || true; fi
    grep -o " $pc_work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    # The shim keeps a state directory per containerd and namespace; it is empty once the
    # containers are gone, and the server leaves it (another server may be creating in it).
    local state
    for state in /run/containerd-shim-wasm/*/"$PCTR_NS"; do
        rmdir "$state" "$(dirname "$state")" 2>/dev/null || true
    done
    rm -rf "$pc_work"
    pc_work=
}
