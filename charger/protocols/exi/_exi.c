/*
 * Schema-informed EXI codec for ISO 15118 / DIN 70121, driven by generated tables.
 *
 * The grammar tables (_generated/_exi_tables.h) come from tools/exigen; this file
 * interprets them. Messages are the generated slotted dataclasses: decoding fills their
 * slots directly, encoding reads them, so no intermediate tree is built. Every bit read and
 * written is bounds-checked; the only allocations are the Python objects a decoded
 * message consists of and the bytes object an encoding returns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint32_t first_state;
    uint32_t first_field;
    uint32_t n_fields;
    uint32_t name;
} exi_type;

typedef struct {
    uint32_t py_name;
    uint32_t xsd_name;
    uint8_t flags;
} exi_field;

typedef struct {
    uint32_t first;
    uint16_t count;
    uint16_t cmin;
    uint16_t cmax;
    uint8_t width;
} exi_state;

typedef struct {
    uint8_t kind;
    uint8_t guard;
    uint16_t field;
    uint32_t target;
    uint32_t arg;
} exi_prod;

typedef struct {
    uint8_t kind;
    uint8_t width;
    int64_t lo;
    uint64_t hi;
    uint32_t min_len;
    uint32_t max_len;
    int32_t enum_index;
} exi_value;

typedef struct {
    uint32_t qname;
    uint8_t simple;
    uint32_t arg;
} exi_root;

typedef struct {
    const char *name;
    const char *ns;
    const char *const *strings;
    const exi_type *types;
    uint32_t n_types;
    const exi_field *fields;
    uint32_t n_fields;
    const exi_state *states;
    const exi_prod *prods;
    const exi_value *values;
    const exi_root *globals;
    uint32_t n_globals;
    const exi_root *fragments;
    uint32_t n_fragments;
    uint32_t n_enums;
} exi_grammar;

enum { AT, SE, SE_SIMPLE, SE_ANY, EE, CH, CH_UNTYPED };
enum { V_BOOL, V_NBIT, V_UINT, V_INT, V_STRING, V_ENUM, V_HEX, V_BASE64 };
enum { F_LIST = 1, F_OPTIONAL = 2 };
enum { ALWAYS, WHILE_BELOW_MAX, ONCE_MIN_REACHED };
#define NO_FIELD 0xFFFFu
#define NO_STATE 0xFFFFFFFFu

#include "_generated/_exi_tables.h"

#define HEADER 0x80u       /* distinguishing bits 10, no options, EXI version 1 */
#define MAX_DEPTH 64       /* the schemas nest 12 deep at most */
#define MAX_STREAM EXI_MAX_STREAM /* bytes, decoding and encoding alike (see tools/exigen) */
#define STRING_STACK 512   /* code points decoded without a heap buffer */

/* ---- classes bound to the tables at import ------------------------------------- */

typedef struct {
    PyTypeObject **classes;    /* per type */
    Py_ssize_t *offsets;       /* per field: slot offset in the instance */
    PyObject **enum_members;   /* per enum: tuple of members */
    int bound;
} exi_binding;

static exi_binding bindings[EXI_GRAMMAR_COUNT];
static PyObject *exi_error_class; /* charger.protocols.exi.errors.ExiError */

/* ---- codec state ---------------------------------------------------------------- */

typedef struct {
    const exi_grammar *g;
    const exi_binding *b;
    /* writing */
    uint8_t *out;
    size_t out_bits;
    /* reading */
    const uint8_t *in;
    size_t in_bits;
    size_t pos;
    /* where we are, for error messages */
    const char *path[MAX_DEPTH + 2];
    int depth;
} codec;

static void raise_error(PyObject *message, long long bit)
{
    PyObject *exc = bit < 0 ? PyObject_CallFunction(exi_error_class, "O", message)
                            : PyObject_CallFunction(exi_error_class, "OL", message, bit);
    if (exc != NULL) {
        PyErr_SetObject(exi_error_class, exc);
        Py_DECREF(exc);
    }
}

/* Encoding error: prefixed with the field path. Always returns -1. */
static int enc_fail(const codec *c, const char *format, ...)
{
    char text[512];
    size_t used = 0;
    for (int i = 0; i <= c->depth && i < MAX_DEPTH + 2; i++) {
        int n = snprintf(text + used, sizeof text - used, i ? ".%s" : "%s", c->path[i]);
        if (n < 0 || (size_t)n >= sizeof text - used) {
            used = sizeof text - 1;
            break;
        }
        used += (size_t)n;
    }
    if (used + 2 < sizeof text) {
        text[used++] = ':';
        text[used++] = ' ';
        va_list args;
        va_start(args, format);
        vsnprintf(text + used, sizeof text - used, format, args);
        va_end(args);
    }
    PyObject *message = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
    if (message != NULL) {
        raise_error(message, -1);
        Py_DECREF(message);
    }
    return -1;
}

