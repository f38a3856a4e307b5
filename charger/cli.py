"""Command line: `charger run | sim | slac | secc | check-config | bus tail | simctl`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

from charger import __version__, config
from charger.config import Config, ConfigError

if TYPE_CHECKING:
    from charger.protocols.mqtt.connection import BrokerAddress


def _load(path: str | None, default: str) -> Config:
    """FILE (or /etc/charger/charger.toml, else the packaged `default`) + its conf.d/."""
    return config.load(*config.locate(path, default))


def _cmd_run(args: argparse.Namespace, default: str, force_sim: bool) -> int:
    from charger import app
    from charger.runtime import log  # imported late: `check-config` stays light

    try:
        cfg = _load(args.config, default)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if force_sim and cfg.hal_backend != "sim":
        cfg = dataclasses.replace(cfg, hal_backend="sim")
    log.configure(cfg.log.level)
    try:
        code = asyncio.run(app.main(cfg, demo=getattr(args, "demo", False)))
    except Exception as exc:
        print(f"charger: {exc}", file=sys.stderr)
        return app.EXIT_FAILURE
    if code == app.EXIT_RESTART:
        # Station reset: start afresh in the same process slot (same PID for supervisors).
        os.execv(sys.executable, [sys.executable, "-m", "charger", *sys.argv[1:]])
    return code


def _cmd_check(args: argparse.Namespace) -> int:
    main, conf_d = config.locate(args.path, "default.toml")
    try:
        cfg = config.load(main, conf_d)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{main}: ok ({len(cfg.evses)} EVSE, hal={cfg.hal_backend}, cs={cfg.station.cs})")
    for drop_in in config.drop_ins(conf_d):
        print(f"  + {drop_in}")
    return 0


def _broker_address(args: argparse.Namespace, role: str) -> BrokerAddress:
    """Where the broker is and, for the broker the charger spawns, the credentials of
    `role` from its state directory (readable by the charger's user and root only)."""
    from charger.protocols.mqtt import credentials
    from charger.protocols.mqtt.connection import BrokerAddress

    if args.port is not None and args.config is None:
        return BrokerAddress(args.host or "127.0.0.1", args.port)  # someone else's broker
    cfg = _load(args.config, "sim.toml")
    login = None
    if cfg.mqtt.broker == "spawn":
        login = credentials.read(cfg.station.state_dir, role)
    port = args.port if args.port is not None else cfg.mqtt.port
    return BrokerAddress(args.host or cfg.mqtt.host, port, credentials=login)


def _cmd_tail(args: argparse.Namespace) -> int:
    from charger.protocols.mqtt.tail import tail

    broker = _broker_address(args, "monitor")
    try:
        asyncio.run(tail(broker, args.json, lambda line: print(line, flush=True)))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"charger bus tail: cannot follow {broker}: {exc}", file=sys.stderr)
        return 1
    return 0


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _cmd_simctl(args: argparse.Namespace) -> int:
    from charger.bus.messages import Topic
    from charger.protocols.mqtt.connection import connect

    command: dict[str, Any] = {"cmd": args.command, "id": str(uuid.uuid4()), "evse": args.evse}
    for item in args.args:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"charger simctl: argument {item!r} is not key=value", file=sys.stderr)
            return 2
        command[key] = _parse_value(value)
    broker = _broker_address(args, "simctl")

    async def send() -> dict[str, Any]:
        async with connect(broker, "charger-simctl") as client:
            await client.subscribe(Topic.SIM_REPLY)
            await client.publish(Topic.SIM_CMD, json.dumps(command))
            async with asyncio.timeout(5.0):
                async for message in client.messages:
                    reply: dict[str, Any] = json.loads(bytes(message.payload))
                    if reply.get("id") == command["id"]:
                        return reply
        raise TimeoutError

    try:
        reply = asyncio.run(send())
    except Exception as exc:
        print(
            f"charger simctl: no reply from the simulated board at {broker}: {exc!r}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(reply, indent=2))
    return 0 if reply.get("ok") else 1


def _cmd_slac(args: argparse.Namespace) -> int:
    from charger.protocols.slac.link import RawEthernet
    from charger.protocols.slac.standalone import serve
    from charger.runtime import log

    log.configure(args.log_level)
    transport = RawEthernet(args.iface, carrier_timeout_s=args.carrier_timeout)
    try:
        return asyncio.run(serve(transport, loop=args.loop, init_timeout_s=args.timeout))
    except KeyboardInterrupt:
        return 130


def _cmd_secc(args: argparse.Namespace) -> int:
    from charger import app
    from charger.runtime import log

    try:
        cfg = _load(args.config, "sim.toml")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    log.configure(args.log_level)
    app.select_exi_codec(cfg.iso15118.exi_codec)
    try:
        return asyncio.run(app.run_secc(cfg, args.iface, loop=args.loop))
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="charger", description="EV charger firmware")
    parser.add_argument("--version", action="version", version=f"charger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the charger with the configured hardware")
    run.add_argument(
        "--config",
        help="TOML config, plus the conf.d/*.toml beside it (default: "
        "/etc/charger/charger.toml if it exists, else the packaged default.toml)",
    )
    sim = sub.add_parser("sim", help="run the charger on the simulated board")
    sim.add_argument(
        "--config",
        help="TOML config, plus the conf.d/*.toml beside it (default: "
        "/etc/charger/charger.toml if it exists, else the packaged sim.toml)",
    )
    sim.add_argument(
        "--demo",
        action="store_true",
        help="let a simulated car plug in, charge, stop and leave in a loop",
    )

    slac = sub.add_parser("slac", help="run the EVSE side of SLAC alone on an interface")
    slac.add_argument("--iface", required=True, help="the PLC modem's network interface")
    slac.add_argument("--loop", action="store_true", help="keep serving after each outcome")
    slac.add_argument(
        "--timeout",
        type=float,
        default=50.0,
        help="seconds to wait for an EV (TT_EVSE_SLAC_init, default 50)",
    )
    slac.add_argument(
        "--carrier-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for carrier on the interface",
    )
    slac.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])

    secc = sub.add_parser(
        "secc",
        help="run the ISO 15118 SECC alone on an interface, the simulated power path behind it",
    )
    secc.add_argument("--iface", required=True, help="the PLC (or test) network interface")
    secc.add_argument(
        "--config",
        help="TOML config: [iso15118] and the first [[evse]] (default: the packaged sim.toml)",
    )
    secc.add_argument("--loop", action="store_true", help="keep serving after each session")
    secc.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])

    check = sub.add_parser(
        "check-config", help="validate a config file and its drop-ins; exit 2 if bad"
    )
    check.add_argument("path", nargs="?", help="the main file (default: what `charger run` reads)")

    bus = sub.add_parser("bus", help="watch the Josev API bus")
    bus_sub = bus.add_subparsers(dest="bus_command", required=True)
    tail = bus_sub.add_parser("tail", help="print every Josev API message, one per line")
    simctl = sub.add_parser("simctl", help="send a command to the simulated board")
    simctl.add_argument("command", help="plug_in, unplug, present_token, fault, state, ...")
    simctl.add_argument("args", nargs="*", help="key=value arguments (values parsed as JSON)")
    simctl.add_argument("--evse", type=int, default=1)
    for p in (tail, simctl):
        p.add_argument("--config", help="take the broker address from this config")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, help="broker port (default: from the config)")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _cmd_run(args, "default.toml", force_sim=False)
    if args.command == "sim":
        return _cmd_run(args, "sim.toml", force_sim=True)
    if args.command == "check-config":
        return _cmd_check(args)
    if args.command == "bus":
        return _cmd_tail(args)
    if args.command == "slac":
        return _cmd_slac(args)
    if args.command == "secc":
        return _cmd_secc(args)
    return _cmd_simctl(args)
