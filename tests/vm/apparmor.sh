#!/usr/bin/env bash
# Runs the AppArmor test where the host's kernel has no AppArmor (`make test` calls it).
#
# capabilities::the_specs_apparmor_profile_confines_the_wasm_process needs a kernel with
# AppArmor; this machine kind's kernel has none (its LSMs: lockdown, capability, landlock,
# bpf), so there the test prints SKIPPED. This script runs that same test binary in a
# virtual machine that boots Debian's kernel (AppArmor is on by default) over the host's
# own file system, with virtme-ng (the kernel developers' tool for exactly that): the
# shim, the plugins and the corpus are the ones just built. The guest writes to
# overlays, never to the host. QEMU emulates the CPU (`--disable-kvm`: with nested KVM
# the guest hangs at boot on this machine kind): about 20 s to boot, 45 s for the test.
#
# Needs an x86-64 host with qemu-system-x86, linux-image-amd64 and apparmor (`make
# deps-test` installs them there) and virtme-ng (installed here with pip when missing).
# Without them: a SKIPPED line. The run fails unless the test ran and passed in the guest.
set -euo pipefail

test_name=the_specs_apparmor_profile_confines_the_wasm_process
skipped() { echo "SKIPPED: capabilities::$test_name in a virtual machine: $*"; exit 0; }

if grep -qs '^Y' /sys/module/apparmor/parameters/enabled; then
    echo "apparmor-vm: this kernel has AppArmor: capabilities::$test_name ran with the other tests"
    exit 0
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
target_dir=$(cd "$repo" && realpath -m "${CARGO_TARGET_DIR:-target}")
cargo=${CARGO:-cargo}
# Debian's generic kernel (not its -cloud or -rt flavours, built without some of what
# the test needs).
kernel=$(ls /boot/vmlinuz-[0-9]*-amd64 2>/dev/null | grep -v -e '-cloud-' -e '-rt-' | sort -V | tail -n 1 || true)
[ -n "$kernel" ] || skipped "no Debian kernel in /boot (x86-64: apt-get install linux-image-amd64)"
command -v qemu-system-x86_64 >/dev/null || skipped "no QEMU (apt-get install qemu-system-x86)"
command -v apparmor_parser >/dev/null || skipped "no apparmor_parser (apt-get install apparmor)"
if ! command -v vng >/dev/null; then
    pip install --quiet virtme-ng==1.42 || skipped "cannot install virtme-ng with pip"
    hash -r
    command -v vng >/dev/null || skipped "virtme-ng is installed, but its vng is not on PATH"
fi

# The test binary `cargo test` built (cargo builds it here if it is not up to date).
if ! artifacts=$(cd "$repo" && "$cargo" test -p containerd-shim-wasm --test capabilities --no-run --message-format=json); then
    echo "apparmor-vm: cargo could not build the capabilities test" >&2
    exit 1
fi
binary=$(python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "capabilities" and m.get("executable"):
        print(m["executable"])' <<< "$artifacts")
[ -x "$binary" ] || { echo "apparmor-vm: cargo named no capabilities test binary" >&2; exit 1; }

# What the guest runs: securityfs for apparmor_parser, then the one test (its output
# uncaptured, so that SKIPPED lines show); it fails unless that test ran and passed.
guest=$(mktemp /tmp/apparmor-vm.XXXXXX)
trap 'rm -f "$guest"' EXIT
cat > "$guest" <<EOF
set -e
grep -q '^Y' /sys/module/apparmor/parameters/enabled || { echo "apparmor-vm: the guest kernel has no AppArmor"; exit 1; }
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
cd "$repo/host"
CARGO_TARGET_DIR="$target_dir" TARGET_DIR="$target_dir" "$binary" --exact "$test_name" --nocapture 2>&1 | tee /tmp/apparmor-vm.out
grep -q 'test result: ok. 1 passed' /tmp/apparmor-vm.out || { echo "apparmor-vm: the test did not run"; exit 1; }
if grep -q "SKIPPED: capabilities::$test_name" /tmp/apparmor-vm.out; then echo "apparmor-vm: the test skipped in the guest"; exit 1; fi
EOF

echo "apparmor-vm: capabilities::$test_name in a virtual machine ($(basename "$kernel"), emulated CPU)"
# Through a pipe: QEMU reopens its stdout and stderr by path, and on a log file each
# would write from its own offset over the other (and over what came before).
timeout 900 vng --run "$kernel" --disable-kvm --memory 4G --cpus 2 \
    --overlay-rwdir "$repo" --overlay-rwdir "$target_dir" --exec "sh $guest" </dev/null 2>&1 | cat