/* Decoding error at a bit offset. Always returns -1. */
static int dec_fail(size_t bit, const char *format, ...)
{
    char text[384];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    PyObject *message = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
    if (message != NULL) {
        raise_error(message, (long long)bit);
        Py_DECREF(message);
    }
    return -1;
}

static unsigned bits_for(unsigned count)
{
    unsigned width = 0;
    while (count > 1u && (1u << width) < count)
        width++;
    return width;
}

/* ---- bit stream ----------------------------------------------------------------- */

/* Past MAX_STREAM the writers only count, so that exi_encode can name the size it refuses. */
static int put_bits(codec *c, uint32_t value, unsigned width)
{
    if (c->out_bits + width > (size_t)MAX_STREAM * 8u) {
        c->out_bits += width;
        return 0;
    }
    while (width > 0) {
        size_t byte = c->out_bits >> 3;
        unsigned free_bits = 8u - (unsigned)(c->out_bits & 7u);
        unsigned take = width < free_bits ? width : free_bits;
        unsigned chunk = (unsigned)(value >> (width - take)) & ((1u << take) - 1u);
        if (free_bits == 8u)
            c->out[byte] = 0;
        c->out[byte] |= (uint8_t)(chunk << (free_bits - take));
        c->out_bits += take;
        width -= take;
    }
    return 0;
}

static int put_uint(codec *c, uint64_t value)
{
    do {
        uint32_t group = (uint32_t)(value & 0x7Fu);
        value >>= 7;
        if (put_bits(c, group | (value ? 0x80u : 0u), 8) < 0)
            return -1;
    } while (value);
    return 0;
}

static int get_bits(codec *c, unsigned width, uint32_t *value)
{
    if (width > c->in_bits - c->pos || c->pos > c->in_bits)
        return dec_fail(c->pos, "stream ends inside a %u-bit field", width);
    uint32_t result = 0;
    while (width > 0) {
        unsigned used = (unsigned)(c->pos & 7u);
        unsigned avail = 8u - used;
        unsigned take = width < avail ? width : avail;
        uint32_t byte = c->in[c->pos >> 3];
        result = (result << take) | ((byte >> (avail - take)) & ((1u << take) - 1u));
        c->pos += take;
        width -= take;
    }
    *value = result;
    return 0;
}

static int get_uint(codec *c, uint64_t *value)
{
    size_t start = c->pos;
    uint64_t result = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint32_t group;
        if (get_bits(c, 8, &group) < 0)
            return -1;
        uint64_t bits = group & 0x7Fu;
        if (shift == 63 && bits > 1u)
            return dec_fail(start, "unsigned integer larger than 64 bits");
        result |= bits << shift;
        if (!(group & 0x80u))
            break;
        if (shift >= 63)
            return dec_fail(start, "unsigned integer longer than 10 bytes");
    }
    *value = result;
    return 0;
}

/* ---- productions ---------------------------------------------------------------- */

/* The productions usable in `state` after `count` repetitions, in event-code order. */
static unsigned enabled_prods(const codec *c, uint32_t state, unsigned count, uint32_t *out)
{
    const exi_state *s = &c->g->states[state];
    unsigned n = 0;
    for (unsigned i = 0; i < s->count; i++) {
        const exi_prod *p = &c->g->prods[s->first + i];
        if (s->cmax && p->guard == WHILE_BELOW_MAX && s->cmax != EXI_COUNT_UNBOUNDED &&
            count >= s->cmax)
            continue;
        if (s->cmax && p->guard == ONCE_MIN_REACHED && count < s->cmin)
            continue;
        out[n++] = s->first + i;
    }
    return n;
}

static unsigned next_count(const codec *c, uint32_t state, uint32_t target, unsigned count)
{
    if (target == NO_STATE || c->g->states[target].cmax == 0)
        return 0;
    return target == state ? count + 1u : 1u;
}

static inline PyObject **slot(PyObject *obj, Py_ssize_t offset)
{
    return (PyObject **)((char *)obj + offset);
}

/* ---- encoding ------------------------------------------------------------------- */

static int check_length(const codec *c, Py_ssize_t length, const exi_value *v, const char *unit)
{
    if ((uint64_t)length < v->min_len || (v->max_len && (uint64_t)length > v->max_len)) {
        if (v->max_len)
            return enc_fail(c, "%zd %s, allowed %u..%u", length, unit, v->min_len, v->max_len);
        return enc_fail(c, "%zd %s, allowed at least %u", length, unit, v->min_len);
    }
    return 0;
}

