"""Distillation targets: written from trained checkpoints in the training split's order, and
refused by a run whose training faces differ."""
import pytest
import torch

import torch.nn.functional as F

from training.data import load_packed
from training.distill import load_teacher, write_teacher
from training.model import load_checkpoint
from training.train import train
from training.train_config import TrainConfig


def test_teacher_targets_train_a_student(utkface_root, tmp_path):
    common = dict(model="al_resnet_tiny", data_root=str(utkface_root), batch_size=16,
                  limit_train=48, limit_val=16, epochs=1, progress=False)
    g = train(TrainConfig.from_flat(stage="global", out=str(tmp_path / "g"), lr=0.05, **common))
    info = write_teacher([g["checkpoint"]], str(tmp_path / "teacher.pt"), tta="single", limit=48)
    assert info["faces"] == 48 and info["teacher_mae"] > 0
    t = torch.load(tmp_path / "teacher.pt", weights_only=True)
    assert t["probs"].shape == (48, 101)
    assert torch.allclose(t["probs"].float().sum(1), torch.ones(48), atol=1e-2)

    with pytest.raises(ValueError, match="different training split"):
        load_teacher(str(tmp_path / "teacher.pt"), t["ages"].flip(0) + 1)


def test_one_hot_teacher_at_full_weight_reproduces_the_plain_run(utkface_root, tmp_path):
    """A teacher whose answer is each face's own label, mixed in at weight 1, leaves the target
    exactly what the plain run uses (one-hot, label_sigma 0): the two runs must be identical,
    step for step. A teacher read for the wrong faces (rows not following the batch), mixed at
    another weight or ignored would change it: the second half checks the teacher is used."""
    # One precision for every run: a measured choice can differ between two runs on timing noise.
    common = dict(model="al_resnet_tiny", data_root=str(utkface_root), batch_size=16,
                  limit_train=48, limit_val=16, epochs=1, progress=False, label_sigma=0.0, bf16=False)
    train_faces = load_packed("utkface", str(utkface_root), "train", 64, limit=48, seed=0, progress=False)
    one_hot = F.one_hot(train_faces.labels, 101).half()
    torch.save({"probs": one_hot, "ages": train_faces.ages}, tmp_path / "labels.pt")

    plain = train(TrainConfig.from_flat(stage="global", out=str(tmp_path / "plain"), lr=0.05, **common))
    taught = train(TrainConfig.from_flat(stage="global", out=str(tmp_path / "taught"), lr=0.05,
                               teacher=str(tmp_path / "labels.pt"), teacher_weight=1.0, **common))
    assert taught["history"][-1]["train_loss"] == plain["history"][-1]["train_loss"]
    a = load_checkpoint(plain["checkpoint"])[1]["state_dict"]
    b = load_checkpoint(taught["checkpoint"])[1]["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # The same teacher with its rows in another order is a different target: the run differs.
    torch.save({"probs": one_hot.roll(1, 0), "ages": train_faces.ages}, tmp_path / "rolled.pt")
    rolled = train(TrainConfig.from_flat(stage="global", out=str(tmp_path / "rolled"), lr=0.05,
                               teacher=str(tmp_path / "rolled.pt"), teacher_weight=1.0, **common))
    assert rolled["history"][-1]["train_loss"] != plain["history"][-1]["train_loss"]
