"""Schema-informed EXI grammars (W3C EXI 1.0, section 8.5) for one schema set.

Each complex type becomes a deterministic grammar whose productions carry the event
codes EXI assigns: attributes sorted by qname first, then element productions in schema
order, wildcards, EE, untyped characters (8.5.4.3). The options are the ones ISO 15118
uses: strict = false, so every state also has second-level productions (xsi:type,
xsi:nil, undeclared content) that the codec does not produce; they only widen each
first-level event code by one value (8.5.4.4).

Bounded repetitions are not unrolled into maxOccurs copies of a state as the spec
describes them: a repeated element is one *counted* state whose loop production is
enabled while count < maxOccurs and whose exits are enabled once count >= minOccurs.
That yields exactly the unrolled grammar's event codes with a fraction of the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .xsd import (
    UNBOUNDED,
    ComplexType,
    ElementDecl,
    Particle,
    QName,
    SchemaError,
    SchemaSet,
    SimpleType,
)

# Event kinds, also the C enum order.
AT, SE, SE_SIMPLE, SE_ANY, EE, CH, CH_UNTYPED = range(7)
_CATEGORY = {AT: 0, SE: 1, SE_SIMPLE: 1, SE_ANY: 2, EE: 3, CH: 4, CH_UNTYPED: 5}

# Production guards in counted states.
ALWAYS, WHILE_BELOW_MAX, ONCE_MIN_REACHED = range(3)


@dataclass(eq=False)
class Field:
    """One attribute, child element (or group of substitutable elements) or the text value."""

    xsd_name: str
    kind: str  # attr | elem | value
    optional: bool = False
    is_list: bool = False
    max_occurs: int = 1
    # elem: the elements that fill this field, in schema order.
    elements: list[ElementDecl] = field(default_factory=list)
    simple: SimpleType | None = None  # attr / value / simple-typed element


@dataclass
class Production:
    kind: int
    qname: QName | None
    target: int  # state index inside the type grammar, -1 for EE
    field: int  # -1 when no field (wildcards, untyped text)
    child: ComplexType | SimpleType | None
    guard: int
    order: tuple[int, ...]


@dataclass
class State:
    productions: list[Production]
    count_min: int = 0  # counted states only
    count_max: int = 0  # 0: not counted; UNBOUNDED: loop without limit


@dataclass(eq=False)
class TypeGrammar:
    type: ComplexType
    fields: list[Field]
    states: list[State]


# -- NFA ---------------------------------------------------------------------------------


@dataclass
class _NfaProd:
    kind: int | None  # None: epsilon
    qname: QName | None
    target: int
    field: int
    child: ComplexType | SimpleType | None
    order: tuple[int, ...]
    loop: bool = False  # the counted element's own production
    exit: bool = False  # epsilon leaving a counted state


@dataclass
class _NfaState:
    prods: list[_NfaProd] = field(default_factory=list)
    count_min: int = 0
    count_max: int = 0


class _Builder:
    def __init__(self, schema: SchemaSet, ctype: ComplexType) -> None:
        self.schema = schema
        self.ctype = ctype
        self.nfa: list[_NfaState] = []
        self.fields: list[Field] = []
        self.field_by_qname: dict[QName, int] = {}
        self._order = 0

    def new(self) -> int:
        self.nfa.append(_NfaState())
        return len(self.nfa) - 1

    def add(self, state: int, prod: _NfaProd) -> None:
        self.nfa[state].prods.append(prod)

    # fields are collected in schema order before the NFA is built right to left
    def collect_fields(self, particle: Particle, optional: bool, repeated: int) -> None:
        optional = optional or particle.min == 0
        repeated = _mul(repeated, particle.max)
        if particle.kind == "element":
            assert particle.element is not None
            decl = particle.element
            members = self.schema.substitution_members(decl.qname) if particle.is_ref else [decl]
            existing = self.field_by_qname.get(decl.qname)
            if existing is not None:
                f = self.fields[existing]
                f.optional, f.is_list = True, True
                f.max_occurs = _add(f.max_occurs, repeated)
                return
            f = Field(decl.qname.local, "elem", optional, repeated != 1, repeated, members)
            if isinstance(decl.type, SimpleType) and len(members) == 1:
                f.simple = decl.type
            index = len(self.fields)
            self.fields.append(f)
            for member in members:
                if member.qname in self.field_by_qname:
                    raise SchemaError(
                        f"{_name(self.ctype)}: element {member.qname.local} is used twice"
                    )
                self.field_by_qname[member.qname] = index
            return
        if particle.kind == "any":
            return
        inner_optional = optional or particle.kind == "choice"
        for child in particle.children:
            self.collect_fields(child, inner_optional, repeated)

    def particle(self, particle: Particle, follow: int) -> int:
        """NFA for `particle` that continues at `follow`; returns its start state."""
        if particle.kind in ("element", "any") and particle.max != 1:
            counted = self.new()
            self.nfa[counted].count_min = particle.min
            self.nfa[counted].count_max = particle.max
            for prod in self.term(particle, counted):
                prod.loop = True
                self.add(counted, prod)
            self.add(counted, _NfaProd(None, None, follow, -1, None, (), exit=True))
            return counted
        if particle.max == 1:
            start = self.term_start(particle, follow)
            if particle.min == 0:
                hub = self.new()
                self.add(hub, _NfaProd(None, None, start, -1, None, ()))
                self.add(hub, _NfaProd(None, None, follow, -1, None, ()))
                return hub
            return start
        # a repeated group: minOccurs copies, then a loop or (max - min) optional copies
        orders = self._order
        if particle.max == UNBOUNDED:
            loop = self.new()
            self._order = orders
            body = self.term_start(particle, loop)
            self.add(loop, _NfaProd(None, None, body, -1, None, ()))
            self.add(loop, _NfaProd(None, None, follow, -1, None, ()))
            cont = loop
        else:
            cont = follow
            for _ in range(particle.max - particle.min):
                self._order = orders
                hub = self.new()
                self.add(hub, _NfaProd(None, None, self.term_start(particle, cont), -1, None, ()))
                self.add(hub, _NfaProd(None, None, follow, -1, None, ()))
                cont = hub
        for _ in range(particle.min):
            self._order = orders
            cont = self.term_start(particle, cont)
        return cont

    def term_start(self, particle: Particle, follow: int) -> int:
        if particle.kind in ("element", "any"):
            state = self.new()
            for prod in self.term(particle, follow):
                self.add(state, prod)
            return state
        if particle.kind == "sequence":
            # orders are assigned left to right although states are built right to left
            spans = []
            for child in particle.children:
                spans.append(self._order)
                self._order += _count_terms(child)
            end = self._order
            cont = follow
            for child, span in zip(reversed(particle.children), reversed(spans), strict=True):
                self._order = span
                cont = self.particle(child, cont)
            self._order = end
            return cont
        if particle.kind == "choice":
            hub = self.new()
            for child in particle.children:
                self.add(hub, _NfaProd(None, None, self.particle(child, follow), -1, None, ()))
            return hub
        raise SchemaError(f"particle {particle.kind}")

    def term(self, particle: Particle, target: int) -> list[_NfaProd]:
        order = self._order
        self._order += 1
        if particle.kind == "any":
            return [_NfaProd(SE_ANY, None, target, -1, None, (order,))]
        assert particle.element is not None
        decl = particle.element
        members = self.schema.substitution_members(decl.qname) if particle.is_ref else [decl]
        members.sort(key=lambda d: d.qname.sort_key())
        prods = []
        for rank, member in enumerate(members):
            kind = SE_SIMPLE if isinstance(member.type, SimpleType) else SE
            field_index = self.field_by_qname[member.qname]
            prods.append(
                _NfaProd(kind, member.qname, target, field_index, member.type, (order, rank))
            )
        return prods


def _count_terms(particle: Particle) -> int:
    if particle.kind in ("element", "any"):
        return 1
    return sum(_count_terms(c) for c in particle.children)


def _mul(a: int, b: int) -> int:
    return UNBOUNDED if UNBOUNDED in (a, b) else a * b


def _add(a: int, b: int) -> int:
    return UNBOUNDED if UNBOUNDED in (a, b) else a + b


def _name(ctype: ComplexType) -> str:
    return ctype.name.local if ctype.name else f"<{ctype.context}>"


def build_type_grammar(schema: SchemaSet, ctype: ComplexType) -> TypeGrammar:
    b = _Builder(schema, ctype)
    attributes = sorted(ctype.attributes, key=lambda a: a.qname.sort_key())
    for attribute in attributes:
        b.fields.append(
            Field(attribute.qname.local, "attr", not attribute.required, simple=attribute.type)
        )
    if ctype.particle is not None:
        b.collect_fields(ctype.particle, False, 1)
    if ctype.content == "simple":
        b.fields.append(Field("value", "value", simple=ctype.simple))

    end = b.new()
    b.add(end, _NfaProd(EE, None, -1, -1, None, ()))
    if ctype.content == "elements":
        assert ctype.particle is not None
        content = b.particle(ctype.particle, end)
    elif ctype.content == "simple":
        content = b.new()
        b.add(content, _NfaProd(CH, None, end, len(b.fields) - 1, ctype.simple, ()))
    else:
        content = end
    content_states = range(0, len(b.nfa))
    if ctype.mixed:
        for state in content_states:
            b.add(state, _NfaProd(CH_UNTYPED, None, state, -1, None, ()))
    cont = content
    for index in reversed(range(len(attributes))):
        attribute = attributes[index]
        state = b.new()
        b.add(state, _NfaProd(AT, attribute.qname, cont, index, attribute.type, ()))
        if not attribute.required:
            b.add(state, _NfaProd(None, None, cont, -1, None, ()))
        cont = state
    states = _determinize(b.nfa, cont, _name(ctype))
    return TypeGrammar(ctype, b.fields, states)


def _closure(nfa: list[_NfaState], seeds: frozenset[int], owner: int | None) -> dict[int, bool]:
    """NFA states reachable by epsilon; value True when only through the owner's guarded exit."""
    reached: dict[int, bool] = {}
    stack = [(s, False) for s in sorted(seeds)]
    while stack:
        state, guarded = stack.pop()
        if state in reached and (guarded or not reached[state]):
            continue
        reached[state] = guarded
        for prod in nfa[state].prods:
            if prod.kind is not None:
                continue
            next_guarded = guarded
            if prod.exit:
                low = nfa[state].count_min
                if state == owner:
                    next_guarded = guarded or low > 1
                elif low > 0:
                    continue  # entered with count 0: cannot leave before minOccurs
            stack.append((prod.target, next_guarded))
    return reached