static int enc_value(codec *c, uint32_t index, PyObject *value)
{
    const exi_value *v = &c->g->values[index];
    switch (v->kind) {
    case V_BOOL:
        if (!PyBool_Check(value))
            return enc_fail(c, "expected bool, got %s", Py_TYPE(value)->tp_name);
        return put_bits(c, value == Py_True, 1);
    case V_NBIT:
    case V_UINT:
    case V_INT: {
        if (!PyLong_Check(value) || PyBool_Check(value))
            return enc_fail(c, "expected int, got %s", Py_TYPE(value)->tp_name);
        int overflow = 0;
        long long signed_value = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (signed_value == -1 && PyErr_Occurred())
            return -1;
        if (v->kind == V_UINT) {
            if (overflow < 0 || (!overflow && signed_value < v->lo))
                return enc_fail(c, "value below %lld", (long long)v->lo);
            uint64_t u = overflow ? PyLong_AsUnsignedLongLong(value) : (uint64_t)signed_value;
            if (u == (uint64_t)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return enc_fail(c, "value above %llu", (unsigned long long)v->hi);
            }
            if (u > v->hi)
                return enc_fail(c, "%llu is above %llu", (unsigned long long)u,
                                (unsigned long long)v->hi);
            return put_uint(c, u);
        }
        if (overflow || signed_value < v->lo ||
            (v->hi <= (uint64_t)INT64_MAX && signed_value > (long long)v->hi)) {
            PyObject *text = PyObject_Str(value);
            const char *shown = text ? PyUnicode_AsUTF8(text) : NULL;
            if (shown == NULL)
                PyErr_Clear();
            enc_fail(c, "%s is outside %lld..%llu", shown ? shown : "value", (long long)v->lo,
                     (unsigned long long)v->hi);
            Py_XDECREF(text);
            return -1;
        }
        if (v->kind == V_NBIT)
            return put_bits(c, (uint32_t)(signed_value - v->lo), v->width);
        if (signed_value < 0) {
            if (put_bits(c, 1, 1) < 0)
                return -1;
            return put_uint(c, (uint64_t)(-(signed_value + 1)));
        }
        if (put_bits(c, 0, 1) < 0)
            return -1;
        return put_uint(c, (uint64_t)signed_value);
    }
    case V_ENUM: {
        PyObject *members = c->b->enum_members[v->enum_index];
        Py_ssize_t n = PyTuple_GET_SIZE(members);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PyTuple_GET_ITEM(members, i) == value)
                return put_bits(c, (uint32_t)i, v->width);
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            int equal = PyObject_RichCompareBool(PyTuple_GET_ITEM(members, i), value, Py_EQ);
            if (equal < 0)
                return -1;
            if (equal)
                return put_bits(c, (uint32_t)i, v->width);
        }
        PyObject *repr = PyObject_Repr(value);
        const char *shown = repr ? PyUnicode_AsUTF8(repr) : NULL;
        if (shown == NULL)
            PyErr_Clear();
        enc_fail(c, "%s is not one of the %zd allowed values", shown ? shown : "value", n);
        Py_XDECREF(repr);
        return -1;
    }
    case V_STRING: {
        if (!PyUnicode_Check(value))
            return enc_fail(c, "expected str, got %s", Py_TYPE(value)->tp_name);
        Py_ssize_t length = PyUnicode_GET_LENGTH(value);
        if (check_length(c, length, v, "characters") < 0)
            return -1;
        if (put_uint(c, (uint64_t)length + 2u) < 0)
            return -1;
        int kind = PyUnicode_KIND(value);
        const void *data = PyUnicode_DATA(value);
        for (Py_ssize_t i = 0; i < length; i++) {
            if (put_uint(c, PyUnicode_READ(kind, data, i)) < 0)
                return -1;
        }
        return 0;
    }
    case V_HEX:
    case V_BASE64: {
        const char *data;
        Py_ssize_t length;
        if (PyBytes_Check(value)) {
            data = PyBytes_AS_STRING(value);
            length = PyBytes_GET_SIZE(value);
        } else if (PyByteArray_Check(value)) {
            data = PyByteArray_AS_STRING(value);
            length = PyByteArray_GET_SIZE(value);
        } else {
            return enc_fail(c, "expected bytes, got %s", Py_TYPE(value)->tp_name);
        }
        if (check_length(c, length, v, "bytes") < 0 || put_uint(c, (uint64_t)length) < 0)
            return -1;
        if ((c->out_bits & 7u) == 0) {
            if (c->out_bits / 8u + (size_t)length > MAX_STREAM) {
                c->out_bits += (size_t)length * 8u;
                return 0;
            }
            memcpy(c->out + c->out_bits / 8u, data, (size_t)length);
            c->out_bits += (size_t)length * 8u;
            return 0;
        }
        if (c->out_bits / 8u + (size_t)length + 1u > MAX_STREAM) {
            c->out_bits += (size_t)length * 8u;
            return 0;
        }
        /* unaligned: each byte fills the open byte's tail and the next byte's head */
        unsigned shift = (unsigned)(c->out_bits & 7u);
        uint8_t *to = c->out + c->out_bits / 8u;
        for (Py_ssize_t i = 0; i < length; i++) {
            uint8_t byte = (uint8_t)data[i];
            to[i] |= (uint8_t)(byte >> shift);
            to[i + 1] = (uint8_t)(byte << (8u - shift));
        }
        c->out_bits += (size_t)length * 8u;
        return 0;
    }
    }
    return enc_fail(c, "unknown value kind %d", v->kind);
}

