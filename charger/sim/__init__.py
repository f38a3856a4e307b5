"""The simulator: a simulated board (EVSE hardware and a car on each connector), the
car's SLAC peer and the QCA7000/powerline it talks through, and the service that takes
commands for them on MQTT `sim/cmd`. It sits above the protocols (the car speaks SLAC,
and will speak ISO 15118) and is never imported by the HAL, the CS controller or a
protocol service: `app` plugs the simulated board into the HAL's `Board` slot."""
