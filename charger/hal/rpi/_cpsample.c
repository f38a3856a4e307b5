/*
 * _cpsample: bursts of SPI ADC conversions for the control pilot, taken in one ioctl.
 *
 * At 5 % duty the CP is high for 50 us of every 1 ms. A Python loop of spidev.xfer2()
 * calls spends tens of microseconds between conversions and jitters by more, so it
 * can miss the plateau; one SPI_IOC_MESSAGE with N back-to-back transfers (chip select
 * toggled between them, as the MCP320x needs) has the kernel clock them out with only
 * the controller's gap between conversions (about 30 us per 3-byte frame at 1 MHz).
 *
 * burst(fd, frame, count, speed_hz) -> bytes: `frame` (1-4 bytes) sent `count` times
 * (1-511, the ioctl's size limit), the bytes received returned in order. The GIL is
 * released during the transfer. decode12(rx, frame_len) -> tuple of the 12-bit results
 * (the low 12 bits of each frame's last two bytes: MCP3202/3204/3208).
 *
 * C11, no allocation on the hot path (stack buffers of fixed size), every index checked.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <linux/spi/spidev.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#define MAX_FRAMES 511 /* SPI_IOC_MESSAGE's size field: 14 bits / 32-byte transfers */
#define MAX_FRAME_LEN 4

static PyObject *burst(PyObject *self, PyObject *args) {
    (void)self;
    int fd = -1;
    Py_buffer frame;
    int count = 0;
    unsigned int speed_hz = 0;
    if (!PyArg_ParseTuple(args, "iy*iI", &fd, &frame, &count, &speed_hz)) {
        return NULL;
    }
    if (frame.len < 1 || frame.len > MAX_FRAME_LEN) {
        PyBuffer_Release(&frame);
        PyErr_Format(PyExc_ValueError, "frame must be 1 to %d bytes", MAX_FRAME_LEN);
        return NULL;
    }
    if (count < 1 || count > MAX_FRAMES) {
        PyBuffer_Release(&frame);
        PyErr_Format(PyExc_ValueError, "count must be 1 to %d", MAX_FRAMES);
        return NULL;
    }
    const size_t len = (size_t)frame.len;
    uint8_t tx[MAX_FRAMES * MAX_FRAME_LEN];
    uint8_t rx[MAX_FRAMES * MAX_FRAME_LEN];
    struct spi_ioc_transfer xfers[MAX_FRAMES];
    memset(xfers, 0, sizeof(xfers[0]) * (size_t)count);
    memset(rx, 0, len * (size_t)count);
    for (int i = 0; i < count; i++) {
        memcpy(tx + (size_t)i * len, frame.buf, len);
        xfers[i].tx_buf = (uint64_t)(uintptr_t)(tx + (size_t)i * len);
        xfers[i].rx_buf = (uint64_t)(uintptr_t)(rx + (size_t)i * len);
        xfers[i].len = (uint32_t)len;
        xfers[i].speed_hz = speed_hz;
        xfers[i].bits_per_word = 8;
        xfers[i].cs_change = (i + 1 < count) ? 1 : 0; /* a conversion per chip select */
    }
    PyBuffer_Release(&frame);
    int ret;
    Py_BEGIN_ALLOW_THREADS
    ret = ioctl(fd, SPI_IOC_MESSAGE(count), xfers);
    Py_END_ALLOW_THREADS
    if (ret < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBytes_FromStringAndSize((const char *)rx, (Py_ssize_t)(len * (size_t)count));
}

static PyObject *decode12(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer rx;
    Py_ssize_t frame_len = 0;
    if (!PyArg_ParseTuple(args, "y*n", &rx, &frame_len)) {
        return NULL;
    }
    if (frame_len < 2 || frame_len > MAX_FRAME_LEN || rx.len % frame_len != 0) {
        PyBuffer_Release(&rx);
        PyErr_SetString(PyExc_ValueError, "rx must be whole frames of 2 to 4 bytes");
        return NULL;
    }
    const Py_ssize_t n = rx.len / frame_len;
    PyObject *out = PyTuple_New(n);
    if (out == NULL) {
        PyBuffer_Release(&rx);
        return NULL;
    }
    const uint8_t *bytes = (const uint8_t *)rx.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *f = bytes + i * frame_len;
        long value = ((long)(f[frame_len - 2] & 0x0F) << 8) | (long)f[frame_len - 1];
        PyObject *v = PyLong_FromLong(value);
        if (v == NULL) {
            Py_DECREF(out);
            PyBuffer_Release(&rx);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    PyBuffer_Release(&rx);
    return out;
}

static PyMethodDef methods[] = {
    {"burst", burst, METH_VARARGS,
     "burst(fd, frame, count, speed_hz) -> bytes: `count` SPI transfers of `frame` in one "
     "ioctl, chip select toggled between them"},
    {"decode12", decode12, METH_VARARGS,
     "decode12(rx, frame_len) -> tuple[int, ...]: the 12-bit result of each frame"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cpsample", "Control-pilot ADC bursts over spidev.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cpsample(void) { return PyModule_Create(&module); }