static int enc_simple_element(codec *c, uint32_t value_index, PyObject *value)
{
    /* simple type grammar: CH then EE, each the only first-level event (1 bit) */
    if (put_bits(c, 0, 1) < 0 || enc_value(c, value_index, value) < 0)
        return -1;
    return put_bits(c, 0, 1);
}

static int enc_complex(codec *c, uint32_t type_index, PyObject *obj);

/* Emits the event for `item` of field `field` (NO_FIELD: end of element). */
static int enc_event(codec *c, uint32_t *state, unsigned *count, uint32_t field, PyObject *item)
{
    uint32_t prods[EXI_MAX_PRODUCTIONS];
    unsigned n = enabled_prods(c, *state, *count, prods);
    for (unsigned code = 0; code < n; code++) {
        const exi_prod *p = &c->g->prods[prods[code]];
        if (field == NO_FIELD) {
            if (p->kind != EE)
                continue;
        } else if (p->field != field || (p->kind == SE && Py_TYPE(item) != c->b->classes[p->arg])) {
            continue;
        }
        if (put_bits(c, code, bits_for(n + 1u)) < 0)
            return -1;
        int rc = 0;
        switch (p->kind) {
        case AT:
        case CH:
        case CH_UNTYPED: /* only with a field: the text of a relaxed fragment grammar */
            rc = enc_value(c, p->arg, item);
            break;
        case SE_SIMPLE:
            rc = enc_simple_element(c, p->arg, item);
            break;
        case SE:
            rc = enc_complex(c, p->arg, item);
            break;
        default:
            break;
        }
        if (rc < 0)
            return -1;
        *count = next_count(c, *state, p->target, *count);
        *state = p->target;
        return 0;
    }
    /* nothing matched: say what would have been allowed */
    char expected[256];
    size_t used = 0;
    expected[0] = '\0';
    for (unsigned i = 0; i < n && used + 2 < sizeof expected; i++) {
        const exi_prod *p = &c->g->prods[prods[i]];
        const char *name = p->kind == EE             ? "end of element"
                           : p->field == NO_FIELD    ? "undeclared content"
                                                     : c->g->strings[c->g->fields[p->field].py_name];
        int w = snprintf(expected + used, sizeof expected - used, "%s%s", i ? ", " : "", name);
        if (w < 0)
            break;
        used += (size_t)w < sizeof expected - used ? (size_t)w : sizeof expected - used - 1;
    }
    if (field == NO_FIELD)
        return enc_fail(c, "a required field is missing; expected %s", expected);
    return enc_fail(c, "%s cannot appear here; expected %s", Py_TYPE(item)->tp_name, expected);
}

static int enc_complex(codec *c, uint32_t type_index, PyObject *obj)
{
    const exi_type *t = &c->g->types[type_index];
    if (Py_TYPE(obj) != c->b->classes[type_index])
        return enc_fail(c, "expected %s, got %s", c->b->classes[type_index]->tp_name,
                        Py_TYPE(obj)->tp_name);
    if (c->depth >= MAX_DEPTH)
        return enc_fail(c, "nested deeper than %d", MAX_DEPTH);
    c->depth++;
    uint32_t state = t->first_state;
    unsigned count = 0;
    for (uint32_t f = t->first_field; f < t->first_field + t->n_fields; f++) {
        const exi_field *field = &c->g->fields[f];
        c->path[c->depth] = c->g->strings[field->py_name];
        PyObject *value = *slot(obj, c->b->offsets[f]);
        if (value == NULL) {
            enc_fail(c, "not set");
            return -1;
        }
        if (field->flags & F_LIST) {
            if (!PyList_Check(value))
                return enc_fail(c, "expected a list, got %s", Py_TYPE(value)->tp_name);
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
                if (enc_event(c, &state, &count, f, PyList_GET_ITEM(value, i)) < 0)
                    return -1;
            }
        } else if (value != Py_None) {
            if (enc_event(c, &state, &count, f, value) < 0)
                return -1;
        }
    }
    c->depth--;
    return enc_event(c, &state, &count, NO_FIELD, NULL);
}

/* ---- decoding ------------------------------------------------------------------- */

static void dec_length_fail(size_t start, const char *what, uint64_t length, const exi_value *v,
                            const char *unit)
{
    if (v->max_len)
        dec_fail(start, "%s of %llu %s, allowed %u..%u", what, (unsigned long long)length, unit,
                 v->min_len, v->max_len);
    else
        dec_fail(start, "%s of %llu %s, allowed at least %u", what, (unsigned long long)length,
                 unit, v->min_len);
}

