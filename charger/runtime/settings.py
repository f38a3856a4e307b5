"""Settings declared once: the declaration helpers and the one loader that checks TOML
against them.

A component declares its TOML section as a frozen dataclass beside its code; each field
is a key, its annotation the key's type, and the helper that makes it the rest:

    max_current_a: float = setting(16.0, "most current the EVSE offers", unit="A", lo=6, hi=80)
    evse_id: str = field(metadata=required("ISO 15118 EVSE ID", pattern=r"[A-Z0-9*]{1,37}"))
    station: StationConfig = section(StationConfig)        # a nested table, [station]
    evse: tuple[EvseConfig, ...] = field(metadata=tables("one per EVSE", noun="EVSE"))

Types: bool, int, float, str, Path, a Literal of strings (its choices), tuple[str, ...]
(a list of strings), a section class, and a tuple of a section class (an array of tables,
`[[evse]]`). Numbers take a range (lo, hi), strings a regex pattern or choices. A section
with rules across its keys adds `def check(self, report: Report) -> None`.

`load_settings` validates parsed TOML against a section and reports every problem at
once, each as ``<file>: <dotted.path>: <what is wrong> (expected <what>)``; a bad value is
replaced by its default so the rest can still be checked. `read_layers` reads a main
file and its drop-ins into one table, remembering which file set which key, so that an
error names the file its value came from. `declarations` is what tools/configgen turns
into assets/config/default.toml and the README's table.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")
KeyPath = tuple[str | int, ...]  # ("evse", 0, "phases") is evse[0].phases

_METADATA_KEY = "charger.setting"
_MISSING: Any = dataclasses.MISSING


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every reason, one per entry, and
    `sources` the file each one comes from (`source`, the main file, for all of them
    when there are no drop-ins)."""

    def __init__(self, source: str, problems: list[str], sources: list[str] | None = None) -> None:
        self.source = source
        self.problems = problems
        self.sources = sources if sources is not None else [source] * len(problems)
        super().__init__(
            "\n".join(f"{s}: {p}" for s, p in zip(self.sources, problems, strict=True))
        )


# ----------------------------------------------------------------------- declaring


@dataclass(frozen=True)
class Spec:
    """What a declaration says besides its type and default."""

    doc: str
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    missing: str = ""  # a required key: what the error says is expected when it is absent
    noun: str = ""  # an array of tables: what one table is; set: at least one is required
    unique: tuple[str, ...] = ()  # an array of tables: keys no two of its tables share


def setting(
    default: T,
    doc: str,
    *,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: Sequence[str] = (),
    pattern: str | None = None,
) -> T:
    """A key with a default; `doc` is one line, `unit` goes into README and default.toml."""
    spec = Spec(doc, unit, lo, hi, tuple(choices), pattern)
    return field(default=default, metadata={_METADATA_KEY: spec})


def required(
    doc: str,
    *,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: Sequence[str] = (),
    pattern: str | None = None,
    missing: str = "",
) -> dict[str, Spec]:
    """Metadata of a key without a default: `id: int = field(metadata=required(...))`.
    `missing` is the error's expectation when the key is absent (else the type's)."""
    return {_METADATA_KEY: Spec(doc, unit, lo, hi, tuple(choices), pattern, missing)}


def section(cls: Callable[[], T]) -> T:
    """A nested table with the section's defaults; its doc is the class docstring."""
    return field(default_factory=cls, metadata={_METADATA_KEY: Spec("")})


def tables(doc: str, *, noun: str = "", unique: Sequence[str] = ()) -> dict[str, Spec]:
    """Metadata of an array of tables: `evse: tuple[EvseConfig, ...] = field(metadata=
    tables(...))`. With `noun`, at least one table is required; without, declare the
    field with `default=()` as well."""
    return {_METADATA_KEY: Spec(doc, noun=noun, unique=tuple(unique))}


Kind = Literal["bool", "int", "float", "str", "path", "choice", "strings", "section", "tables"]


