"""Reads a set of XML Schema files into the few structures the EXI grammar builder needs.

Only what the ISO 15118 / DIN 70121 / xmldsig schemas use is supported: named and
anonymous complex types (sequence, choice, any, complexContent extension/restriction,
simpleContent extension), simple types restricted from built-ins (enumeration, length and
range facets), element refs and substitution groups. Anything else is an error that names
the file and the construct, so a new schema version cannot be misread silently.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

XS_NS = "http://www.w3.org/2001/XMLSchema"
XS = "{" + XS_NS + "}"
UNBOUNDED = -1


class QName(NamedTuple):
    ns: str
    local: str

    def sort_key(self) -> tuple[str, str]:
        # EXI sorts qualified names by local name first, then by namespace URI.
        return (self.local, self.ns)

    def __str__(self) -> str:
        return self.local


@dataclass(eq=False)
class SimpleType:
    """A simple type reduced to what decides its EXI representation."""

    name: QName | None
    kind: str  # boolean | integer | string | hex | base64 | enum
    min_value: int | None = None
    max_value: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    enum_values: tuple[str, ...] = ()
    builtin: str = ""
    enum_id: int = -1  # set by the table builder: index of its Python enum


@dataclass(eq=False)
class AttributeUse:
    qname: QName
    type: SimpleType
    required: bool


@dataclass(eq=False)
class Particle:
    kind: str  # element | sequence | choice | any
    min: int
    max: int  # UNBOUNDED for unbounded
    children: list[Particle] = field(default_factory=list)
    element: ElementDecl | None = None
    is_ref: bool = False  # a global element reference (substitution groups apply)


@dataclass(eq=False)
class ComplexType:
    name: QName | None
    attributes: list[AttributeUse] = field(default_factory=list)
    content: str = "empty"  # empty | simple | elements
    simple: SimpleType | None = None
    particle: Particle | None = None
    mixed: bool = False
    abstract: bool = False
    context: str = ""  # element name for anonymous types
    element_ns: str = ""  # and that element's namespace


@dataclass(eq=False)
class ElementDecl:
    qname: QName
    type: ComplexType | SimpleType
    abstract: bool
    substitution_head: QName | None
    is_global: bool


_INT_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "integer": (None, None),
    "unsignedByte": (0, 2**8 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
}
_STRINGS = {"string", "anyURI", "ID", "IDREF", "NCName", "token", "normalizedString", "Name"}


def _builtin(local: str) -> SimpleType:
    if local == "boolean":
        return SimpleType(None, "boolean", builtin=local)
    if local in _INT_BOUNDS:
        low, high = _INT_BOUNDS[local]
        return SimpleType(None, "integer", low, high, builtin=local)
    if local in _STRINGS:
        return SimpleType(None, "string", builtin=local)
    if local == "hexBinary":
        return SimpleType(None, "hex", builtin=local)
    if local == "base64Binary":
        return SimpleType(None, "base64", builtin=local)
    raise SchemaError(f"built-in type xs:{local} is not supported")


class SchemaError(Exception):
    pass


@dataclass
class _Doc:
    path: Path
    root: ET.Element
    prefixes: dict[str, str]
    target_ns: str
    element_qualified: bool


class SchemaSet:
    """All components reachable from one root schema file (imports followed)."""

    def __init__(self, root_file: Path) -> None:
        self._docs: list[_Doc] = []
        self._raw: dict[tuple[str, QName], tuple[_Doc, ET.Element]] = {}
        self._simple: dict[QName, SimpleType] = {}
        self._complex: dict[QName, ComplexType] = {}
        self._elements: dict[QName, ElementDecl] = {}
        self.local_elements: list[ElementDecl] = []
        self._load(root_file.resolve())
        for kind, qname in list(self._raw):
            if kind == "element":
                self.element(qname)
        for kind, qname in list(self._raw):
            if kind == "complexType":
                self.complex_type(qname)

    # -- loading ---------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        if any(d.path == path for d in self._docs):
            return
        prefixes: dict[str, str] = {}
        for _event, (prefix, uri) in ET.iterparse(path, events=["start-ns"]):
            prefixes.setdefault(prefix, uri)
        root = ET.parse(path).getroot()
        doc = _Doc(
            path,
            root,
            prefixes,
            root.get("targetNamespace", ""),
            root.get("elementFormDefault") == "qualified",
        )
        self._docs.append(doc)
        for child in root:
            tag = _tag(child)
            if tag in ("element", "complexType", "simpleType"):
                qname = QName(doc.target_ns, child.get("name", ""))
                self._raw[(tag, qname)] = (doc, child)
            elif tag in ("import", "include"):
                location = child.get("schemaLocation")
                if location:
                    self._load(_locate(path.parent, location))
            elif tag not in ("annotation",) and isinstance(child.tag, str):
                raise SchemaError(f"{path.name}: top-level <{tag}> is not supported")

    def _resolve(self, doc: _Doc, text: str) -> QName:
        prefix, _, local = text.rpartition(":")
        if prefix not in doc.prefixes and prefix:
            raise SchemaError(f"{doc.path.name}: unknown prefix {prefix!r} in {text!r}")
        return QName(doc.prefixes.get(prefix, ""), local)

    # -- components ------------------------------------------------------------------
    @property
    def global_elements(self) -> list[ElementDecl]:
        return list(self._elements.values())

    def element(self, qname: QName) -> ElementDecl:
        if qname not in self._elements:
            found = self._raw.get(("element", qname))
            if found is None:
                raise SchemaError(f"element {qname.local} ({qname.ns}) is not declared")
            doc, node = found
            head = node.get("substitutionGroup")
            decl = ElementDecl(
                qname,
                ComplexType(None),  # placeholder, replaced below (recursion-safe)
                node.get("abstract") == "true",
                self._resolve(doc, head) if head else None,
                True,
            )
            self._elements[qname] = decl
            decl.type = self._element_type(doc, node, qname.local)
        return self._elements[qname]

    def substitution_members(self, head: QName) -> list[ElementDecl]:
        """The head and every element that may stand for it.

        Abstract ones stay in: their SE productions take event codes like any other
        (EXIficient agrees), even though no valid document uses them.
        """
        found = [self.element(head)]
        changed = True
        while changed:
            changed = False
            for decl in self._elements.values():
                if decl.substitution_head in {d.qname for d in found} and decl not in found:
                    found.append(decl)
                    changed = True
        return found

    def _element_type(self, doc: _Doc, node: ET.Element, context: str) -> ComplexType | SimpleType:
        type_name = node.get("type")
        if type_name:
            return self.type_by_name(self._resolve(doc, type_name))
        for child in node:
            if _tag(child) == "complexType":
                anonymous = self._complex_type(doc, child, None, context)
                anonymous.element_ns = doc.target_ns
                return anonymous
            if _tag(child) == "simpleType":
                return self._simple_type(doc, child, None)
        raise SchemaError(
            f"{doc.path.name}: element {context!r} has no type (anyType is not supported)"
        )

    def type_by_name(self, qname: QName) -> ComplexType | SimpleType:
        if qname.ns == XS_NS:
            return _builtin(qname.local)
        if ("complexType", qname) in self._raw:
            return self.complex_type(qname)
        return self.simple_type(qname)

    def simple_type(self, qname: QName) -> SimpleType:
        if qname.ns == XS_NS:
            return _builtin(qname.local)
        if qname not in self._simple:
            found = self._raw.get(("simpleType", qname))
            if found is None:
                raise SchemaError(f"simple type {qname.local} ({qname.ns}) is not declared")
            self._simple[qname] = self._simple_type(found[0], found[1], qname)
        return self._simple[qname]

    def complex_type(self, qname: QName) -> ComplexType:
        if qname not in self._complex:
            found = self._raw.get(("complexType", qname))
            if found is None:
                raise SchemaError(f"complex type {qname.local} ({qname.ns}) is not declared")
            self._complex[qname] = ComplexType(qname)  # recursion guard
            self._complex[qname] = self._complex_type(found[0], found[1], qname, "")
        return self._complex[qname]

    def _simple_type(self, doc: _Doc, node: ET.Element, qname: QName | None) -> SimpleType:
        restriction = _only_child(doc, node, "restriction")
        base = self.simple_type(self._resolve(doc, restriction.get("base", "")))
        result = SimpleType(
            qname,
            base.kind,
            base.min_value,
            base.max_value,
            base.min_length,
            base.max_length,
            base.enum_values,
            base.builtin,
        )
        enums: list[str] = []
        for facet in restriction:
            tag, value = _tag(facet), facet.get("value", "")
            if tag == "enumeration":
                enums.append(value)
            elif tag == "minInclusive":
                result.min_value = int(value)
            elif tag == "maxInclusive":
                result.max_value = int(value)
            elif tag == "minExclusive":
                result.min_value = int(value) + 1
            elif tag == "maxExclusive":
                result.max_value = int(value) - 1
            elif tag == "length":
                result.min_length = result.max_length = int(value)
            elif tag == "minLength":
                result.min_length = int(value)
            elif tag == "maxLength":
                result.max_length = int(value)
            elif tag in ("annotation", "whiteSpace"):
                pass
            elif isinstance(facet.tag, str):
                raise SchemaError(f"{doc.path.name}: facet <{tag}> is not supported")
        if enums:
            if result.kind != "string":
                raise SchemaError(f"{doc.path.name}: enumeration of {result.kind} is not supported")
            result.kind, result.enum_values = "enum", tuple(enums)
        return result

    def _complex_type(
        self, doc: _Doc, node: ET.Element, qname: QName | None, context: str
    ) -> ComplexType:
        result = ComplexType(
            qname, mixed=node.get("mixed") == "true", abstract=node.get("abstract") == "true"
        )
        result.context = context
        self._fill_content(doc, node, result)
        return result

    def _fill_content(self, doc: _Doc, node: ET.Element, result: ComplexType) -> None:
        for child in node:
            tag = _tag(child)
            if tag in ("sequence", "choice"):
                result.content, result.particle = "elements", self._particle(doc, child)
            elif tag == "attribute":
                result.attributes.append(self._attribute(doc, child))
            elif tag == "complexContent":
                derivation = _only_child(doc, child, "extension", "restriction")
                base = self.complex_type(self._resolve(doc, derivation.get("base", "")))
                if _tag(derivation) == "extension":
                    result.attributes.extend(base.attributes)
                    result.content, result.particle = base.content, base.particle
                    result.mixed = result.mixed or base.mixed
                own = ComplexType(None)
                self._fill_content(doc, derivation, own)
                result.attributes.extend(own.attributes)
                if own.particle is not None:
                    if result.particle is None:
                        result.particle = own.particle
                    else:
                        result.particle = Particle(
                            "sequence", 1, 1, [result.particle, own.particle]
                        )
                    result.content = "elements"
            elif tag == "simpleContent":
                derivation = _only_child(doc, child, "extension")
                base_name = self._resolve(doc, derivation.get("base", ""))
                base = self.type_by_name(base_name)
                if isinstance(base, ComplexType):
                    if base.simple is None:
                        raise SchemaError(f"{doc.path.name}: simpleContent base {base_name.local}")
                    result.attributes.extend(base.attributes)
                    result.simple = base.simple
                else:
                    result.simple = base
                result.content = "simple"
                for attribute in derivation:
                    if _tag(attribute) == "attribute":
                        result.attributes.append(self._attribute(doc, attribute))
            elif tag == "anyAttribute":
                raise SchemaError(f"{doc.path.name}: anyAttribute is not supported")
            elif tag not in ("annotation",) and isinstance(child.tag, str):
                raise SchemaError(f"{doc.path.name}: <{tag}> in a complex type is not supported")

    def _attribute(self, doc: _Doc, node: ET.Element) -> AttributeUse:
        if node.get("ref"):
            raise SchemaError(f"{doc.path.name}: attribute refs are not supported")
        type_name = node.get("type")
        if type_name:
            simple = self.simple_type(self._resolve(doc, type_name))
        else:
            simple = self._simple_type(doc, _only_child(doc, node, "simpleType"), None)
        # attributeFormDefault is unqualified in every schema we read: no namespace.
        return AttributeUse(QName("", node.get("name", "")), simple, node.get("use") == "required")

    def _particle(self, doc: _Doc, node: ET.Element) -> Particle:
        tag = _tag(node)
        low = int(node.get("minOccurs", "1"))
        high_text = node.get("maxOccurs", "1")
        high = UNBOUNDED if high_text == "unbounded" else int(high_text)
        if tag in ("sequence", "choice"):
            children = [
                self._particle(doc, c)
                for c in node
                if _tag(c) in ("element", "sequence", "choice", "any")
            ]
            return Particle(tag, low, high, children)
        if tag == "any":
            return Particle("any", low, high)
        if tag == "element":
            ref = node.get("ref")
            if ref:
                return Particle(
                    "element", low, high, element=self.element(self._resolve(doc, ref)), is_ref=True
                )
            name = node.get("name", "")
            ns = doc.target_ns if doc.element_qualified else ""
            decl = ElementDecl(
                QName(ns, name), self._element_type(doc, node, name), False, None, False
            )
            self.local_elements.append(decl)
            return Particle("element", low, high, element=decl)
        raise SchemaError(f"{doc.path.name}: particle <{tag}> is not supported")


def _locate(folder: Path, location: str) -> Path:
    # DIN 70121's header imports xmldsig from its own folder although the file ships
    # once, one level up; look in the parent folders for the same file name.
    for candidate in (folder, *folder.parents):
        if (candidate / location).is_file():
            return (candidate / location).resolve()
    raise SchemaError(f"{folder}: imported schema {location} not found")


def _tag(node: ET.Element) -> str:
    tag = node.tag
    if not isinstance(tag, str) or not tag.startswith(XS):
        return ""
    return tag[len(XS) :]


def _only_child(doc: _Doc, node: ET.Element, *tags: str) -> ET.Element:
    for child in node:
        if _tag(child) in tags:
            return child
    raise SchemaError(f"{doc.path.name}: expected <{'|'.join(tags)}> inside <{_tag(node)}>")