static PyObject *dec_string(codec *c, const exi_value *v, size_t start)
{
    uint64_t length;
    if (get_uint(c, &length) < 0)
        return NULL;
    if (length < 2) {
        dec_fail(start, "string table reference; ISO 15118 streams carry every string literally");
        return NULL;
    }
    length -= 2;
    if (length < v->min_len || (v->max_len && length > v->max_len)) {
        dec_length_fail(start, "string", length, v, "characters");
        return NULL;
    }
    if (length > (c->in_bits - c->pos) / 8u) {
        dec_fail(start, "string of %llu characters runs past the end", (unsigned long long)length);
        return NULL;
    }
    Py_UCS4 stack[STRING_STACK];
    Py_UCS4 *chars = stack;
    if (length > STRING_STACK) {
        chars = PyMem_Malloc((size_t)length * sizeof(Py_UCS4));
        if (chars == NULL)
            return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    for (uint64_t i = 0; i < length; i++) {
        uint64_t code_point;
        size_t at = c->pos;
        if (get_uint(c, &code_point) < 0)
            goto done;
        if (code_point > 0x10FFFFu || (code_point >= 0xD800u && code_point <= 0xDFFFu)) {
            dec_fail(at, "invalid character U+%llX", (unsigned long long)code_point);
            goto done;
        }
        chars[i] = (Py_UCS4)code_point;
    }
    result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, chars, (Py_ssize_t)length);
done:
    if (chars != stack)
        PyMem_Free(chars);
    return result;
}