def _determinize(nfa: list[_NfaState], start: int, where: str) -> list[State]:
    keys: dict[tuple[frozenset[int], int | None], int] = {}
    states: list[State] = []
    work: list[tuple[frozenset[int], int | None]] = []

    def state_of(seeds: frozenset[int], owner: int | None) -> int:
        key = (seeds, owner)
        if key not in keys:
            keys[key] = len(states)
            states.append(State([]))
            work.append(key)
        return keys[key]

    state_of(frozenset([start]), None)
    while work:
        seeds, owner = work.pop(0)
        index = keys[(seeds, owner)]
        reached = _closure(nfa, seeds, owner)
        grouped: dict[tuple[int, QName | None], list[tuple[_NfaProd, int, bool]]] = {}
        for nfa_state in sorted(reached):
            for prod in nfa[nfa_state].prods:
                if prod.kind is None:
                    continue
                grouped.setdefault((prod.kind, prod.qname), []).append(
                    (prod, nfa_state, reached[nfa_state])
                )
        prods: list[Production] = []
        for (kind, qname), group in grouped.items():
            first = min(group, key=lambda g: g[0].order)[0]
            loops = {p.loop for p, _, _ in group}
            if len(loops) > 1:
                raise SchemaError(f"{where}: {qname} both repeats and follows itself")
            guards = set()
            for prod, src, guarded in group:
                if guarded:
                    guards.add(ONCE_MIN_REACHED)
                elif prod.loop and src == owner and nfa[src].count_max != UNBOUNDED:
                    guards.add(WHILE_BELOW_MAX)
                else:
                    guards.add(ALWAYS)
            guard = ALWAYS if ALWAYS in guards else min(guards)
            if ALWAYS not in guards and len(guards) > 1:
                raise SchemaError(f"{where}: {qname} has conflicting repetition guards")
            target = -1
            if kind != EE:
                targets = frozenset(p.target for p, _, _ in group)
                if first.loop:
                    (target_owner,) = targets
                    target = state_of(targets, target_owner)
                else:
                    target = state_of(targets, None)
            child_types = {id(p.child) for p, _, _ in group}
            if len(child_types) > 1:
                raise SchemaError(f"{where}: {qname} appears with two types in one state")
            prods.append(
                Production(kind, qname, target, first.field, first.child, guard, first.order)
            )
        prods.sort(key=_event_code_order)
        state = states[index]
        state.productions = prods
        if owner is not None:
            state.count_min = nfa[owner].count_min
            state.count_max = nfa[owner].count_max
    return states


