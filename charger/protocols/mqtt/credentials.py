"""Who may use the bus: the roles, their generated credentials and what each may publish.

The broker the charger spawns admits no anonymous client. Each role has a user name and a
random password, generated at first start into `<state_dir>/mqtt-credentials.json`
(mode 0600, kept across restarts), and an ACL that lets it publish only what its side of
the Josev API sends:

- `charger`: this firmware's own clients (bridge, simulator): the Josev API topics,
  reads sim/cmd, writes sim/reply;
- `cs`: an OEM hardware controller, with `cs = "remote"` only: writes cs/josev, reads
  josev/cs;
- `josev`: an OEM tool on the Josev side (it can start and stop charging): writes
  josev/cs, reads cs/josev;
- `monitor`: `charger bus tail` and other read-only tools: reads every topic;
- `simctl`: `charger simctl`: writes sim/cmd, reads sim/reply.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from charger.bus.messages import FORMS, Topic

FILE_NAME = "mqtt-credentials.json"
ROLES = ("charger", "cs", "josev", "monitor", "simctl")
API_TOPICS = tuple(sorted({t for form in FORMS.values() for t in form.topics}))


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def credentials_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def load_or_create(state_dir: Path) -> dict[str, Credentials]:
    """The roles' credentials, made (0600) on first use; blocking (call off the loop)."""
    path = credentials_path(state_dir)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        creds = {role: Credentials(**stored[role]) for role in ROLES}
    except (OSError, ValueError, KeyError, TypeError):
        creds = {role: Credentials(role, secrets.token_urlsafe(24)) for role in ROLES}
        text = json.dumps(
            {r: {"username": c.username, "password": c.password} for r, c in creds.items()},
            indent=2,
        )
        fd = os.open(path.with_suffix(".tmp"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(path.with_suffix(".tmp"), path)
    path.chmod(0o600)
    return creds


def read(state_dir: Path, role: str) -> Credentials | None:
    """One role's credentials for a tool, or None when there are none (or no access)."""
    try:
        stored = json.loads(credentials_path(state_dir).read_text(encoding="utf-8"))
        return Credentials(**stored[role])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def acl(remote_cs: bool) -> str:
    """The broker's ACL file: each user may publish only its role's topics."""
    sim = [f"topic read {Topic.SIM_CMD}", f"topic write {Topic.SIM_REPLY}"]
    rules = {
        "charger": [f"topic readwrite {t}" for t in API_TOPICS] + sim,
        "cs": [f"topic write {Topic.CS_JOSEV}", f"topic read {Topic.JOSEV_CS}"]
        if remote_cs
        else [],
        "josev": [f"topic write {Topic.JOSEV_CS}", f"topic read {Topic.CS_JOSEV}"],
        "monitor": ["topic read #"],
        "simctl": [f"topic write {Topic.SIM_CMD}", f"topic read {Topic.SIM_REPLY}"],
    }
    lines = []
    for role in ROLES:
        lines += [f"user {role}", *rules[role], ""]
    return "\n".join(lines)
