"""The Yocto layer image/meta-charger and its kas files, checked without building them
(no Yocto layer can be fetched here): oelint-adv on every recipe and append, every kas
file against kas's own JSON schema, the application recipe's RDEPENDS against what the
package declares and imports, the systemd unit's hardening, the broker's configuration
and ACL (statically, and on a real mosquitto), and the pieces that must agree with each
other (partitions, fstab, boot script, RAUC slots, interface names, the configuration)."""

from __future__ import annotations

import ast
import asyncio
import configparser
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
import pytest
import yaml
from kas.configschema import CONFIGSCHEMA, __compatible_file_version__, __file_version__
from oelint_parser.cls_item import Variable
from oelint_parser.cls_stash import Stash
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from charger import config
from charger.bus.messages import Topic
from charger.protocols.mqtt.broker import find_mosquitto
from rig.net import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "image"
LAYER = IMAGE / "meta-charger"
RECIPE = LAYER / "recipes-charger" / "charger" / "charger_git.bb"
FILES = RECIPE.parent / "files"
MOSQUITTO = LAYER / "recipes-connectivity" / "mosquitto" / "files"
CREDENTIALS = FILES / "charger-mqtt-credentials"

# Where each third-party module the package imports comes from (PyPI distribution), and
# the Yocto package that provides each distribution. A new import fails the test below
# until it is added here and to the recipe's RDEPENDS.
MODULE_DISTRIBUTION = {
    "aiohttp": "aiohttp",
    "aiomqtt": "aiomqtt",
    "cbor2": "cbor2",
    "cryptography": "cryptography",
    "dbus_fast": "dbus-fast",
    "gpiod": "gpiod",
    "jsonschema_rs": "jsonschema-rs",
    "ocpp": "ocpp",
    "paho": "paho-mqtt",
    "pymodbus": "pymodbus",
    "pyroute2": "pyroute2",
    "RPi": "RPi.GPIO",
    "serial": "pyserial",
    "spidev": "spidev",
    "websockets": "websockets",
}
YOCTO_PACKAGE = {
    "aiohttp": "python3-aiohttp",  # meta-python
    "aiomqtt": "python3-aiomqtt",  # meta-charger
    "cbor2": "python3-cbor2",  # meta-python
    "cryptography": "python3-cryptography",  # oe-core
    "dbus-fast": "python3-dbus-fast",  # meta-python
    "gpiod": "python3-gpiod",  # meta-python: libgpiod v2's binding
    "jsonschema-rs": "python3-jsonschema-rs",  # meta-charger
    "ocpp": "python3-ocpp",  # meta-charger
    "paho-mqtt": "python3-paho-mqtt",  # meta-python
    "pymodbus": "python3-pymodbus",  # meta-python
    "pyserial": "python3-pyserial",  # meta-python
    "pyroute2": "python3-pyroute2",  # meta-python
    "rpi-gpio": "rpi-gpio",  # meta-raspberrypi
    "spidev": "python3-spidev",  # meta-python
    "websockets": "python3-websockets",  # meta-python
}
# The setup.cfg extras the image installs (image/README.md).
IMAGE_EXTRAS = ("rpi",)


def recipes() -> list[Path]:
    return sorted(p for p in LAYER.rglob("*") if p.suffix in (".bb", ".bbappend"))


def variable(recipe: Path, name: str, sub: str = "") -> list[str]:
    """The words of every assignment to `name` (`name:sub` with `sub`) in `recipe`."""
    stash = Stash(quiet=True)
    stash.AddFile(str(recipe))
    stash.Finalize()
    words: list[str] = []
    for item in stash.GetItemsFor(
        classifier=Variable.CLASSIFIER, attribute=Variable.ATTR_VAR, attributeValue=name
    ):
        if item.SubItem == sub:
            words.extend(item.get_items())
    return words


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


# ---------------------------------------------------------------------------- oelint-adv


