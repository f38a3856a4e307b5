"""Hardware abstraction layer: what the CS controller needs from a board (`interfaces`)
and the Raspberry Pi backend (`rpi`). The simulated board lives in `charger.sim`; `app`
picks the backend. Nothing here imports the CS controller, a protocol or the simulator."""