@dataclass(frozen=True)
class Declaration:
    """One key of a section, as the loader and the generator see it."""

    name: str
    kind: Kind
    spec: Spec
    default: Any  # dataclasses.MISSING for a required key
    item: Any = None  # the section class of a section or an array of tables
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def doc(self) -> str:
        if self.kind in ("section", "tables") and not self.spec.doc:
            return section_doc(self.item)
        return self.spec.doc

    @property
    def expected(self) -> str:
        """What a valid value is, as error messages say it."""
        lo, hi = self.spec.lo, self.spec.hi
        bounds = (
            f" from {_number(lo)} to {_number(hi)}" if lo is not None and hi is not None else ""
        )
        if self.kind == "bool":
            return "true or false"
        if self.kind == "int":
            return "an integer" + bounds
        if self.kind == "float":
            return "a number" + bounds
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "strings":
            return "a list of strings"
        if self.kind in ("str", "path"):
            return f"a string matching {self.spec.pattern}" if self.spec.pattern else "a string"
        return "a table" if self.kind == "section" else f"an array [[{self.name}]]"

    @property
    def allowed(self) -> str:
        """The allowed range, choices or pattern, for documentation ("" if any value)."""
        lo, hi = self.spec.lo, self.spec.hi
        if self.kind in ("int", "float") and lo is not None and hi is not None:
            return f"{_number(lo)} to {_number(hi)}"
        if self.kind == "choice":
            return ", ".join(self.choices)
        return self.spec.pattern or ""

    @property
    def toml_default(self) -> Any:
        """The default as TOML holds it (a Path as a string, a tuple as a list)."""
        return to_toml(self.default)

    def convert(self, value: Any) -> tuple[bool, Any]:
        """(True, the typed value) if `value` from TOML is valid, else (False, None)."""
        lo = self.spec.lo if self.spec.lo is not None else float("-inf")
        hi = self.spec.hi if self.spec.hi is not None else float("inf")
        if self.kind == "bool":
            return isinstance(value, bool), value
        if self.kind in ("int", "float"):
            types = int if self.kind == "int" else int | float
            if isinstance(value, bool) or not isinstance(value, types) or not lo <= value <= hi:
                return False, None
            return True, value if self.kind == "int" else float(value)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices, value
        if self.kind == "strings":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            return ok, tuple(value) if ok else None
        if self.kind in ("str", "path"):
            pattern = self.spec.pattern
            if not isinstance(value, str) or (pattern and not re.fullmatch(pattern, value)):
                return False, None
            return True, Path(value).expanduser() if self.kind == "path" else value
        raise TypeError(f"{self.kind} is not a plain value")

    def shown(self, value: Any) -> str:
        """A bad value as the error shows it."""
        if self.kind in ("str", "path") and not isinstance(value, str):
            return f"a {_type_name(value)}"
        return repr(value)

    def placeholder(self) -> Any:
        """Stands in for a missing required key so that the rest can still be checked."""
        zero: dict[str, Any] = {"bool": False, "int": 0, "float": 0.0, "str": "", "strings": ()}
        if self.kind == "choice":
            return self.choices[0]
        if self.kind == "path":
            return Path()
        if self.kind == "tables":
            return ()
        return self.item() if self.kind == "section" else zero[self.kind]


_declared: dict[type, tuple[Declaration, ...]] = {}


def declarations(cls: type) -> tuple[Declaration, ...]:
    """The keys a section class declares, in order (TypeError on an undeclared field)."""
    if cls not in _declared:
        _declared[cls] = _declare(cls)
    return _declared[cls]


def _declare(cls: type) -> tuple[Declaration, ...]:
    hints = get_type_hints(cls)
    result = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_METADATA_KEY)
        if not isinstance(spec, Spec):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        default = f.default
        if callable(f.default_factory):
            default = f.default_factory()
        kind, item, choices = _kind(hints[f.name], spec)
        result.append(Declaration(f.name, kind, spec, default, item, choices))
    return tuple(result)


def section_doc(cls: type) -> str:
    """The first paragraph of a section class's docstring, on one line."""
    doc = cls.__doc__ or ""
    if doc.startswith(cls.__name__ + "("):  # dataclass made it up
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def _kind(tp: Any, spec: Spec) -> tuple[Kind, Any, tuple[str, ...]]:
    if tp is bool:
        return "bool", None, ()
    if tp is int:
        return "int", None, ()
    if tp is float:
        return "float", None, ()
    if tp is str:
        return ("choice", None, spec.choices) if spec.choices else ("str", None, ())
    if tp is Path:
        return "path", None, ()
    if get_origin(tp) is Literal:
        return "choice", None, tuple(str(a) for a in get_args(tp))
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if args == (str, ...):
            return "strings", None, ()
        if len(args) == 2 and args[1] is Ellipsis and dataclasses.is_dataclass(args[0]):
            return "tables", args[0], ()
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "section", tp, ()
    raise TypeError(f"settings cannot be of type {tp!r}")


def to_toml(value: Any) -> Any:
    """A declared value as TOML holds it."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [to_toml(v) for v in value]
    return value


def declaration_problems(cls: type, path: str = "") -> list[str]:
    """Mistakes in the declarations of section `cls` and of the sections it holds: a key
    without a doc, a number without a range, a default that its own rules reject."""
    problems: list[str] = []
    for d in declarations(cls):
        where = f"{path}.{d.name}" if path else d.name
        if d.kind in ("section", "tables"):
            if not d.doc:
                problems.append(f"{where}: has no doc (a docstring on {d.item.__name__})")
            problems += declaration_problems(d.item, where)
            continue
        if not d.spec.doc:
            problems.append(f"{where}: has no doc")
        if d.kind in ("int", "float") and (d.spec.lo is None or d.spec.hi is None):
            problems.append(f"{where}: has no range (lo, hi)")
        if not d.required and not d.convert(d.toml_default)[0]:
            problems.append(f"{where}: default {d.toml_default!r} is not {d.expected}")
    return problems


def _number(value: float | None) -> str:
    if value is not None and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _type_name(value: object) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def dotted(path: KeyPath) -> str:
    """("evse", 0, "phases") -> "evse[0].phases"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