def _event_code_order(prod: Production) -> tuple[object, ...]:
    category = _CATEGORY[prod.kind]
    if prod.kind == AT:
        assert prod.qname is not None
        return (category, prod.qname.sort_key())
    return (category, prod.order)


@dataclass
class GrammarSet:
    """Every type grammar of one schema set plus its document and fragment grammars."""

    name: str
    schema: SchemaSet
    types: list[TypeGrammar]
    global_elements: list[ElementDecl]  # EXI order (DocContent)
    fragment_elements: list[ElementDecl]  # EXI order (FragmentContent), one per qname
    # element fragment grammars of qnames declared with several types
    relaxed: dict[QName, TypeGrammar] = field(default_factory=dict)


def build_grammar_set(name: str, schema: SchemaSet) -> GrammarSet:
    seen: dict[int, TypeGrammar] = {}
    order: list[TypeGrammar] = []

    def visit(ctype: ComplexType) -> None:
        if id(ctype) in seen:
            return
        grammar = build_type_grammar(schema, ctype)
        seen[id(ctype)] = grammar
        order.append(grammar)
        for f in grammar.fields:
            for decl in f.elements:
                if isinstance(decl.type, ComplexType):
                    visit(decl.type)

    globals_sorted = sorted(schema.global_elements, key=lambda d: d.qname.sort_key())
    for decl in globals_sorted:
        if isinstance(decl.type, ComplexType):
            visit(decl.type)
    by_qname: dict[QName, list[ElementDecl]] = {}
    for decl in [*globals_sorted, *schema.local_elements]:
        same = by_qname.setdefault(decl.qname, [])
        if all(_type_key(d.type) != _type_key(decl.type) for d in same):
            same.append(decl)
    fragments = sorted((decls[0] for decls in by_qname.values()), key=lambda d: d.qname.sort_key())
    for decl in fragments:
        if isinstance(decl.type, ComplexType):
            visit(decl.type)
    relaxed: dict[QName, TypeGrammar] = {}
    attributes = _all_attributes(order)
    for qname, decls in by_qname.items():
        complex_decls = [d for d in decls if isinstance(d.type, ComplexType)]
        if len(decls) > 1 and complex_decls:
            assert isinstance(complex_decls[0].type, ComplexType)
            representative = seen[id(complex_decls[0].type)]
            relaxed[qname] = _element_fragment_grammar(representative, attributes, fragments)
            order.append(relaxed[qname])
    return GrammarSet(name, schema, order, globals_sorted, fragments, relaxed)


