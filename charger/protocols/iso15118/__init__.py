"""ISO 15118 SECC: SDP, V2GTP over TCP/TLS, SupportedAppProtocol and one sans-IO session
core per protocol (DIN SPEC 70121, ISO 15118-2), meeting the CS on the bus. See
docs/iso15118.md."""
