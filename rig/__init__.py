"""The test rig: real parts on loopback that tests and benchmarks share.

Free ports, a mosquitto broker, the charger as a subprocess, a CSMS built on the `ocpp`
package, an in-process OCPP station. Nothing here imports pytest or any other test extra
(a unit test checks it), so benchmarks run after the runtime bootstrap alone. Helpers
only tests need live in `tests/support/`. Not shipped: setup.cfg packages `charger*` only.
"""