# ------------------------------------------------------------------------- loading


class Report:
    """Handed to a section's `check()`: records a problem with one of its keys."""

    def __init__(self, loader: _Loader, path: KeyPath) -> None:
        self._loader = loader
        self._path = path

    def __call__(self, key: str, what: str, expected: str) -> None:
        self._loader.problem((*self._path, key), what, expected)

    def path(self, key: str) -> str:
        """The dotted path of a key of this section, to name it in a message."""
        return dotted((*self._path, key))


class _Loader:
    def __init__(self, source: str, origin: Mapping[KeyPath, str]) -> None:
        self.source = source
        self.origin = origin
        self.problems: list[str] = []
        self.sources: list[str] = []

    def problem(self, path: KeyPath, what: str, expected: str) -> None:
        self.problems.append(f"{dotted(path)}: {what} (expected {expected})")
        # the file that set the value, or else the table around it
        for end in range(len(path), 0, -1):
            if path[:end] in self.origin:
                self.sources.append(self.origin[path[:end]])
                return
        self.sources.append(self.source)

    def section(self, cls: type[T], table: Any, path: KeyPath) -> T:
        if not isinstance(table, dict):
            self.problem(path, f"is a {_type_name(table)}", "a table")
            table = {}
        decls = declarations(cls)
        values = {
            d.name: self.value(d, table.get(d.name, _MISSING), (*path, d.name)) for d in decls
        }
        known = sorted(d.name for d in decls)
        for key in sorted(set(table) - set(known)):
            self.problem((*path, key), "is not a known key", "one of: " + ", ".join(known))
        result = cls(**values)
        check = getattr(result, "check", None)
        if check is not None:
            check(Report(self, path))
        return result

    def value(self, d: Declaration, value: Any, path: KeyPath) -> Any:
        if d.kind == "section":
            return self.section(d.item, {} if value is _MISSING else value, path)
        if d.kind == "tables":
            return self.tables(d, value, path)
        if value is _MISSING:
            if d.required:
                self.problem(path, "is missing", d.spec.missing or d.expected)
                return d.placeholder()
            return d.default
        ok, converted = d.convert(value)
        if ok:
            return converted
        self.problem(path, f"is {d.shown(value)}", d.expected)
        return d.placeholder() if d.required else d.default

    def tables(self, d: Declaration, value: Any, path: KeyPath) -> tuple[Any, ...]:
        if value is _MISSING:
            value = []
        if not isinstance(value, list):
            self.problem(path, f"is a {_type_name(value)}", d.expected)
            return d.placeholder() if d.required else d.default  # type: ignore[no-any-return]
        items = tuple(self.section(d.item, t, (*path, i)) for i, t in enumerate(value))
        if not items and d.spec.noun:
            self.problem(path, f"no [[{d.name}]] table", f"at least one {d.spec.noun}")
        for attr in d.spec.unique:
            seen = [getattr(item, attr) for item in items]
            for dup in sorted({v for v in seen if seen.count(v) > 1}, key=str):
                self.problem(path, f"{attr} {dup!r} is used twice", "unique values")
        return items


def load_settings(
    cls: type[T], data: Mapping[str, Any], source: str, origin: Mapping[KeyPath, str] | None = None
) -> T:
    """Builds section `cls` from parsed TOML, raising ConfigError with every problem.
    `origin` maps a key path to the file that set it (see `read_layers`); a problem
    with no entry is `source`'s."""
    loader = _Loader(source, origin or {})
    result = loader.section(cls, data, ())
    if loader.problems:
        raise ConfigError(source, loader.problems, loader.sources)
    return result


def read_layers(paths: Sequence[Path]) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """Reads TOML files in order into one table, each overriding the keys it sets
    (tables merge key by key; any other value, an array of tables too, is replaced).
    Returns the table and which file set each key; raises ConfigError naming every
    file that cannot be read or parsed."""
    data: dict[str, Any] = {}
    origin: dict[KeyPath, str] = {}
    problems: list[str] = []
    sources: list[str] = []
    for path in paths:
        try:
            layer = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"cannot be read: {exc.strerror}")
            sources.append(str(path))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"is not valid TOML: {exc}")
            sources.append(str(path))
        else:
            _merge(data, layer, str(path), origin, ())
    if problems:
        raise ConfigError(str(paths[0]), problems, sources)
    return data, origin


def _merge(
    base: dict[str, Any],
    layer: dict[str, Any],
    source: str,
    origin: dict[KeyPath, str],
    prefix: KeyPath,
) -> None:
    for key, value in layer.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            origin[path] = source  # the table was touched here
            _merge(base[key], value, source, origin, path)
            continue
        base[key] = value
        for stale in [p for p in origin if p[: len(path)] == path]:
            del origin[stale]
        origin[path] = source
