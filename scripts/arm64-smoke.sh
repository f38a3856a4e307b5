#!/usr/bin/env bash
# The C extensions on arm64 (the Raspberry Pi's architecture), without a Pi: builds the
# wheel inside an arm64 Debian chroot run by qemu-user-static, installs it there and
# imports both extensions (charger.protocols.exi._exi, charger.hal.rpi._cpsample):
# the EXI codec decodes and re-encodes the shared test vectors byte for byte, the CP
# sampler decodes frames and refuses a non-SPI file descriptor with ENOTTY.
#
#   scripts/arm64-smoke.sh            as root (mmdebstrap, chroot, binfmt_misc)
#
# Needs the Debian packages mmdebstrap, qemu-user-static and binfmt-support (installed
# with apt-get when missing). The chroot (Debian bookworm arm64: Python 3.11, gcc) is
# made once and kept in build/arm64-smoke/ (5-7 minutes here; a run on it about one
# minute; from nothing 8 minutes). The source is the working tree's tracked files. Not
# part of ./scripts/test: CI starts from a fresh clone and would make the chroot every
# time (docs/hal.md, "Tests, and arm64").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${ARM64_SMOKE_CACHE:-$root/build/arm64-smoke}
suite=bookworm
tarball=$cache/rootfs-$suite-arm64.tar

[ "$(id -u)" = 0 ] || { echo "arm64-smoke: run as root (chroot, binfmt_misc)" >&2; exit 1; }
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
[ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
if [ ${#missing[@]} -gt 0 ]; then
    echo "arm64-smoke: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# qemu runs arm64 binaries through binfmt_misc (the F flag: no copy of qemu inside).
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

start=$(date +%s)
mkdir -p "$cache"
if [ ! -f "$tarball" ]; then
    echo "arm64-smoke: making the $suite arm64 chroot (once)"
    mmdebstrap --quiet --arch=arm64 --variant=apt \
        --include=python3,python3-dev,python3-venv,python3-setuptools,python3-wheel,python3-pip,gcc,libc6-dev \
        "$suite" "${tarball%.tar}.part.tar"  # the .tar ending makes it a tarball
    mv "${tarball%.tar}.part.tar" "$tarball"
fi
made=$(date +%s)

work=$(mktemp -d /tmp/arm64-smoke.XXXXXX)
cleanup() {
    umount "$work/rootfs/proc" 2>/dev/null || true
    umount "$work/rootfs/dev" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rootfs"
tar -xf "$tarball" -C "$work/rootfs"
mount -t proc proc "$work/rootfs/proc"
mount --bind /dev "$work/rootfs/dev"
mkdir -p "$work/rootfs/src" "$work/rootfs/vectors"
git ls-files -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$work/rootfs/src"
vectors=$root/../shared/exi-vectors/vectors.jsonl
[ -f "$vectors" ] && cp "$vectors" "$work/rootfs/vectors/"

chroot "$work/rootfs" /bin/sh -eu <<'EOF'
cd /src
echo "arm64-smoke: $(uname -m), $(python3 --version)"
python3 -m venv --system-site-packages /venv
/venv/bin/pip wheel -q --no-deps --no-build-isolation -w /wheels . 2>&1 | grep -v "^$" || true
ls /wheels
/venv/bin/pip install -q --no-deps /wheels/charger-*.whl
cd /
/venv/bin/python - <<'PY'
import json, os, platform, struct, tempfile
assert platform.machine() == "aarch64", platform.machine()

import charger.hal.rpi._cpsample as cps
frames = bytes((0, 0x0A, 0xBC, 0, 0x0F, 0xFF, 0xFF, 0xF0, 0x01))
assert cps.decode12(frames, 3) == (0xABC, 0xFFF, 0x001), cps.decode12(frames, 3)
fd, path = tempfile.mkstemp()
try:
    cps.burst(fd, b"\x01\xa0\x00", 128, 1_000_000)
    raise SystemExit("burst on a regular file did not fail")
except OSError as exc:
    # ENOTTY from a kernel; qemu-user does not translate SPI ioctls and says ENOSYS
    assert exc.errno in (25, 22, 38), exc
finally:
    os.close(fd)
print("arm64-smoke: _cpsample", cps.__file__)

from charger.protocols import exi
from charger.protocols.exi import _exi
assert exi.backend_name() == "c" if hasattr(exi, "backend_name") else True
checked = 0
if os.path.exists("/vectors/vectors.jsonl"):
    for line in open("/vectors/vectors.jsonl"):
        v = json.loads(line)
        if (v["schema"], v["message"], v.get("variant")) == ("iso2", "MeteringReceiptReq", "min"):
            continue  # a known difference of the reference codec (tests/support/exi_vectors.py)
        data = bytes.fromhex(v["exi_hex"])
        message = exi.decode(exi.Schema(v["schema"]), data)
        assert exi.encode(message) == data, (v["schema"], v["message"])
        checked += 1
print(f"arm64-smoke: _exi {_exi.__file__}: {checked} vectors decoded and re-encoded")
PY
EOF
end=$(date +%s)
echo "arm64-smoke: ok (chroot $((made - start)) s, build and checks $((end - made)) s)"
