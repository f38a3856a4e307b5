"""EV charger firmware: IEC 61851-1 controller, Josev API bus, protocol services."""

__version__ = "0.1.0"
