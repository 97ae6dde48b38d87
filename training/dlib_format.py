"""Reads a network that dlib serialized (`dlib::serialize(net, "x.dat")`) into a list of layers,
input first, with their parameters as numpy arrays. Only what dlib's face-recognition ResNet
uses is understood (con, affine, relu, max_pool, avg_pool, add_prev, fc, the tag and skip
wrappers, the RGB input and the metric loss); anything else is an error naming it.

The stream format (dlib/serialize.h, dlib/dnn/*.h):
- an integer is one control byte (low nibble: byte count, 0x80: negative) then that many bytes,
  little-endian; a float is two integers, mantissa and exponent (value = m * 2**e); a bool is
  the character '1' or '0'; a string is its length then its bytes;
- a tensor is version 2, then num_samples, k, nr, nc, then little-endian float32 data;
- layers nest outside in: the loss layer holds the top layer, which holds the one below, and so
  on down to the input. Each wrapper writes its version, then what it holds, then its own
  details, so the file is every wrapper's version number first (1 = tag, skip or loss; 2 = a
  computational layer; 3 = the one over the input), then the input layer, then each
  computational layer's details from the bottom up, each followed by its training state
  (three bools and three tensors; the first layer has one more tensor and an integer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Layer:
    kind: str                                   # 'con', 'affine', 'relu', 'max_pool', 'avg_pool', 'add_prev', 'fc'
    version: str                                # the version string dlib wrote, e.g. 'con_4'
    params: dict = field(default_factory=dict)  # arrays ('filters', 'gamma', ...) and ints ('stride', ...)


@dataclass
class DlibNet:
    input: dict                                 # {'kind', 'mean' (R, G, B), 'size'}
    layers: list[Layer]                         # computational layers, input side first
    loss: str


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int(self) -> int:
        control = self.byte()
        size, negative = control & 0x0F, control & 0x80
        if size > 8 or control & 0x70:
            raise ValueError(f"byte {self.pos - 1}: {control:#04x} is not an integer's control byte")
        value = int.from_bytes(self.data[self.pos:self.pos + size], "little")
        self.pos += size
        return -value if negative else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(mantissa * 2.0 ** exponent)

    def bool(self) -> bool:
        ch = chr(self.byte())
        if ch not in "01":
            raise ValueError(f"byte {self.pos - 1}: {ch!r} is not a bool")
        return ch == "1"

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos:self.pos + n].decode("ascii")
        self.pos += n
        return s

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"byte {self.pos}: tensor version {version}, expected 2")
        shape = tuple(self.int() for _ in range(4))            # num_samples, k, nr, nc
        count = int(np.prod(shape))
        out = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).reshape(shape)
        self.pos += 4 * count
        return out.astype(np.float32)

    def alias(self) -> tuple[int, ...]:
        """An alias_tensor: a view's shape into a layer's flat params (no data of its own)."""
        self.int()                                              # version
        return tuple(self.int() for _ in range(4))


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    flat, out, at = params.reshape(-1), [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(flat[at:at + n].reshape(shape))
        at += n
    if at != flat.size:
        raise ValueError(f"params hold {flat.size} values, the views {at}")
    return out


def _layer(r: Reader) -> Layer:
    version = r.string()
    kind = version.rstrip("_0123456789")
    if kind == "con":
        params = r.tensor()
        num_filters, nr, nc = r.int(), r.int(), r.int()
        stride_y, stride_x, pad_y, pad_x = r.int(), r.int(), r.int(), r.int()
        filters_shape, bias_shape = r.alias(), r.alias()
        for _ in range(4):                                      # learning-rate and decay multipliers
            r.float()
        use_bias = r.bool() if version in ("con_5", "con_6") else True
        if version == "con_6":
            r.bool()                                            # use_relu (fused relu; off in the nets read here)
        filters, bias = _split(params, filters_shape, bias_shape)
        return Layer(kind, version, {"filters": filters.reshape(num_filters, -1, nr, nc),
                                     "bias": bias.reshape(-1) if use_bias else np.zeros(num_filters, np.float32),
                                     "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)})
    if kind == "affine":
        params = r.tensor()
        gamma_shape, beta_shape = r.alias(), r.alias()
        r.int()                                                 # mode (conv / fc): the shape says the same
        if version == "affine_2":
            r.bool()                                            # disabled
        gamma, beta = _split(params, gamma_shape, beta_shape)
        return Layer(kind, version, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})
    if kind == "relu":
        if version == "relu_2":
            r.bool()                                            # disabled
        return Layer(kind, version)
    if kind in ("max_pool", "avg_pool"):
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
        return Layer(kind, version, {"size": (nr, nc), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)})
    if kind == "add_prev":
        return Layer(kind, version)
    if kind == "fc":
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor()
        weights_shape, bias_shape = r.alias(), r.alias()
        bias_mode = r.int()                                     # 0: with bias, 1: fc_no_bias
        for _ in range(4):
            r.float()
        if version == "fc_3":
            r.bool()                                            # use_bias
        if bias_mode == 1:
            (weights,) = _split(params, weights_shape)
            bias = np.zeros(num_outputs, np.float32)
        else:
            weights, bias = _split(params, weights_shape, bias_shape)
        # dlib stores the weights inputs x outputs
        return Layer(kind, version, {"weight": weights.reshape(num_inputs, num_outputs).T.copy(),
                                     "bias": bias.reshape(-1)})
    raise ValueError(f"dlib layer {version!r} is not understood by this reader")


def read_dlib_net(data: bytes) -> DlibNet:
    r = Reader(data)
    if r.int() != 1:
        raise ValueError("not a dlib network: the loss layer's version should come first")
    loss = r.string()
    if not loss.startswith("loss_"):
        raise ValueError(f"not a dlib network: first layer {loss!r}")
    if loss == "loss_metric_2":
        r.float(), r.float()                                    # margin, distance threshold
    elif loss != "loss_metric_":
        raise ValueError(f"loss layer {loss!r} is not understood by this reader")
    # The wrappers' versions (1, 2 or 3), outermost first; the first other integer is the length
    # of the input layer's name.
    computational = 0
    while True:
        at = r.pos
        v = r.int()
        if v not in (1, 2, 3):
            r.pos = at
            break
        computational += v != 1
    kind = r.string()
    if kind != "input_rgb_image_sized":
        raise ValueError(f"input layer {kind!r} is not understood by this reader")
    mean = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    layers = []
    for i in range(computational):
        layers.append(_layer(r))
        r.bool(), r.bool(), r.bool()                            # setup called, gradient stale, output disabled
        r.tensor(), r.tensor(), r.tensor()                      # x_grad, cached output, params_grad / grad_final
        if i == 0:
            r.int()                                             # the input layer's sample expansion factor
    if r.pos != len(data):
        raise ValueError(f"{len(data) - r.pos} bytes left after the last layer")
    return DlibNet({"kind": kind, "mean": mean, "size": size}, layers, loss)


def write_int(value: int) -> bytes:
    """dlib's integer encoding (for tests that write a small network)."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def write_float(value: float) -> bytes:
    mantissa, exponent = float(value).as_integer_ratio()
    shift = exponent.bit_length() - 1                           # the ratio's denominator is a power of two
    return write_int(mantissa) + write_int(-shift)


def write_string(s: str) -> bytes:
    return write_int(len(s)) + s.encode("ascii")


def write_tensor(a: np.ndarray) -> bytes:
    shape = (list(a.shape) + [1, 1, 1, 1])[:4] if a.ndim < 4 else list(a.shape)
    return write_int(2) + b"".join(write_int(d) for d in shape) + np.asarray(a, "<f4").tobytes()


def write_alias(shape: tuple[int, ...]) -> bytes:
    return write_int(1) + b"".join(write_int(d) for d in shape)


__all__ = ["DlibNet", "Layer", "read_dlib_net", "write_int", "write_float", "write_string", "write_tensor",
           "write_alias"]
