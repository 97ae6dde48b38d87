"""The whole chain on ~200 real UTKFace faces: both stages, release (calibrate, export, parity,
int8), and the model contract that the server relies on."""
import hashlib
import json
import time

import numpy as np
import onnx
import onnxruntime as ort

from training.release import release
from training.train import TrainConfig, train


def test_train_both_stages_export_quantize(utkface_root, tmp_path):
    t0 = time.time()
    common = dict(model="al_resnet_tiny", data_root=str(utkface_root), batch_size=32,
                  limit_train=192, limit_val=64, epochs=2, progress=False)
    g = train(TrainConfig(stage="global", out=str(tmp_path / "g"), lr=0.05, **common))
    assert g["history"][-1]["train_loss"] < 5.0
    # The default model's local branch: its own copy of the backbone reads the attention region,
    # a 2x2 grid over it, trained on P_local and the fused age's error.
    l = train(TrainConfig(stage="local", out=str(tmp_path / "l"), lr=0.01, init=g["checkpoint"],
                          model_options={"local_grid": 2, "local_source": "region"},
                          local_loss="local+age", age_weight=0.5, **common))
    assert len(l["history"]) == 2

    out = tmp_path / "models" / "al-test" / "1"
    report = release(l["checkpoint"], str(out), name="al-test", version="1", calib=64,
                     flip=True, limit_eval=64)

    # Parity: the fp32 graph answers what PyTorch answers (fused age within 0.05 years).
    assert report["parity_fp32"]["max_abs_age"] < 0.05
    assert report["parity_fp32"]["max_abs_box"] < 1e-3
    # int8 is smaller and close to fp32 on the same faces.
    assert report["sizes_bytes"]["int8"] < report["sizes_bytes"]["fp32"]
    val = report["val"]
    assert abs(val["onnx_int8"]["fused"]["mae"] - val["onnx_fp32"]["fused"]["mae"]) < 1.0

    # The contract (docs/model-contract.md).
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("name", "version", "arch", "input", "face_margin", "ages", "fusion", "files",
                "metrics", "training_data", "model"):
        assert key in manifest
    assert manifest["views"] == ["face", "mirror"] and report["served_views"] == "flip"
    # The served (mirror-averaged) PyTorch answer is what the fp32 graph gives on val.
    assert abs(val["torch"]["fused"]["mae"] - val["onnx_fp32"]["fused"]["mae"]) < 0.05
    assert manifest["metrics"]["mae_int8"] > 0 and manifest["metrics"]["mae_fp32"] > 0
    for f in manifest["files"]:
        data = (out / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
    check_contract(out / manifest["model"], manifest["input"]["size"])
    print(f"\nend-to-end on {192} real faces: {time.time() - t0:.1f} s")


def check_contract(path, size):
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "image" and inp.type == "tensor(uint8)"
    assert inp.shape[1:] == [size, size, 3] and not isinstance(inp.shape[0], int)
    names = [o.name for o in sess.get_outputs()]
    assert names == ["age", "probs", "global_age", "local_age", "box"]
    for n in (1, 3):  # dynamic batch
        img = np.random.default_rng(n).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        age, probs, g, l, box = sess.run(None, {"image": img})
        assert age.shape == (n,) and probs.shape == (n, 101) and box.shape == (n, 4)
        assert all(a.dtype == np.float32 for a in (age, probs, g, l, box))
        assert np.allclose(probs.sum(1), 1, atol=1e-4)
        assert np.allclose(age, probs @ np.arange(101), atol=1e-3)
        assert ((box >= 0) & (box <= 1)).all() and (box[:, 2] > box[:, 0]).all()


def test_distributed_data_parallel_with_torchrun(utkface_root, tmp_path):
    """Two CPU processes (gloo) stand in for GPUs: the same code path torchrun takes on a
    multi-GPU host, gradients all-reduced by DDP."""
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training",
           "train", "--model", "al_resnet_tiny", "--stage", "global", "--limit-train", "64",
           "--limit-val", "32", "--epochs", "1", "--batch-size", "16", "--no-progress",
           "--data-root", str(utkface_root), "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count('"best_epoch"') == 1
    assert (tmp_path / "best.pt").exists()
