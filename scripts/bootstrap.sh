#!/usr/bin/env bash
# Installs what the charger needs on a Debian machine, then keeps quiet on later runs.
#   scripts/bootstrap.sh          runtime: venv + package + mosquitto
#   scripts/bootstrap.sh --test   also the test tools
# Debian packages are installed with apt-get when running as root; otherwise the
# script names the missing ones and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v cc >/dev/null || missing+=(gcc)
python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
    2>/dev/null || missing+=(python3-dev)  # the EXI codec is a C extension
if [ "$want_test" = 1 ]; then
    # SLAC interoperability tests: Qualcomm's pev in network namespaces, tshark's dissector
    command -v ip >/dev/null || missing+=(iproute2)
    command -v pev >/dev/null || missing+=(plc-utils-extra)
    command -v tshark >/dev/null || missing+=(tshark)
    command -v ethtool >/dev/null || [ -x /usr/sbin/ethtool ] || missing+=(ethtool)
    command -v openssl >/dev/null || missing+=(openssl)  # a TLS 1.1-only CSMS in the tests
    command -v clang >/dev/null || missing+=(clang)  # the EXI fuzzer's instrumented build
    command -v node >/dev/null || missing+=(nodejs)  # ocpp-rpc: a strictly validating CSMS
    command -v npm >/dev/null || missing+=(npm)
    # ISO 15118 interoperability: the iso15118 package's EVCC runs its EXI codec in a JVM
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
    command -v bc >/dev/null || missing+=(bc)  # the harness's v2g_ci.sh uses it
    # firmware updates: bundles built and checked with RAUC's own tool, its service on a
    # private D-Bus
    command -v rauc >/dev/null || missing+=(rauc)
    command -v mksquashfs >/dev/null || missing+=(squashfs-tools)
    command -v dbus-daemon >/dev/null || missing+=(dbus-daemon)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
        echo "bootstrap: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "bootstrap: Python >= 3.11 is required, found $(python3 --version)" >&2; exit 1; }

extras=""
[ "$want_test" = 1 ] && extras="[test,rpi]"  # the Pi drivers are tested (on fakes) too
stamp=".venv/.installed$(echo "$extras" | tr -d '[]')-$(cat setup.cfg setup.py pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".${extras}"
    touch "$stamp"
fi
# The EXI codec's C extension: rebuilt whenever its sources are newer than the module.
exi=charger/protocols/exi
if ! ls $exi/_exi.*.so >/dev/null 2>&1 || [ -n "$(find $exi/_exi.c $exi/_generated/_exi_tables.h -newer "$(ls $exi/_exi.*.so | head -1)")" ]; then
    .venv/bin/python setup.py -q build_ext --inplace >/dev/null
fi
# The CP sampler's C extension (SPI ADC bursts): likewise.
cps=charger/hal/rpi
if ! ls $cps/_cpsample.*.so >/dev/null 2>&1 || [ -n "$(find $cps/_cpsample.c -newer "$(ls $cps/_cpsample.*.so | head -1)")" ]; then
    .venv/bin/python setup.py -q build_ext --inplace >/dev/null
fi

# The strictly validating test CSMS (ocpp-rpc), pinned by its package-lock.json.
if [ "$want_test" = 1 ]; then
    csms=tests/integration/ocpp/strict_csms
    csms_stamp="$csms/node_modules/.installed-$(sha256sum $csms/package-lock.json | cut -c1-16)"
    if [ ! -f "$csms_stamp" ]; then
        (cd $csms && npm ci --no-audit --no-fund --silent >/dev/null)
        touch "$csms_stamp"
    fi
fi

# The ISO 15118 harness's independent EVCC (the iso15118 package, pinned, with aiofile
# that its EVCC needs) in a venv of its own: it pins pydantic 1 and would clash with ours.
if [ "$want_test" = 1 ]; then
    harness_reqs="iso15118==0.31.2 aiofile"
    harness_stamp=".venv/harness/.installed-$(echo "$harness_reqs" | sha256sum | cut -c1-16)"
    if [ ! -f "$harness_stamp" ]; then
        [ -x .venv/harness/bin/python ] || python3 -m venv .venv/harness
        .venv/harness/bin/python -m pip install -q --upgrade pip >/dev/null
        .venv/harness/bin/python -m pip install -q $harness_reqs
        touch "$harness_stamp"
    fi
fi