static PyObject *dec_binary(codec *c, const exi_value *v, size_t start)
{
    uint64_t length;
    if (get_uint(c, &length) < 0)
        return NULL;
    if (length < v->min_len || (v->max_len && length > v->max_len)) {
        dec_length_fail(start, "binary", length, v, "bytes");
        return NULL;
    }
    if (length > (c->in_bits - c->pos) / 8u) {
        dec_fail(start, "binary of %llu bytes runs past the end", (unsigned long long)length);
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
    if (result == NULL)
        return NULL;
    uint8_t *data = (uint8_t *)PyBytes_AS_STRING(result);
    if ((c->pos & 7u) == 0) {
        memcpy(data, c->in + c->pos / 8u, (size_t)length);
        c->pos += (size_t)length * 8u;
        return result;
    }
    /* unaligned: every output byte straddles two input bytes (all inside the stream,
     * checked above: the last one only when the run does not end on its boundary) */
    unsigned shift = (unsigned)(c->pos & 7u);
    const uint8_t *from = c->in + c->pos / 8u;
    for (uint64_t i = 0; i < length; i++)
        data[i] = (uint8_t)((from[i] << shift) | (from[i + 1] >> (8u - shift)));
    c->pos += (size_t)length * 8u;
    return result;
}

static PyObject *dec_value(codec *c, uint32_t index)
{
    const exi_value *v = &c->g->values[index];
    size_t start = c->pos;
    uint32_t raw;
    uint64_t u;
    switch (v->kind) {
    case V_BOOL:
        if (get_bits(c, 1, &raw) < 0)
            return NULL;
        return PyBool_FromLong(raw);
    case V_NBIT:
        if (get_bits(c, v->width, &raw) < 0)
            return NULL;
        if ((uint64_t)raw > v->hi - (uint64_t)v->lo) {
            dec_fail(start, "integer %lld above %llu", (long long)(v->lo + raw),
                     (unsigned long long)v->hi);
            return NULL;
        }
        return PyLong_FromLongLong(v->lo + (long long)raw);
    case V_UINT:
        if (get_uint(c, &u) < 0)
            return NULL;
        if (u < (uint64_t)v->lo || u > v->hi) {
            dec_fail(start, "integer %llu outside %lld..%llu", (unsigned long long)u,
                     (long long)v->lo, (unsigned long long)v->hi);
            return NULL;
        }
        return PyLong_FromUnsignedLongLong(u);
    case V_INT: {
        if (get_bits(c, 1, &raw) < 0 || get_uint(c, &u) < 0)
            return NULL;
        if (u > (uint64_t)INT64_MAX) {
            dec_fail(start, "integer magnitude beyond 64 bits");
            return NULL;
        }
        long long value = raw ? -(long long)u - 1 : (long long)u;
        if (value < v->lo || (v->hi <= (uint64_t)INT64_MAX && value > (long long)v->hi)) {
            dec_fail(start, "integer %lld outside %lld..%llu", value, (long long)v->lo,
                     (unsigned long long)v->hi);
            return NULL;
        }
        return PyLong_FromLongLong(value);
    }
    case V_ENUM: {
        if (get_bits(c, v->width, &raw) < 0)
            return NULL;
        PyObject *members = c->b->enum_members[v->enum_index];
        if ((Py_ssize_t)raw >= PyTuple_GET_SIZE(members)) {
            dec_fail(start, "enumeration index %u of %zd", raw, PyTuple_GET_SIZE(members));
            return NULL;
        }
        return Py_NewRef(PyTuple_GET_ITEM(members, raw));
    }
    case V_STRING:
        return dec_string(c, v, start);
    case V_HEX:
    case V_BASE64:
        return dec_binary(c, v, start);
    }
    dec_fail(start, "unknown value kind %d", v->kind);
    return NULL;
}

static PyObject *dec_simple_element(codec *c, uint32_t value_index)
{
    uint32_t code;
    if (get_bits(c, 1, &code) < 0)
        return NULL;
    if (code) {
        dec_fail(c->pos - 1, "undeclared event in a simple element (second-level code)");
        return NULL;
    }
    PyObject *value = dec_value(c, value_index);
    if (value == NULL)
        return NULL;
    if (get_bits(c, 1, &code) < 0 || code) {
        if (code && !PyErr_Occurred())
            dec_fail(c->pos - 1, "undeclared event after a simple value (second-level code)");
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

static PyObject *dec_complex(codec *c, uint32_t type_index)
{
    const exi_type *t = &c->g->types[type_index];
    PyTypeObject *cls = c->b->classes[type_index];
    if (c->depth >= MAX_DEPTH) {
        dec_fail(c->pos, "nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    PyObject *obj = cls->tp_alloc(cls, 0);
    if (obj == NULL)
        return NULL;
    for (uint32_t f = t->first_field; f < t->first_field + t->n_fields; f++) {
        PyObject *initial = c->g->fields[f].flags & F_LIST ? PyList_New(0) : Py_NewRef(Py_None);
        if (initial == NULL)
            goto fail;
        *slot(obj, c->b->offsets[f]) = initial;
    }
    c->depth++;
    uint32_t state = t->first_state;
    unsigned count = 0;
    for (;;) {
        uint32_t prods[EXI_MAX_PRODUCTIONS];
        unsigned n = enabled_prods(c, state, count, prods);
        size_t at = c->pos;
        uint32_t code;
        if (get_bits(c, bits_for(n + 1u), &code) < 0)
            goto fail;
        if (code >= n) {
            dec_fail(at, "event code %u in %s: undeclared or second-level events are not part "
                         "of ISO 15118", code, c->g->strings[t->name]);
            goto fail;
        }
        const exi_prod *p = &c->g->prods[prods[code]];
        PyObject *value;
        switch (p->kind) {
        case EE:
            c->depth--;
            return obj;
        case SE:
            value = dec_complex(c, p->arg);
            break;
        case SE_SIMPLE:
            value = dec_simple_element(c, p->arg);
            break;
        case CH_UNTYPED:
            if (p->field == NO_FIELD)
                goto unsupported;
            value = dec_value(c, p->arg);
            break;
        case AT:
        case CH:
            value = dec_value(c, p->arg);
            break;
        unsupported:
        default:
            dec_fail(at, "wildcard or untyped content in %s is not supported",
                     c->g->strings[t->name]);
            goto fail;
        }
        if (value == NULL)
            goto fail;
        PyObject **target = slot(obj, c->b->offsets[p->field]);
        if (c->g->fields[p->field].flags & F_LIST) {
            int rc = PyList_Append(*target, value);
            Py_DECREF(value);
            if (rc < 0)
                goto fail;
        } else {
            Py_SETREF(*target, value);
        }
        count = next_count(c, state, p->target, count);
        state = p->target;
    }
fail:
    Py_DECREF(obj);
    return NULL;
}

/* ---- module functions ----------------------------------------------------------- */

static const exi_grammar *grammar_at(PyObject *index_obj, const exi_binding **binding)
{
    long index = PyLong_AsLong(index_obj);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    if (index < 0 || index >= EXI_GRAMMAR_COUNT) {
        PyErr_Format(PyExc_IndexError, "no grammar %ld", index);
        return NULL;
    }
    if (!bindings[index].bound) {
        PyErr_Format(PyExc_RuntimeError, "grammar %s has no classes bound", exi_grammars[index].name);
        return NULL;
    }
    *binding = &bindings[index];
    return &exi_grammars[index];
}

/* DocContent (SE of each global element, SE(*)) or FragmentContent (SE of every element,
 * SE(*), ED): the root elements and the width of their event codes. */
typedef struct {
    const exi_root *items;
    uint32_t count;
    unsigned width;
} exi_roots;

static exi_roots roots_of(const exi_grammar *g, int fragment)
{
    exi_roots r;
    r.items = fragment ? g->fragments : g->globals;
    r.count = fragment ? g->n_fragments : g->n_globals;
    r.width = bits_for(r.count + (fragment ? 2u : 1u));
    return r;
}

/* encode(grammar_index, message, element_or_None, fragment) -> bytes */
static PyObject *exi_encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "encode(grammar, message, element, fragment)");
        return NULL;
    }
    codec c;
    c.g = grammar_at(args[0], &c.b);
    if (c.g == NULL)
        return NULL;
    PyObject *message = args[1], *element = args[2];
    int fragment = PyObject_IsTrue(args[3]);
    if (fragment < 0)
        return NULL;
    exi_roots roots = roots_of(c.g, fragment);
    uint32_t index = roots.count;
    for (uint32_t i = 0; i < roots.count; i++) {
        if (element != Py_None) {
            if (PyUnicode_Check(element) &&
                PyUnicode_CompareWithASCIIString(element, c.g->strings[roots.items[i].qname]) == 0) {
                index = i;
                break;
            }
        } else if (!roots.items[i].simple && c.b->classes[roots.items[i].arg] == Py_TYPE(message)) {
            index = i;
            break;
        }
    }
    c.depth = 0;
    c.path[0] = index < roots.count ? c.g->strings[roots.items[index].qname] : Py_TYPE(message)->tp_name;
    if (index == roots.count) {
        enc_fail(&c, "not a root element of %s", c.g->name);
        return NULL;
    }
    uint8_t buffer[MAX_STREAM];
    c.out = buffer;
    c.out_bits = 0;
    if (put_bits(&c, HEADER, 8) < 0 || put_bits(&c, index, roots.width) < 0)
        return NULL;
    const exi_root *root = &roots.items[index];
    int rc = root->simple ? enc_simple_element(&c, root->arg, message)
                          : enc_complex(&c, root->arg, message);
    if (rc < 0 || (fragment && put_bits(&c, roots.count + 1u, roots.width) < 0))
        return NULL;
    size_t bytes = (c.out_bits + 7u) / 8u;
    if (bytes > MAX_STREAM) {
        c.depth = 0;
        enc_fail(&c, "encodes to %zu bytes, more than the EXI stream limit of %d bytes", bytes,
                 MAX_STREAM);
        return NULL;
    }
    if (c.out_bits & 7u)
        put_bits(&c, 0, 8u - (unsigned)(c.out_bits & 7u));
    return PyBytes_FromStringAndSize((const char *)buffer, (Py_ssize_t)bytes);
}

/* decode(grammar_index, data, fragment) -> (element_name, message) */
static PyObject *exi_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode(grammar, data, fragment)");
        return NULL;
    }
    codec c;
    c.g = grammar_at(args[0], &c.b);
    if (c.g == NULL)
        return NULL;
    int fragment = PyObject_IsTrue(args[2]);
    if (fragment < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    if (view.len > MAX_STREAM) {
        dec_fail(0, "stream of %zd bytes, more than the EXI stream limit of %d bytes", view.len,
                 MAX_STREAM);
        goto done;
    }
    c.in = view.buf;
    c.in_bits = (size_t)view.len * 8u;
    c.pos = 0;
    c.depth = 0;
    exi_roots roots = roots_of(c.g, fragment);
    uint32_t header, index;
    if (get_bits(&c, 8, &header) < 0)
        goto done;
    if (header != HEADER) {
        dec_fail(0, "EXI header 0x%02x, expected 0x80 (no options, version 1)", header);
        goto done;
    }
    if (get_bits(&c, roots.width, &index) < 0)
        goto done;
    if (index >= roots.count) {
        dec_fail(8, "document starts with event %u, not a declared element", index);
        goto done;
    }
    const exi_root *root = &roots.items[index];
    PyObject *value = root->simple ? dec_simple_element(&c, root->arg) : dec_complex(&c, root->arg);
    if (value == NULL)
        goto done;
    if (fragment) {
        size_t at = c.pos;
        uint32_t end;
        if (get_bits(&c, roots.width, &end) < 0 || end != roots.count + 1u) {
            if (!PyErr_Occurred())
                dec_fail(at, "fragment holds more than one element");
            Py_DECREF(value);
            goto done;
        }
    }
    result = Py_BuildValue("(sN)", c.g->strings[root->qname], value);
done:
    PyBuffer_Release(&view);
    return result;
}

/* time(decode, iterations, *arguments) -> ns per call of decode()/encode(), measured in C
 * so that benchmarks can separate the codec from the interpreter's call overhead. */
static PyObject *exi_time(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "time(decode, iterations, *arguments)");
        return NULL;
    }
    int decode = PyObject_IsTrue(args[0]);
    long iterations = PyLong_AsLong(args[1]);
    if (decode < 0 || (iterations == -1 && PyErr_Occurred()))
        return NULL;
    if (iterations < 1) {
        PyErr_SetString(PyExc_ValueError, "iterations must be positive");
        return NULL;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < iterations; i++) {
        PyObject *result = decode ? exi_decode(module, args + 2, nargs - 2)
                                  : exi_encode(module, args + 2, nargs - 2);
        if (result == NULL)
            return NULL;
        Py_DECREF(result);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
    return PyFloat_FromDouble(ns / (double)iterations);
}

