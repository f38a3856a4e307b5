"""Our EVSE (`charger slac`) against Qualcomm's `pev` from plc-utils-extra, in network
namespaces joined by veth pairs through the shared harness's QCA7000/powerline emulator.

Needs root (CI runs as root); `scripts/bootstrap.sh --test` installs pev and tshark.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[3] / "shared" / "slac-harness"
OUR_EVSE = [sys.executable, "-m", "charger", "slac", "--iface", "slt-e", "--timeout", "20"]
EVSE_MAC = "02:00:00:00:ee:01"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(not HARNESS.is_dir(), reason="shared/slac-harness is not beside us"),
]


def harness(out: Path, *, emu_args: str = "", limit_s: int = 10) -> tuple[int, str]:
    for tool in ("pev", "tshark", "ip"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/bootstrap.sh --test as root"
    # an interrupted earlier run may have left the harness's namespaces behind
    for namespace in ("slt-evse", "slt-pev", "slt-plc"):
        pids = subprocess.run(
            ["ip", "netns", "pids", namespace], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], check=False)
    subprocess.run([str(HARNESS / "netns.sh"), "down"], capture_output=True, check=False)
    env = {**os.environ, "EMU_ARGS": emu_args, "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run(
        [
            str(HARNESS / "slac_ci.sh"),
            "-a",
            "-s",
            "-t",
            str(limit_s),
            "-o",
            str(out),
            "--",
            *OUR_EVSE,
        ],
        cwd=HARNESS,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit_s + 60,
    )
    return result.returncode, result.stdout + result.stderr


def evse_log(out: Path) -> str:
    return (out / "evse.err").read_text()


def test_match_and_avln_with_pev(tmp_path: Path) -> None:
    rc, output = harness(tmp_path)
    assert rc == 0 and "SLAC MATCH: PASS" in output, output
    assert "avln=True" in output and "warnings=0" in output
    log = evse_log(tmp_path)
    assert "slac_matched run_id=02000000aa01" in log
    assert "link_local=fe80::ff:fe00:ee01" in log  # IPv6 link-local set up for ISO 15118
    assert "slac_modem firmware=MAC-QCA7000-1.1.0.730-04-20140815-CS" in log  # the emulator's
    summary = json.loads((tmp_path / "emu.json").read_text())
    assert summary["padded_frames"] == 0  # every frame we sent was already 60+ bytes


def test_our_frames_decode_cleanly_in_tshark(tmp_path: Path) -> None:
    rc, output = harness(tmp_path)
    assert rc == 0, output
    capture = str(tmp_path / "evse-side.pcapng")
    ours = f"eth.src == {EVSE_MAC}"
    listed = subprocess.run(
        ["tshark", "-r", capture, "-Y", ours], capture_output=True, text=True, check=True
    ).stdout
    for name in ("CM_SET_KEY.REQ", "CM_SLAC_PARM.CNF", "CM_ATTEN_CHAR.IND", "CM_SLAC_MATCH.CNF"):
        assert name in listed, listed
    problems = subprocess.run(
        [
            "tshark",
            "-r",
            capture,
            "-Y",
            f'{ours} && (_ws.malformed || _ws.expert.severity >= "warning")',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert problems.strip() == ""


def test_frames_match_the_reference_evse_field_by_field(tmp_path: Path) -> None:
    rc, output = harness(tmp_path)
    assert rc == 0, output
    compare = subprocess.run(
        [
            sys.executable,
            str(HARNESS / "slac_decode.py"),
            "compare",
            str(HARNESS / "reference" / "evse-side.pcapng"),
            str(tmp_path / "evse-side.pcapng"),
            "--ignore",
            "NID,NMK,NewKey,EVSE_ID",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    differing = re.findall(r"^\s{4}(\S+)\s+ref=", compare, re.MULTILINE)
    # Where we follow ISO 15118-3 and plc-utils does not (docs/slac.md):
    assert sorted(differing) == ["(padding)", "MyNonce", "RESP_TYPE"], compare


def test_match_when_sounds_are_lost(tmp_path: Path) -> None:
    rc, output = harness(tmp_path, emu_args="--drop CM_MNBC_SOUND.IND:2")
    assert rc == 0 and "SLAC MATCH: PASS" in output, output


def test_match_when_the_first_parm_req_is_lost(tmp_path: Path) -> None:
    rc, output = harness(tmp_path, emu_args="--drop CM_SLAC_PARAM.REQ:1")
    assert rc == 0 and "SLAC MATCH: PASS" in output, output


def test_refused_when_attenuation_is_out_of_range(tmp_path: Path) -> None:
    rc, output = harness(tmp_path, emu_args="--aag 50", limit_s=4)
    assert rc != 0 and "SLAC MATCH: FAIL" in output, output
    log = evse_log(tmp_path)
    assert "slac_matching" in log and "slac_matched" not in log
    # pev acknowledges the characterization, then declines to match and starts over
    assert "no CM_SLAC_MATCH.REQ within TT_match_sequence" in log
