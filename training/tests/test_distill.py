"""Distillation targets: written from trained checkpoints in the training split's order, and
refused by a run whose training faces differ."""
import pytest
import torch

from training.distill import load_teacher, write_teacher
from training.train import TrainConfig, train


def test_teacher_targets_train_a_student(utkface_root, tmp_path):
    common = dict(model="al_resnet_tiny", data_root=str(utkface_root), batch_size=16,
                  limit_train=48, limit_val=16, epochs=1, progress=False)
    g = train(TrainConfig(stage="global", out=str(tmp_path / "g"), lr=0.05, **common))
    info = write_teacher([g["checkpoint"]], str(tmp_path / "teacher.pt"), tta="single", limit=48)
    assert info["faces"] == 48 and info["teacher_mae"] > 0
    t = torch.load(tmp_path / "teacher.pt", weights_only=True)
    assert t["probs"].shape == (48, 101)
    assert torch.allclose(t["probs"].float().sum(1), torch.ones(48), atol=1e-2)

    student = train(TrainConfig(stage="global", out=str(tmp_path / "s"), lr=0.05,
                                teacher=str(tmp_path / "teacher.pt"), **common))
    assert torch.isfinite(torch.tensor(student["history"][-1]["train_loss"]))

    with pytest.raises(ValueError, match="different training split"):
        load_teacher(str(tmp_path / "teacher.pt"), t["ages"].flip(0) + 1)