/* bind(grammar_index, classes, enums): attach the generated classes to the tables. */
static PyObject *exi_bind(PyObject *module, PyObject *args)
{
    (void)module;
    int index;
    PyObject *classes, *enums;
    if (!PyArg_ParseTuple(args, "iO!O!", &index, &PyTuple_Type, &classes, &PyTuple_Type, &enums))
        return NULL;
    if (index < 0 || index >= EXI_GRAMMAR_COUNT) {
        PyErr_Format(PyExc_IndexError, "no grammar %d", index);
        return NULL;
    }
    const exi_grammar *g = &exi_grammars[index];
    exi_binding *b = &bindings[index];
    if (b->bound)
        Py_RETURN_NONE;
    if ((uint32_t)PyTuple_GET_SIZE(classes) != g->n_types ||
        (uint32_t)PyTuple_GET_SIZE(enums) != g->n_enums) {
        PyErr_Format(PyExc_ValueError, "%s: %u classes and %u enums expected", g->name,
                     g->n_types, g->n_enums);
        return NULL;
    }
    PyTypeObject **types = PyMem_Calloc(g->n_types, sizeof *types);
    Py_ssize_t *offsets = PyMem_Calloc(g->n_fields ? g->n_fields : 1, sizeof *offsets);
    PyObject **members = PyMem_Calloc(g->n_enums ? g->n_enums : 1, sizeof *members);
    if (types == NULL || offsets == NULL || members == NULL)
        goto nomem;
    for (uint32_t t = 0; t < g->n_types; t++) {
        PyObject *cls = PyTuple_GET_ITEM(classes, t);
        if (!PyType_Check(cls)) {
            PyErr_Format(PyExc_TypeError, "%s: class %u is not a type", g->name, t);
            goto fail;
        }
        types[t] = (PyTypeObject *)cls;
        const exi_type *type = &g->types[t];
        for (uint32_t f = type->first_field; f < type->first_field + type->n_fields; f++) {
            const char *name = g->strings[g->fields[f].py_name];
            PyObject *descr = PyObject_GetAttrString(cls, name);
            if (descr == NULL)
                goto fail;
            int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                     ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
            if (ok)
                offsets[f] = ((PyMemberDescrObject *)descr)->d_member->offset;
            Py_DECREF(descr);
            if (!ok) {
                PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", ((PyTypeObject *)cls)->tp_name,
                             name);
                goto fail;
            }
        }
    }
    for (uint32_t e = 0; e < g->n_enums; e++) {
        PyObject *tuple = PySequence_Tuple(PyTuple_GET_ITEM(enums, e));
        if (tuple == NULL)
            goto fail;
        members[e] = tuple;
    }
    for (uint32_t t = 0; t < g->n_types; t++)
        Py_INCREF(types[t]);
    b->classes = types;
    b->offsets = offsets;
    b->enum_members = members;
    b->bound = 1;
    Py_RETURN_NONE;