def _type_key(t: ComplexType | SimpleType) -> object:
    if isinstance(t, ComplexType):
        return id(t)
    return (t.kind, t.min_value, t.max_value, t.min_length, t.max_length, t.enum_values)


def _all_attributes(grammars: list[TypeGrammar]) -> list[tuple[QName, SimpleType]]:
    found: dict[QName, SimpleType] = {}
    for grammar in grammars:
        for attribute in grammar.type.attributes:
            found.setdefault(attribute.qname, attribute.type)
    return sorted(found.items(), key=lambda item: item[0].sort_key())


def _element_fragment_grammar(
    representative: TypeGrammar,
    attributes: list[tuple[QName, SimpleType]],
    fragments: list[ElementDecl],
) -> TypeGrammar:
    """EXI 8.5.3 grammar for a qname declared with several types, as EXIficient lays it out.

    Every attribute and element of the schema is allowed; text is untyped. EXIficient
    lists AT(xsi:type) and AT(xsi:nil) first in the initial state (the -2 eMAID fragment
    vector fixes this order). Only the representative type's attributes and text can be
    coded here; the rest are placeholders that keep the event codes right.
    """
    fields = representative.fields
    attr_field = {f.xsd_name: i for i, f in enumerate(fields) if f.kind == "attr"}
    value_field = next((i for i, f in enumerate(fields) if f.kind == "value"), -1)
    text = SimpleType(None, "string", builtin="string")

    def placeholder(qname: QName | None, target: int) -> Production:
        return Production(SE_ANY, qname, target, -1, None, ALWAYS, ())

    def content(target: int) -> list[Production]:
        prods = [placeholder(d.qname, 1) for d in fragments]
        prods.append(placeholder(None, 1))  # SE(*)
        prods.append(Production(EE, None, -1, -1, None, ALWAYS, ()))
        prods.append(Production(CH_UNTYPED, None, 1, value_field, text, ALWAYS, ()))
        return prods

    start = [placeholder(None, 0), placeholder(None, 0)]  # AT(xsi:type), AT(xsi:nil)
    for qname, simple in attributes:
        if qname.local in attr_field and not qname.ns:
            start.append(Production(AT, qname, 0, attr_field[qname.local], simple, ALWAYS, ()))
        else:
            start.append(placeholder(qname, 0))
    start.append(placeholder(None, 0))  # AT(*)
    start += content(1)
    return TypeGrammar(representative.type, fields, [State(start), State(content(1))])