def oelint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oelint_adv", *map(str, files)],
        cwd=ROOT,
        env={**os.environ, "OELINT_CONFIG": str(IMAGE / ".oelint.cfg")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_oelint_adv_finds_nothing_in_any_recipe_or_append() -> None:
    assert len(recipes()) >= 10
    result = oelint(*recipes())
    assert result.returncode == 0 and not result.stdout.strip() + result.stderr.strip(), (
        result.stdout + result.stderr
    )


def test_oelint_adv_would_catch_a_bad_recipe(tmp_path: Path) -> None:
    bad = tmp_path / "meta-bad" / "recipes-bad" / "bad" / "bad_1.0.bb"
    bad.parent.mkdir(parents=True)
    bad.write_text('SUMMARY = "x"\n')  # no LICENSE
    result = oelint(bad)
    assert result.returncode != 0
    assert "oelint.var.mandatoryvar.LICENSE" in result.stdout + result.stderr


# ---------------------------------------------------------------------------- kas


def kas_files() -> list[Path]:
    return sorted((IMAGE / "kas").glob("*.yml"))


def kas_config(path: Path) -> dict[str, Any]:
    """The file merged over its includes (repository-relative paths), as kas does for
    the keys checked here."""
    data = yaml.safe_load(path.read_text())
    merged: dict[str, Any] = {}
    for include in data.get("header", {}).get("includes", []):
        assert isinstance(include, str), include
        included = ROOT / include
        assert included.is_file(), f"{path.name}: include {include} does not exist"
        merged = merge(merged, kas_config(included))
    return merge(merged, data)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("path", kas_files(), ids=lambda p: p.name)
def test_kas_file_matches_kas_schema(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    jsonschema.validate(data, CONFIGSCHEMA)
    assert __compatible_file_version__ <= data["header"]["version"] <= __file_version__


def test_the_kas_schema_check_can_fail() -> None:
    data = yaml.safe_load((IMAGE / "kas" / "rpi4.yml").read_text())
    data["machine"] = ["raspberrypi4-64"]  # a list where kas wants a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, CONFIGSCHEMA)


@pytest.mark.parametrize("name, machine", [("rpi4", "raspberrypi4-64"), ("rpi5", "raspberrypi5")])
def test_each_board_builds_the_image_and_the_bundle(name: str, machine: str) -> None:
    cfg = kas_config(IMAGE / "kas" / f"{name}.yml")
    assert cfg["machine"] == machine
    assert cfg["distro"] == "charger"
    assert (LAYER / "conf" / "distro" / "charger.conf").is_file()
    assert set(cfg["target"]) == {"charger-image", "charger-bundle"}
    assert "image/meta-charger" in cfg["repos"]["charger"]["layers"]
    for repo in cfg["repos"].values():
        if repo and repo.get("url"):
            assert repo.get("branch", "").startswith("scarthgap"), repo
    conf = "\n".join(cfg["local_conf_header"].values())
    assert 'ENABLE_SPI_BUS = "1"' in conf
    assert 'RPI_USE_U_BOOT = "1"' in conf
    extra = re.search(r'RPI_EXTRA_CONFIG = "(.*)"', conf)
    assert extra is not None
    overlays = re.findall(r"dtoverlay=([\w-]+)", extra.group(1))
    assert overlays == ["qca7000", "pwm"]
    for overlay in overlays:  # meta-raspberrypi deploys only the overlays it is told to
        assert f"overlays/{overlay}.dtbo" in conf
    assert all(len(line) <= 80 for line in extra.group(1).split(r"\n")), "config.txt limit"


# ---------------------------------------------------------------------------- RDEPENDS


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files of charger/ importing it, outside the standard library."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "charger").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "charger" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def declared_requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in IMAGE_EXTRAS:
        lines += cfg["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def needed_packages() -> dict[str, str]:
    """Yocto package -> why the charger needs it."""
    needed = {}
    for requirement in declared_requirements():
        dist = canonicalize_name(requirement.name)
        assert dist in YOCTO_PACKAGE, f"setup.cfg needs {dist}: add it to YOCTO_PACKAGE"
        needed[YOCTO_PACKAGE[dist]] = f"setup.cfg: {requirement}"
    for module, files in third_party_imports().items():
        assert module in MODULE_DISTRIBUTION, (
            f"charger/ imports {module} ({', '.join(sorted(files))}): add its distribution "
            "to MODULE_DISTRIBUTION and its package to the recipe's RDEPENDS"
        )
        dist = canonicalize_name(MODULE_DISTRIBUTION[module])
        needed.setdefault(YOCTO_PACKAGE[dist], f"import {module} in {min(files)}")
    return needed


def missing_rdepends(rdepends: list[str]) -> list[str]:
    return sorted(f"{pkg} ({why})" for pkg, why in needed_packages().items() if pkg not in rdepends)


def test_rdepends_cover_what_the_package_declares_and_imports() -> None:
    rdepends = variable(RECIPE, "RDEPENDS", "${PN}")
    assert missing_rdepends(rdepends) == []
    # and nothing stale: every Python module package is needed by something
    extra = {p for p in rdepends if p.startswith("python3-")} - set(needed_packages())
    assert extra == {"python3-modules"}  # the standard library, as a whole
    assert {"mosquitto", "util-linux-setpriv"} <= set(rdepends)


def test_a_missing_rdepends_is_caught() -> None:
    rdepends = [p for p in variable(RECIPE, "RDEPENDS", "${PN}") if p != "python3-cbor2"]
    assert missing_rdepends(rdepends) == [
        "python3-cbor2 (setup.cfg: cbor2>=5.6)",
    ]


def test_layer_python_recipes_satisfy_setup_cfg() -> None:
    """The Python modules this layer builds itself are versions setup.cfg accepts."""
    specifiers = {canonicalize_name(r.name): r.specifier for r in declared_requirements()}
    ours = sorted((LAYER / "recipes-devtools" / "python").glob("python3-*_*.bb"))
    assert ours
    for recipe in ours:
        name, version = recipe.stem.split("_")
        dist = canonicalize_name(name.removeprefix("python3-"))
        assert YOCTO_PACKAGE[dist] == name
        assert version in specifiers[dist], f"{recipe.name}: setup.cfg wants {specifiers[dist]}"


def test_the_c_extension_is_required_to_be_built() -> None:
    text = RECIPE.read_text()
    assert "inherit python_setuptools_build_meta" in text
    assert "_exi*.so" in text and "bbfatal" in text


# ---------------------------------------------------------------------------- systemd


HARDENING = {
    "User": "charger",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "StateDirectory": "charger",
    "StateDirectoryMode": "0700",
    "ConfigurationDirectory": "charger",
}
CAPABILITIES = {"CAP_NET_RAW", "CAP_NET_ADMIN"}


def hardening_problems(service: configparser.SectionProxy) -> list[str]:
    problems = [
        f"{key}={service.get(key)!r}, expected {value!r}"
        for key, value in HARDENING.items()
        if service.get(key) != value
    ]
    for key in ("AmbientCapabilities", "CapabilityBoundingSet"):
        if set(service.get(key, "").split()) != CAPABILITIES:
            problems.append(f"{key}={service.get(key)!r}, expected {sorted(CAPABILITIES)}")
    if service.get("Type") != "notify" or service.get("NotifyAccess") != "main":
        problems.append("Type=notify with NotifyAccess=main expected")
    if not re.fullmatch(r"[1-9][0-9]*s?", service.get("WatchdogSec", "")):
        problems.append(f"WatchdogSec={service.get('WatchdogSec')!r}")
    return problems


def test_charger_unit_is_notify_with_watchdog_and_hardened() -> None:
    parsed = unit(FILES / "charger.service")
    service = parsed["Service"]
    assert hardening_problems(service) == []
    assert service["ExecStart"] == "@BINDIR@/charger run --config /etc/charger/charger.toml"
    assert service["Restart"] == "always"
    assert "mosquitto.service" in parsed["Unit"]["After"].split()
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    # the event loop real-time, what it spawns not, and no way to raise it further
    assert (service["CPUSchedulingPolicy"], service["CPUSchedulingPriority"]) == ("rr", "20")
    assert service["CPUSchedulingResetOnFork"] == "yes"
    assert service["RestrictRealtime"] == "yes"


def test_the_kernel_lets_the_unit_start_real_time() -> None:
    # with RT group scheduling, a service's cgroup has no real-time budget: the unit's
    # CPUSchedulingPolicy=rr would fail to start the charger at all
    fragment = (IMAGE / "meta-charger/recipes-kernel/linux/files/charger.cfg").read_text()
    assert "# CONFIG_RT_GROUP_SCHED is not set" in fragment.splitlines()


@pytest.mark.parametrize(
    "key, value",
    [("ProtectSystem", None), ("PrivateTmp", "no"), ("CapabilityBoundingSet", "CAP_SYS_ADMIN")],
)
def test_a_missing_hardening_option_is_caught(key: str, value: str | None) -> None:
    parsed = unit(FILES / "charger.service")
    if value is None:
        parsed.remove_option("Service", key)
    else:
        parsed.set("Service", key, value)
    assert any(problem.startswith(key) for problem in hardening_problems(parsed["Service"]))


def test_broker_accounts_come_before_the_broker_and_the_charger() -> None:
    oneshot = unit(FILES / "charger-mqtt-credentials.service")
    assert oneshot["Service"]["Type"] == "oneshot"
    assert oneshot["Service"]["RemainAfterExit"] == "yes"
    assert oneshot["Service"]["RuntimeDirectory"] == "charger-mqtt"
    assert set(oneshot["Unit"]["Before"].split()) == {"mosquitto.service", "charger.service"}
    dropin = unit(MOSQUITTO / "mosquitto-charger.conf")
    assert dropin["Unit"]["Requires"] == "charger-mqtt-credentials.service"
    assert dropin["Unit"]["After"] == "charger-mqtt-credentials.service"
    # The charger marks its slot good after its own health check: meta-rauc's
    # mark-good service is masked, and the charger may call RAUC and reboot, no more.
    recipe = (FILES.parent / "charger_git.bb").read_text()
    assert "ln -sf /dev/null ${D}${sysconfdir}/systemd/system/rauc-mark-good.service" in recipe
    policy = (FILES / "charger-rauc.conf").read_text()
    assert 'policy user="charger"' in policy and "de.pengutronix.rauc.Installer" in policy
    assert "<allow own" not in policy
    rule = (FILES / "50-charger-reboot.rules").read_text()
    assert 'subject.user == "charger"' in rule and "login1.reboot" in rule


# ---------------------------------------------------------------------------- the broker


def mosquitto_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (MOSQUITTO / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            settings.setdefault(key, []).append(value.strip())
    return settings


def acl(text: str) -> tuple[list[str], dict[str, dict[str, set[str]]]]:
    """(lines that apply to anonymous clients or every client, {user: {access: topics}})."""
    unscoped: list[str] = []
    users: dict[str, dict[str, set[str]]] = {}
    current: dict[str, set[str]] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if not line:
            continue
        words = line.split()
        if words[0] == "user":
            current = users.setdefault(words[1], {"read": set(), "write": set()})
        elif words[0] == "topic" and current is not None:
            access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
            for kind in ("read", "write"):
                if access in (kind, "readwrite"):
                    current[kind].add(topic)
        else:
            unscoped.append(line)  # a topic before any user (anonymous) or a pattern
    return unscoped, users


def expected_writes() -> dict[str, set[str]]:
    """Each role publishes the API topics its side sends; the sender of a topic is its
    first part (cs/josev: the cs side; josev/cs, ocpp/..., iso15118/...: the josev side)."""
    api = {v for k, v in vars(Topic).items() if k.isupper() and not v.startswith("sim/")}
    cs = {t for t in api if t.split("/")[0] == "cs"}
    return {"charger": api, "josev": api - cs, "cs": cs, "monitor": set()}


def roles() -> list[str]:
    match = re.search(r"ROLES=\$\{CHARGER_MQTT_ROLES:-([^}]*)\}", CREDENTIALS.read_text())
    assert match is not None
    return match.group(1).split()


def acl_problems(text: str) -> list[str]:
    unscoped, users = acl(text)
    problems = [f"applies to anonymous or all clients: {line}" for line in unscoped]
    expected = expected_writes()
    if set(users) != set(expected):
        problems.append(f"users {sorted(users)}, expected {sorted(expected)}")
    for user, writes in expected.items():
        got = users.get(user, {"write": set()})["write"]
        if got != writes:
            problems.append(f"{user} may write {sorted(got)}, expected {sorted(writes)}")
    return problems


def test_broker_listens_on_loopback_only_and_refuses_anonymous_clients(tmp_path: Path) -> None:
    settings = mosquitto_settings()
    assert settings["allow_anonymous"] == ["false"]
    assert settings["per_listener_settings"] == ["false"]
    assert settings["listener"] == ["1883 127.0.0.1"]
    assert settings["password_file"] == ["/run/charger-mqtt/passwd"]  # the oneshot's
    assert settings["acl_file"] == ["/etc/mosquitto/charger.acl"]
    append = (MOSQUITTO.parent / "mosquitto_%.bbappend").read_text()
    assert "${sysconfdir}/mosquitto/charger.acl" in append
    # and the charger is pointed at it
    cfg = image_config(tmp_path)
    assert (cfg.mqtt.broker, cfg.mqtt.host, cfg.mqtt.port) == ("external", "127.0.0.1", 1883)


def test_acl_gives_each_role_only_its_topics() -> None:
    assert acl_problems((MOSQUITTO / "charger.acl").read_text()) == []
    assert sorted(roles()) == sorted(expected_writes())


@pytest.mark.parametrize(
    "planted",
    [
        "topic write cs/josev\n",  # before any user: anonymous clients
        "pattern write %u/#\n",
        "user cs\ntopic write josev/cs\n",
        "user monitor\ntopic readwrite +/+\n",
    ],
)
def test_a_too_wide_acl_is_caught(planted: str) -> None:
    text = (MOSQUITTO / "charger.acl").read_text()
    text = planted + text if not planted.startswith("user") else text + planted
    assert acl_problems(text) != []


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """The image's mosquitto.conf and ACL on a free loopback port, with the accounts the
    first-boot script makes (run here with the current user as every owner)."""
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("mosquitto_passwd (Debian package mosquitto) is not installed")
    me = (
        os.environ.get("USER")
        or subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    )
    env = {
        **os.environ,
        "CHARGER_MQTT_STATE": str(tmp_path / "state"),
        "CHARGER_MQTT_RUN": str(tmp_path / "run"),
        "CHARGER_USER": me,
        "MOSQUITTO_USER": me,
        "MOSQUITTO_PASSWD": passwd_tool,
    }
    subprocess.run(["sh", str(CREDENTIALS)], env=env, check=True, timeout=60)
    port = free_port()
    conf = (MOSQUITTO / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    conf = conf.replace("/run/charger-mqtt/passwd", str(tmp_path / "run" / "passwd"))
    conf = conf.replace("/etc/mosquitto/charger.acl", str(MOSQUITTO / "charger.acl"))
    if os.geteuid() == 0:  # as root mosquitto would become user mosquitto: not the owner here
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    log = tmp_path / "mosquitto.log"
    process = subprocess.Popen(
        [find_mosquitto("mosquitto"), "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        try:
            wait_port(port)
        except TimeoutError:
            raise AssertionError(f"mosquitto did not start:\n{log.read_text()}") from None
        passwords = {r: (tmp_path / "state" / f"{r}.password").read_text() for r in roles()}
        yield port, passwords
    finally:
        process.terminate()
        process.wait(10)


def test_first_boot_accounts_are_private_and_kept(tmp_path: Path) -> None:
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("mosquitto_passwd (Debian package mosquitto) is not installed")
    me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    env = {
        **os.environ,
        "CHARGER_MQTT_STATE": str(tmp_path / "state"),
        "CHARGER_MQTT_RUN": str(tmp_path / "run"),
        "CHARGER_USER": me,
        "MOSQUITTO_USER": me,
        "MOSQUITTO_PASSWD": passwd_tool,
    }
    subprocess.run(["sh", str(CREDENTIALS)], env=env, check=True, timeout=60)
    first = {p.name: p.read_text() for p in (tmp_path / "state").iterdir()}
    assert sorted(first) == sorted(f"{r}.password" for r in roles())
    for path in [*(tmp_path / "state").iterdir(), tmp_path / "run" / "passwd"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert all(re.fullmatch(r"[0-9a-f]{64}", secret) for secret in first.values())
    hashed = (tmp_path / "run" / "passwd").read_text()
    assert not any(secret in hashed for secret in first.values())  # only hashes
    # The next boot keeps the accounts and derives the same users again.
    subprocess.run(["sh", str(CREDENTIALS)], env=env, check=True, timeout=60)
    assert {p.name: p.read_text() for p in (tmp_path / "state").iterdir()} == first
    assert [line.split(":")[0] for line in hashed.splitlines()] == roles()


async def publishes_delivered(port: int, passwords: dict[str, str]) -> set[tuple[str, str]]:
    """Every role publishes on every API topic; (role, topic) of what a monitor got."""
    got: set[tuple[str, str]] = set()
    api = sorted(expected_writes()["charger"])
    async with aiomqtt.Client(
        "127.0.0.1", port, username="monitor", password=passwords["monitor"], timeout=5
    ) as monitor:
        await monitor.subscribe("+/+", qos=1)
        for role, password in passwords.items():
            async with aiomqtt.Client(
                "127.0.0.1", port, username=role, password=password, timeout=5
            ) as client:
                for topic in api:
                    await client.publish(topic, role.encode(), qos=1)
        await monitor.publish("cs/josev", b"monitor", qos=1)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(0.2):
                    message = await anext(aiter(monitor.messages))
            except TimeoutError:
                continue
            assert isinstance(message.payload, bytes)
            got.add((message.payload.decode(), str(message.topic)))
    return got


@pytest.mark.integration
async def test_real_broker_refuses_anonymous_and_enforces_each_role(
    broker: tuple[int, dict[str, str]],
) -> None:
    port, passwords = broker
    for credentials in ({}, {"username": "cs", "password": "not-the-password"}):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", port, timeout=5, **credentials):
                pass
    got = await publishes_delivered(port, passwords)
    expected = {(role, t) for role, topics in expected_writes().items() for t in topics}
    assert got == expected


# ---------------------------------------------------------------------------- agreement


def image_config(tmp: Path) -> config.Config:
    """The image's /etc/charger (charger.toml, conf.d/10-board.toml) laid out in `tmp`,
    through the charger's own loader: a key it does not know, or a bad value, fails."""
    (tmp / "conf.d").mkdir()
    shutil.copy(FILES / "charger.toml", tmp / "charger.toml")
    shutil.copy(FILES / "10-board.toml", tmp / "conf.d" / "10-board.toml")
    return config.load(tmp / "charger.toml", tmp / "conf.d")


def test_image_configuration_is_valid_and_matches_the_unit_and_the_board(tmp_path: Path) -> None:
    cfg = image_config(tmp_path)
    assert cfg.hal_backend == "rpi"
    assert str(cfg.station.state_dir) == "/var/lib/charger"  # StateDirectory=charger
    link = unit(LAYER / "recipes-core" / "systemd-conf" / "files" / "10-plc0.link")
    assert link["Match"]["Driver"] == "qcaspi"
    assert [e.network_interface for e in cfg.evses] == [link["Link"]["Name"]]
    assert cfg.rpi.spi_device == 1  # the qca7000 overlay takes chip select 0


def wks_parts() -> list[dict[str, str]]:
    parts = []
    for line in (LAYER / "wic" / "charger-ab.wks.in").read_text().splitlines():
        if line.startswith("part "):
            words = line.split()
            options = dict(re.findall(r"--([\w-]+)[= ]([^\s]+)", line))
            parts.append({"mount": words[1], **options})
    return parts


def test_partitions_slots_boot_script_and_fstab_agree() -> None:
    parts = wks_parts()
    assert [p["label"] for p in parts] == ["boot", "rootfs_A", "rootfs_B", "data"]
    system = unit(LAYER / "recipes-core" / "rauc" / "files" / "system.conf")
    assert system["system"]["bootloader"] == "uboot"
    slots = {s: system[s] for s in system.sections() if s.startswith("slot.rootfs.")}
    assert {s["bootname"]: s["device"] for s in slots.values()} == {
        "A": "/dev/mmcblk0p2",
        "B": "/dev/mmcblk0p3",
    }
    boot = (LAYER / "recipes-bsp" / "rpi-u-boot-scr" / "files" / "boot.cmd.in").read_text()
    assert re.findall(r"setenv rootpart (\d)\n\s+setenv raucslot (\w)", boot) == [
        ("2", "A"),
        ("3", "B"),
    ]
    assert "rauc.slot=${raucslot}" in boot
    bundle = (LAYER / "recipes-charger" / "bundles" / "charger-bundle.bb").read_text()
    assert 'RAUC_BUNDLE_COMPATIBLE = "charger-${MACHINE}"' in bundle
    assert system["system"]["compatible"] == "charger-@@MACHINE@@"
    assert system["system"]["data-directory"].startswith("/data/")
    fstab = (LAYER / "recipes-core" / "base-files" / "files" / "fstab").read_text()
    mounts = {line.split()[1]: line.split() for line in fstab.splitlines() if line[:1] not in "#"}
    assert mounts["/data"][0] == "LABEL=data"
    assert mounts["/boot/firmware"][0] == "LABEL=boot"
    assert mounts["/var/lib/charger"][0] == "/data/charger/state"  # StateDirectory
    assert "upperdir=/data/charger/conf.d" in mounts["/etc/charger/conf.d"][3]
    env = (LAYER / "recipes-bsp" / "u-boot" / "files" / "fw_env.config").read_text()
    assert "/boot/firmware/uboot.env" in env


# ---------------------------------------------------------------------------- keys


def test_dev_keys_script_makes_a_codesigning_pair_and_none_is_committed(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    script = IMAGE / "scripts" / "make-dev-keys.sh"
    keys = tmp_path / "keys"
    subprocess.run(["sh", str(script), str(keys)], check=True, capture_output=True, timeout=60)
    for name in ("ca.key.pem", "development-1.key.pem"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", keys / "ca.cert.pem", keys / "development-1.cert.pem"],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    usage = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "extendedKeyUsage"],
        input=(keys / "development-1.cert.pem").read_text(),
        capture_output=True,
        text=True,
    )
    assert "Code Signing" in usage.stdout
    again = subprocess.run(["sh", str(script), str(keys)], capture_output=True, timeout=60)
    assert again.returncode != 0  # never overwrites keys an image may trust
    # Keys never enter git: image/keys is ignored, and no tracked file holds a key.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "image/keys/development-1.key.pem"], cwd=ROOT
    )
    assert ignored.returncode == 0
    tracked = subprocess.run(
        ["git", "ls-files", "image"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [f for f in tracked if "PRIVATE KEY" in (ROOT / f).read_text(errors="replace")]
