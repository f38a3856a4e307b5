"""A full disk under the OCPP outbox (reliability issue, defect 6): on a real 2 MiB
tmpfs (root: mounted in a private mount namespace), writes that do not fit fail whole
and leave no SQLite transaction open, the space reserved at start takes the events that
end transactions, and once space returns the queue goes on without a gap."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path
from charger.protocols.ocpp.outbox import Outbox, StorageFull

state = Path(sys.argv[1])
async def main():
    outbox = Outbox(state / "ocpp.db")
    filler = state / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk but for the reserve
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass
    stored, refused, reserve_gone = [], 0, False
    for n in range(2000):
        event = {"seqNo": n, "meterValue": "m" * 900}
        try:
            await outbox.put("TransactionEvent", event, ("tx-1", 1, {"seq_no": n}))
        except StorageFull:
            refused += 1
            if refused == 3:
                break
        else:
            stored.append(n)
        reserve_gone = reserve_gone or not (state / "ocpp.db.reserve").exists()
    kept = [e.payload["seqNo"] for e in await outbox.pending()]
    filler.unlink()  # space returns
    await outbox.put("TransactionEvent", {"seqNo": 10_000}, ("tx-1", 1, {"seq_no": 10_000}))
    after = [e.payload["seqNo"] for e in await outbox.pending()]
    print(json.dumps({"stored": stored, "refused": refused, "kept": kept,
                      "reserve_used": reserve_gone, "after": after,
                      "transactions": {k: v[1] for k, v in (await outbox.transactions()).items()},
                      "reserved_again": outbox.reserve_space()}))
asyncio.run(main())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")
def test_a_full_disk_refuses_whole_writes_and_the_queue_goes_on_after(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    run = shlex.join([sys.executable, "-c", SCRIPT, str(state)])
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o size=2m none {state} && {run}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reserve_used"] and result["refused"] == 3 and len(result["stored"]) > 10
    # every acknowledged write is there, in order, and nothing half-written
    assert result["kept"] == result["stored"] == list(range(len(result["stored"])))
    assert result["after"] == [*result["stored"], 10_000]
    assert result["transactions"] == {"tx-1": {"seq_no": 10_000}}
    assert result["reserved_again"] is True
