"""Network keys for SLAC: a fresh random NMK per session and its NID (HomePlug Green PHY)."""

from __future__ import annotations

import hashlib
import secrets

NMK_BYTES = 16
NID_BYTES = 7
SECURITY_LEVEL_SIMPLE_CONNECT = 0


def new_nmk() -> bytes:
    return secrets.token_bytes(NMK_BYTES)


def nid_from_nmk(nmk: bytes, security_level: int = SECURITY_LEVEL_SIMPLE_CONNECT) -> bytes:
    """HomePlug AV NID: SHA-256 applied five times to the NMK, the first 52 bits kept
    (the 7th byte shifted right by 4) and the security level in the top nibble."""
    if len(nmk) != NMK_BYTES:
        raise ValueError(f"an NMK is {NMK_BYTES} bytes, got {len(nmk)}")
    if not 0 <= security_level <= 3:
        raise ValueError(f"security level {security_level} is not 0-3")
    digest = nmk
    for _ in range(5):
        digest = hashlib.sha256(digest).digest()
    nid = bytearray(digest[:NID_BYTES])
    nid[6] = (nid[6] >> 4) | (security_level << 4)
    return bytes(nid)
