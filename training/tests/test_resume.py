"""A run stopped after an epoch and resumed (--resume) ends exactly where the uninterrupted run
does: GPU time comes in 15-minute slices, and a resumed run must not be a different run."""
import pytest
import torch

from training.data import Packed
from training.train import train
from training.train_config import TrainConfig


def _faces(n: int, seed: int) -> Packed:
    g = torch.Generator().manual_seed(seed)
    ages = torch.randint(0, 101, (n,), generator=g)
    # Brightness follows age, so there is something to learn and the loss moves.
    images = (ages.view(n, 1, 1, 1) * 2 + torch.randint(0, 50, (n, 64, 64, 3), generator=g)).clamp(0, 255)
    return Packed(images=images.to(torch.uint8), ages=ages.float(), labels=ages,
                  age_std=torch.full((n,), float("nan")), gender=[None] * n, race=[None] * n)


def _config(out, stage, **kw) -> TrainConfig:
    kw = {"epochs": 3, **kw}
    return TrainConfig.from_flat(model="al_resnet_tiny", stage=stage, out=str(out), batch_size=16,
                       lr=0.05, progress=False, device="cpu", bf16=False, channels_last=False, **kw)


@pytest.mark.parametrize("stage", ["global", "local"])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, stage):
    data, val = _faces(64, 0), _faces(32, 1)
    whole = train(_config(tmp_path / "whole", stage), data, val)

    steps_per_epoch = 64 // 16
    train(_config(tmp_path / "cut", stage, max_steps=steps_per_epoch), data, val)   # stopped after epoch 1
    resumed = train(_config(tmp_path / "cut", stage, resume=True), data, val)

    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["best_epoch"] == whole["best_epoch"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, rtol=0, atol=1e-6, msg=name)
    assert a["resume"]["step"] == b["resume"]["step"] == 3 * steps_per_epoch


def test_resume_refuses_another_runs_checkpoint(tmp_path):
    data, val = _faces(32, 0), _faces(16, 1)
    train(_config(tmp_path, "global", max_steps=2), data, val)
    with pytest.raises(ValueError, match="label_sigma"):
        train(_config(tmp_path, "global", resume=True, label_sigma=2.0), data, val)


# A checkpoint's train_config as the code wrote it before TrainConfig was grouped (issue 50): the
# 47 settings flat, in their order then. Copied from a real last.pt of that code (commit 7fae739),
# with _config's values.
OLD_FLAT_CONFIG = {
    "model": "al_resnet_tiny", "stage": "global", "dataset": "utkface", "data_root": "../shared/data/utkface",
    "dataset_options": {}, "model_options": {}, "input_size": None, "face_margin": 0.0, "init": None,
    "out": "runs/default", "epochs": 3, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0001,
    "lr_steps": None, "lr_gamma": 0.1, "schedule": "step", "optimizer": "sgd", "head_lr_mult": 1.0,
    "warmup_epochs": 1.0, "label_sigma": 0.0, "local_loss": "local", "age_weight": 0.1, "global_age_weight": 0.0,
    "teacher": None, "teacher_weight": 0.5,
    "augment": {"scale": [0.8, 1.05], "aspect": [0.8, 1.25], "translate": 0.08, "flip": True, "brightness": 0.2,
                "contrast": 0.2, "rotate": 0.0, "low_res": 0.0, "low_res_px": [40, 120]},
    "capture": {"share": 0.0, "kinds": ["small", "blur", "dark", "jpeg", "gray", "eyes", "lower"], "severity": 1.0,
                "severity_warmup_epochs": 0.0, "teacher_weight": None},
    "val_capture": 0, "limit_train": None, "limit_val": None, "max_steps": 4, "resume": False, "framed_share": 0.0,
    "photo_crops": None, "val_photo_crops": None, "select_on": "chips",
    "detector": "models/detectors/blazeface-short-range/1",
    "framing_from": "training/framings/utkface-blazeface-short-range-1.json", "seed": 0, "device": "cpu",
    "bf16": False, "budget_minutes": None, "progress_file": None, "channels_last": False, "progress": False,
}


