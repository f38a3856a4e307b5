"""The simulated car's ISO 15118 stack: an EVCC of our own on the project's EXI codec.

    options.py   what the car is told (`set_ev protocol= energy= target_soc_percent= ...`)
                 and what it reports (`state`), held by the board's `SimEv`
    battery.py   the battery as the EVCC sees it: OCV, the charging curve, remaining times
    core.py      what the protocol cores share: actions, timers, the request sequence,
                 the misbehaviours (sans-IO: bytes and time in, bytes and actions out)
    iso2.py      ISO 15118-2 AC and DC with EIM
    din.py       DIN SPEC 70121 DC
    client.py    the asyncio shell: SDP client, TCP/TLS connection, V2GTP framing (the
                 SECC's own `sdp` and `v2gtp` modules)
    car.py       the board's car driving sessions over the simulated link (`charger sim`)
    standalone.py  one session on a network interface with a model battery (a peer SECC
                 without a power path: the harness's reference SECC)

It sits in the simulator layer, above the protocols it speaks; no protocol service
imports it. docs/iso15118.md, "The simulated car", says how it reaches the SECC.
"""