nomem:
    PyErr_NoMemory();
fail:
    if (members != NULL) {
        for (uint32_t e = 0; e < g->n_enums; e++)
            Py_XDECREF(members[e]);
    }
    PyMem_Free(types);
    PyMem_Free(offsets);
    PyMem_Free(members);
    return NULL;
}

static PyObject *exi_set_error(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "an exception class is required");
        return NULL;
    }
    Py_XSETREF(exi_error_class, Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyObject *exi_grammar_names(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *names = PyTuple_New(EXI_GRAMMAR_COUNT);
    if (names == NULL)
        return NULL;
    for (int i = 0; i < EXI_GRAMMAR_COUNT; i++) {
        PyObject *name = PyUnicode_FromString(exi_grammars[i].name);
        if (name == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    return names;
}

static PyMethodDef exi_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))exi_encode, METH_FASTCALL,
     "encode(grammar, message, element, fragment) -> bytes"},
    {"decode", (PyCFunction)(void (*)(void))exi_decode, METH_FASTCALL,
     "decode(grammar, data, fragment) -> (element, message)"},
    {"bind", exi_bind, METH_VARARGS, "bind(grammar, classes, enums)"},
    {"time", (PyCFunction)(void (*)(void))exi_time, METH_FASTCALL,
     "time(decode, iterations, *arguments) -> ns per call"},
    {"set_error", exi_set_error, METH_O, "set_error(exception_class)"},
    {"grammar_names", exi_grammar_names, METH_NOARGS, "names of the grammars, by index"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef exi_module = {
    PyModuleDef_HEAD_INIT, "_exi", "EXI codec engine (see charger.protocols.exi).", -1,
    exi_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__exi(void)
{
    exi_error_class = Py_NewRef(PyExc_ValueError);
    PyObject *module = PyModule_Create(&exi_module);
    if (module != NULL && PyModule_AddIntConstant(module, "MAX_STREAM", MAX_STREAM) < 0)
        Py_CLEAR(module);
    return module;
}