@pytest.mark.parametrize("written", ["flat", "before capture training"])
def test_a_checkpoint_with_the_old_flat_config_resumes(tmp_path, written):
    """Checkpoints written before the settings were grouped resume: the same settings, by their
    flat names; one from before a setting existed counts it at its default."""
    data, val = _faces(64, 0), _faces(32, 1)
    whole = train(_config(tmp_path / "whole", "global"), data, val)
    train(_config(tmp_path / "cut", "global", max_steps=64 // 16), data, val)   # stopped after epoch 1
    old = dict(OLD_FLAT_CONFIG, out=str(tmp_path / "cut"))
    if written == "before capture training":
        for name in ("capture", "val_capture", "select_on", "photo_crops", "val_photo_crops"):
            del old[name]
    ckpt = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    ckpt["train_config"] = old
    torch.save(ckpt, tmp_path / "cut" / "last.pt")

    resumed = train(_config(tmp_path / "cut", "global", resume=True), data, val)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["best_epoch"] == whole["best_epoch"]
    _assert_same_weights(_weights(tmp_path / "whole" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))
    # What it writes now holds the same flat settings (a newer code's checkpoint reads the same),
    # and the settings added since at their defaults.
    now = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["train_config"]
    assert now == dict(OLD_FLAT_CONFIG, out=str(tmp_path / "cut"), max_steps=None, resume=True, balance=None)


def test_the_old_flat_config_with_another_setting_is_refused(tmp_path):
    data, val = _faces(32, 0), _faces(16, 1)
    train(_config(tmp_path, "global", max_steps=2), data, val)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    ckpt["train_config"] = dict(OLD_FLAT_CONFIG, out=str(tmp_path), augment=dict(OLD_FLAT_CONFIG["augment"], low_res=0.2))
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="augment"):
        train(_config(tmp_path, "global", resume=True), data, val)


def _weights(path):
    return torch.load(path, weights_only=False)["state_dict"]


def _assert_same_weights(a, b):
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("stage", ["global", "local"])
def test_a_run_stopped_by_its_budget_mid_epoch_resumes_to_the_uninterrupted_one(tmp_path, stage, monkeypatch):
    import training.train as tr

    data, val = _faces(64, 0), _faces(32, 1)
    whole = train(_config(tmp_path / "whole", stage), data, val)

    # A clock that moves 1 s per call: the 0.25 min budget (less the 5 s kept for the save) runs
    # out part-way through the first epoch, at a step that does not depend on the machine.
    clock = iter(range(10**6))
    monkeypatch.setattr(tr.time, "time", lambda: float(next(clock)))
    cut = train(_config(tmp_path / "cut", stage, budget_minutes=0.25), data, val)
    monkeypatch.undo()
    assert cut["stopped"] == "budget"
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["resume"]
    assert state["partial"] is not None and 0 < state["step"] < 3 * (64 // 16)
    assert "stopped (budget)" in (tmp_path / "cut" / "progress.log").read_text()

    resumed = train(_config(tmp_path / "cut", stage, resume=True), data, val)
    assert resumed["stopped"] is None
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["best_epoch"] == whole["best_epoch"]
    _assert_same_weights(_weights(tmp_path / "whole" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))


def test_sigterm_checkpoints_and_the_same_command_resumes(tmp_path):
    """A real SIGTERM to a real process: it stops after the step it is in, checkpointed, exits 0,
    and the same command finishes the run exactly as an uninterrupted one would."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "run.py"
    script.write_text(f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
import training.stage as stage
import training.train as tr
from training.tests.test_resume import _config, _faces
out = sys.argv[1]
slow = len(sys.argv) > 2
if slow:  # slow steps, so the signal lands mid-run
    real = stage.stage_loss
    def stage_loss(*a, **k):
        time.sleep(0.2)
        return real(*a, **k)
    stage.stage_loss = stage_loss
r = tr.train(_config(out, "global", resume=True, epochs=4), _faces(64, 0), _faces(32, 1))
print("STOPPED", r["stopped"], flush=True)
""")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, str(script), str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cut"), "slow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "cut" / "progress.log"
    deadline = time.time() + 120
    while not (tmp_path / "cut" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.1)   # the first epoch's checkpoint: the run is well under way
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "STOPPED SIGTERM" in out, out + err
    assert "stopped (SIGTERM)" in log.read_text()

    done = subprocess.run([sys.executable, str(script), str(tmp_path / "cut")], check=True, env=env,
                          capture_output=True, text=True)
    assert "STOPPED None" in done.stdout
    _assert_same_weights(_weights(tmp_path / "whole" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))


def test_a_balanced_run_draws_by_its_weights_and_resumes_to_the_uninterrupted_one(tmp_path):
    """balance="gender": each epoch draws its faces by data.balance_weights (with replacement),
    from the run's seeded order, so a resumed run still ends where the whole one does."""
    data, val = _faces(64, 0), _faces(32, 1)
    data.gender = ["female" if i % 4 == 0 else "male" for i in range(64)]   # women a quarter of the faces
    whole = train(_config(tmp_path / "whole", "global", balance="gender"), data, val)
    train(_config(tmp_path / "cut", "global", balance="gender", max_steps=64 // 16), data, val)
    resumed = train(_config(tmp_path / "cut", "global", balance="gender", resume=True), data, val)
    assert resumed["best_epoch"] == whole["best_epoch"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["state_dict"]
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=0, atol=1e-6, msg=name)
    # Another draw than the unbalanced run's.
    plain = train(_config(tmp_path / "plain", "global"), data, val)
    assert plain["history"][0]["train_loss"] != whole["history"][0]["train_loss"]
