"""EXI codec for ISO 15118-2/-20, DIN SPEC 70121 and SupportedAppProtocol messages.

    from charger.protocols import exi
    from charger.protocols.exi import iso2

    data = exi.encode(iso2.V2G_Message(header=..., body=...))
    message = exi.decode(exi.Schema.ISO2, data)

Messages are the generated dataclasses of the family modules (`app_protocol`, `din`,
`iso2`, `iso20`, `iso20_ac`, `iso20_dc`, `iso20_wpt`, `iso20_acdp`, `xmldsig`). They are
written by tools/exigen into `_generated/` and imported from here, on first use. The work
is done by a backend: the C extension by default, the pure-Python twin, or any object
with the `Backend` methods (see `set_backend`).
"""

from __future__ import annotations

import enum
import importlib
import json
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from ._generated import _bindings
from .errors import ExiError

MAX_STREAM: int = _bindings.MAX_STREAM
"""Longest stream in bytes that `decode` reads and `encode` writes (both backends)."""

if TYPE_CHECKING:  # at run time __getattr__ imports them when first asked for
    from ._generated import app_protocol as app_protocol
    from ._generated import din as din
    from ._generated import iso2 as iso2
    from ._generated import iso20 as iso20
    from ._generated import iso20_ac as iso20_ac
    from ._generated import iso20_acdp as iso20_acdp
    from ._generated import iso20_dc as iso20_dc
    from ._generated import iso20_wpt as iso20_wpt
    from ._generated import xmldsig as xmldsig

__all__ = [
    "MAX_STREAM",
    "Backend",
    "ExiError",
    "Schema",
    "backend",
    "check_vector",
    "decode",
    "decode_fragment",
    "encode",
    "encode_fragment",
    "from_json",
    "set_backend",
    "to_json",
]


class Schema(enum.StrEnum):
    """A schema set: the grammar a stream is encoded with (names as in the test vectors)."""

    APP_PROTOCOL = "appProtocol"
    DIN = "din"
    ISO2 = "iso2"
    ISO20 = "iso20_common"
    ISO20_AC = "iso20_ac"
    ISO20_DC = "iso20_dc"
    ISO20_WPT = "iso20_wpt"
    ISO20_ACDP = "iso20_acdp"
    XMLDSIG = "xmldsig"

    @property
    def namespace(self) -> str:
        return str(_bindings.SETS[self.value][0])

    @classmethod
    def from_namespace(cls, namespace: str) -> Schema:
        """The schema a SupportedAppProtocol ProtocolNamespace (or -20 namespace) selects."""
        for schema in cls:
            if schema.namespace == namespace:
                return schema
        raise ExiError(f"no EXI grammar for namespace {namespace!r}")


_SCHEMA_OF_MODULE = {
    "app_protocol": Schema.APP_PROTOCOL,
    "din": Schema.DIN,
    "iso2": Schema.ISO2,
    "iso20": Schema.ISO20,
    "iso20_ac": Schema.ISO20_AC,
    "iso20_dc": Schema.ISO20_DC,
    "iso20_wpt": Schema.ISO20_WPT,
    "iso20_acdp": Schema.ISO20_ACDP,
    "xmldsig": Schema.XMLDSIG,
}


def __getattr__(name: str) -> ModuleType:
    """`exi.iso2` and the other family modules, imported the first time one is named."""
    if name not in _SCHEMA_OF_MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}._generated.{name}")
    globals()[name] = module
    return module


class Backend(Protocol):
    """What a codec implementation provides; `element=None` picks the root by class."""

    name: str

    def encode(
        self, schema: str, message: object, element: str | None, fragment: bool
    ) -> bytes: ...

    def decode(self, schema: str, data: bytes, fragment: bool) -> tuple[str, object]: ...


def _default_backend() -> Backend:
    try:
        from ._cbackend import CBackend
    except ImportError:  # extension not built: stay usable, just slower
        from ._pycodec import PythonBackend

        return PythonBackend()
    return CBackend()


_backend: Backend = _default_backend()


def backend() -> Backend:
    return _backend


