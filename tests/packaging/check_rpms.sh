#!/usr/bin/env bash
# The RPMs (make rpms) hold the same files as the Debian packages and carry the ABI
# relation: the shim provides containerd-shim-wasm-abi-1 (= its minor), each engine requires it.
# Read with rpm -qp (Debian's rpm package); not installed here (no RPM-based system).
# Usage: check_rpms.sh RPM_DIR DEB_DIR
set -euo pipefail
rpms=$1 debs=$2
fail() { echo "RPM check FAILED: $*" >&2; exit 1; }
command -v rpm >/dev/null || fail "needs rpm (apt-get install rpm)"

# Regular files of a .deb, without Debian's own docs (changelog, copyright, lintian).
deb_files() {
    dpkg-deb -c "$1" | awk '$1 ~ /^-/ {print substr($6, 2)}' \
        | grep -v -e '/changelog.Debian.gz$' -e '/copyright$' -e '^/usr/share/lintian/' | sort
}

n=0
for deb in "$debs"/*.deb; do
    name=$(dpkg-deb -f "$deb" Package)
    rpm_file=$(ls "$rpms/$name"-[0-9]*.rpm 2>/dev/null | head -n1)
    [ -n "$rpm_file" ] || fail "no RPM for $name in $rpms"
    diff <(deb_files "$deb") <(rpm -qpl "$rpm_file" 2>/dev/null | sort) \
        || fail "$name: the RPM's files differ from the .deb's (< deb, > rpm)"
    case $name in
    containerd-shim-wasm)
        rpm -qp --provides "$rpm_file" 2>/dev/null | grep -qE '^containerd-shim-wasm-abi-1 = 1\.[0-9]+$' \
            || fail "$name does not provide containerd-shim-wasm-abi-1"
        rpm -qp --configfiles "$rpm_file" 2>/dev/null | grep -qx /etc/containerd-shim-wasm/config.toml \
            || fail "config.toml is not a config file in the RPM"
        rpm -qp --scripts "$rpm_file" 2>/dev/null | grep -q 'ln -sf containerd-shim-wasm-v1' \
            || fail "no scriptlet makes the containerd-shim-<engine>-v1 links" ;;
    *)
        rpm -qp --requires "$rpm_file" 2>/dev/null | grep -qx 'containerd-shim-wasm-abi-1' \
            || fail "$name does not require containerd-shim-wasm-abi-1" ;;
    esac
    echo "   $(basename "$rpm_file"): same files as $(basename "$deb"), ABI relation present"
    n=$((n + 1))
done
echo "RPM check passed: $n package(s)"
