"""The whole chain on ~200 real UTKFace faces: both stages, release (calibrate, export, parity,
int8), and the model contract that the server relies on."""
import hashlib
import json
import math
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch

from training.data import load_packed
from training.evaluate import predict_onnx
from training.model import create_model
from training.release import release
from training.train import train
from training.train_config import TrainConfig

# Cross-entropy of the uniform distribution over the 101 ages: what a model that learned
# nothing scores.
UNIFORM_LOSS = math.log(101)


def test_train_both_stages_export_quantize(utkface_root, tmp_path):
    t0 = time.time()
    common = dict(model="al_resnet_tiny", data_root=str(utkface_root), batch_size=32,
                  limit_train=192, limit_val=64, epochs=2, progress=False)
    g = train(TrainConfig.from_flat(stage="global", out=str(tmp_path / "g"), lr=0.1, **common))
    losses = [h["train_loss"] for h in g["history"]]
    # Two epochs on 192 faces teach the ages' spread (the prior), not yet faces (val MAE is
    # still the uniform answer's): the loss must fall clearly below what a model that learned
    # nothing scores, ln 101 = 4.615 (measured here: 4.66 -> 4.45; a run whose steps do not
    # move the weights stays at ~4.66).
    assert losses[-1] < UNIFORM_LOSS - GLOBAL_MARGIN, losses
    assert losses[-1] < losses[0], losses
    # The default model's local branch: its own copy of the backbone reads the attention region,
    # a 2x2 grid over it, trained on P_local and the fused age's error.
    l = train(TrainConfig.from_flat(stage="local", out=str(tmp_path / "l"), lr=0.01, init=g["checkpoint"],
                          model_options={"local_grid": 2, "local_source": "region"},
                          local_loss="local+age", age_weight=0.5, **common))
    assert len(l["history"]) == 2

    out = tmp_path / "models" / "al-test" / "1"
    report = release(l["checkpoint"], str(out), name="al-test", version="1", calib=64,
                     flip=True, limit_eval=64, keep_fp32=True)

    # Parity: the fp32 graph answers what PyTorch answers (fused age within 0.05 years).
    assert report["parity_fp32"]["max_abs_age"] < 0.05
    assert report["parity_fp32"]["max_abs_box"] < 1e-3
    # int8 is smaller and close to fp32 on the same faces.
    assert report["sizes_bytes"]["int8"] < report["sizes_bytes"]["fp32"]
    val = report["val"]
    assert abs(val["onnx_int8"]["fused"]["mae"] - val["onnx_fp32"]["fused"]["mae"]) < 1.0
    check_int8_per_face(out / "model.fp32.onnx", out / "model.int8.onnx",
                        load_packed("utkface", str(utkface_root), "val", 64, limit=64, progress=False))

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


# int8 vs fp32 on each face. An aggregate MAE within 1 year hides a quantizer that moves some
# faces by years in opposite directions; these bound every face. Measured on this 2-epoch
# al_resnet_tiny (64 px, 64 val faces) with the quantizer of 2026-12-01: max |age| 0.040 years,
# max W1 0.040 years, max TV 0.0011. The bounds are ~6x that: loose enough for calibration
# noise, tight enough that a per-channel/per-tensor mix-up or a skipped calibration (years)
# fails. The lead may retune them after changing the quantizer.
INT8_MAX_AGE_DIFF = 0.25     # years, fused age
INT8_MAX_W1 = 0.25           # years: earth mover's distance between the two distributions
INT8_MAX_TV = 0.01           # total variation distance (half the L1): probability mass moved
GLOBAL_MARGIN = 0.1          # nats below ln 101 after two epochs


def check_int8_per_face(fp32_path, int8_path, faces):
    a, b = predict_onnx(fp32_path, faces), predict_onnx(int8_path, faces)
    age = np.abs(a["fused"]["age"] - b["fused"]["age"])
    p, q = a["fused"]["probs"].astype(np.float64), b["fused"]["probs"].astype(np.float64)
    w1 = np.abs(np.cumsum(p, 1) - np.cumsum(q, 1)).sum(1)      # years (one class = one year)
    tv = 0.5 * np.abs(p - q).sum(1)
    print(f"\nint8 vs fp32 on {len(faces)} val faces: max |age| {age.max():.3f}, "
          f"max W1 {w1.max():.3f}, max TV {tv.max():.4f}, mean |age| {age.mean():.3f}")
    assert age.max() < INT8_MAX_AGE_DIFF
    assert w1.max() < INT8_MAX_W1
    assert tv.max() < INT8_MAX_TV
    assert age.max() > 0  # the int8 graph really is quantized


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


# Run by torchrun in every process of the DDP test: train() itself, plus a record of what this
# rank trained on (a hash of every face handed to augmentation) and the parameters it ended with.
DDP_RUNNER = """
import hashlib, json, os, sys
import torch
import training.train as T

cfg = T.TrainConfig.from_flat(**json.loads(sys.argv[1]))
made, seen = [], []
create, augment = T.create_model, T.augment
T.create_model = lambda *a, **k: made.append(create(*a, **k)) or made[-1]
def recording_augment(images, *a, **k):
    seen.extend(hashlib.sha1(im.contiguous().numpy().tobytes()).hexdigest() for im in images)
    return augment(images, *a, **k)
T.augment = recording_augment
T.train(cfg)
params = {n: p.detach().clone() for n, p in made[0].named_parameters()}
torch.save({"params": params, "seen": seen}, os.path.join(cfg.out, f"rank{os.environ['RANK']}.pt"))
"""


def test_distributed_data_parallel_with_torchrun(utkface_root, tmp_path):
    """Two CPU processes (gloo) stand in for GPUs: the same code path torchrun takes on a
    multi-GPU host. Every rank must end with the same parameters (DDP all-reduces the
    gradients) and the ranks must split each epoch's faces between them, not repeat them."""
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runner = tmp_path / "ddp_runner.py"
    runner.write_text(DDP_RUNNER)
    out = tmp_path / "run"
    cfg = dict(model="al_resnet_tiny", stage="global", limit_train=64, limit_val=32, epochs=1,
               batch_size=16, progress=False, data_root=str(utkface_root), out=str(out))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(runner), json.dumps(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": repo}
    res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "best.pt").exists()
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # Rank 0 alone logs: the precision both ranks train in (rank 0's measurement), then the epoch.
    assert [r.get("event", "epoch") for r in log] == ["precision", "epoch"]
    assert log[1]["precision"] == log[0]["precision"]

    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["params"].keys() == r1["params"].keys()
    different = [n for n in r0["params"] if not torch.equal(r0["params"][n], r1["params"][n])]
    assert not different, f"ranks ended with different {different[:5]}"
    # ... and training moved them from rank 0's initial weights (which DDP broadcasts), so
    # "identical" is not merely "untouched".
    torch.manual_seed(0)
    init = dict(create_model("al_resnet_tiny").named_parameters())
    assert not torch.equal(init["global_head.weight"], r0["params"]["global_head.weight"])
    faces = load_packed("utkface", str(utkface_root), "train", 64, limit=64, progress=False)
    distinct = {hashlib.sha1(im.contiguous().numpy().tobytes()).hexdigest() for im in faces.images}
    assert len(distinct) == 64
    # 64 faces, 16 per rank per step, 2 ranks: 2 steps, each rank 32 faces, together all 64.
    s0, s1 = set(r0["seen"]), set(r1["seen"])
    assert len(r0["seen"]) == len(r1["seen"]) == 32
    assert not s0 & s1, f"{len(s0 & s1)} faces trained on by both ranks in one epoch"
    assert s0 | s1 == distinct