def set_backend(choice: str | Backend) -> Backend:
    """Select the codec: "c", "python", "package.module:attribute" or a Backend object."""
    global _backend
    if isinstance(choice, str):
        if choice == "c":
            from ._cbackend import CBackend

            _backend = CBackend()
        elif choice == "python":
            from ._pycodec import PythonBackend

            _backend = PythonBackend()
        elif ":" in choice:
            module_name, _, attribute = choice.partition(":")
            factory = getattr(importlib.import_module(module_name), attribute)
            _backend = factory() if isinstance(factory, type) else factory
        else:
            raise ExiError(f"unknown EXI backend {choice!r}: use c, python or module:attribute")
    else:
        _backend = choice
    return _backend


def schema_of(message: object) -> Schema:
    module = type(message).__module__.rpartition(".")[2]
    if module not in _SCHEMA_OF_MODULE:
        raise ExiError(f"{type(message).__name__} is not an EXI message class")
    return _SCHEMA_OF_MODULE[module]


def encode(message: object, schema: str | None = None, *, element: str | None = None) -> bytes:
    """EXI stream (the V2GTP payload) for a root message object."""
    return _backend.encode(schema or schema_of(message), message, element, False)


def decode(schema: str, data: bytes) -> Any:
    """The root message object of an EXI stream."""
    return _backend.decode(schema, data, False)[1]


def encode_fragment(
    element_object: object, schema: str | None = None, *, element: str | None = None
) -> bytes:
    """EXI fragment of one element, as xmldsig digests of Plug & Charge need it.

    `schema` defaults to the object's own family; pass e.g. Schema.ISO2 for -2 body
    elements and `element` where the class alone does not name the element (eMAID).
    """
    return _backend.encode(schema or schema_of(element_object), element_object, element, True)


def decode_fragment(schema: str, data: bytes) -> tuple[str, Any]:
    """(element name, object) of an EXI fragment."""
    return _backend.decode(schema, data, True)


def to_json(
    schema: str, message: object, *, element: str | None = None, fragment: bool = False
) -> dict[str, Any]:
    """The message in the JSON form of the shared vectors and of the `iso15118` package."""
    if element is None:
        element = _element_of(schema, message, fragment)
    from . import json_form

    return json_form.to_json(schema, element, message, fragment=fragment)


def from_json(schema: str, document: dict[str, Any], *, fragment: bool = False) -> Any:
    from . import json_form

    return json_form.from_json(schema, document, fragment=fragment)[1]


def _element_of(schema: str, message: object, fragment: bool) -> str:
    from . import _pycodec

    g = _pycodec.grammar(schema)
    for qname, is_simple, arg in g.fragments if fragment else g.globals:
        if not is_simple and g.classes[arg] is type(message):
            return str(g.strings[qname])
    raise ExiError(f"{schema}: {type(message).__name__} is not a root element; pass element=")


def check_vector(vector: dict[str, Any]) -> list[str]:
    """Differences between this codec and one vector line ({"schema", "json", "exi_hex", ...}).

    Decodes `exi_hex` and compares with `json`, encodes `json` and compares with the bytes.
    An empty list means the vector passes both ways.
    """
    from . import json_form

    schema, fragment = vector["schema"], bool(vector.get("fragment"))
    expected = bytes.fromhex(vector["exi_hex"])
    problems = []
    element, message = json_form.from_json(schema, vector["json"], fragment=fragment)
    try:
        encoded = _backend.encode(schema, message, element, fragment)
        if encoded != expected:
            problems.append(f"encode: {encoded.hex()} != {vector['exi_hex']}")
    except ExiError as exc:
        problems.append(f"encode: {exc}")
    try:
        decoded_element, decoded = _backend.decode(schema, expected, fragment)
        as_json = json_form.to_json(schema, decoded_element, decoded, fragment=fragment)
        if _canonical(as_json) != _canonical(vector["json"]):
            problems.append(f"decode: {as_json} != {vector['json']}")
    except ExiError as exc:
        problems.append(f"decode: {exc}")
    return problems


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
