"""A run stopped after an epoch and resumed (--resume) ends exactly where the uninterrupted run
does: GPU time comes in 15-minute slices, and a resumed run must not be a different run."""
import pytest
import torch

from training.data import Packed
from training.train import TrainConfig, train


def _faces(n: int, seed: int) -> Packed:
    g = torch.Generator().manual_seed(seed)
    ages = torch.randint(0, 101, (n,), generator=g)
    # Brightness follows age, so there is something to learn and the loss moves.
    images = (ages.view(n, 1, 1, 1) * 2 + torch.randint(0, 50, (n, 64, 64, 3), generator=g)).clamp(0, 255)
    return Packed(images=images.to(torch.uint8), ages=ages.float(), labels=ages,
                  age_std=torch.full((n,), float("nan")), gender=[None] * n, race=[None] * n)


def _config(out, stage, **kw) -> TrainConfig:
    return TrainConfig(model="al_resnet_tiny", stage=stage, out=str(out), epochs=3, batch_size=16,
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
