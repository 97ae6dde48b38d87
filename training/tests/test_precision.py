"""A CPU run trains in the precision measured to be faster on this machine and model, and says
so: bf16 is 2x faster on Xeons with AMX and 1.3-1.4x slower where it is emulated (AVX512-BF16
without AMX), so no flag can be right on every host."""
import json

import pytest
import torch

import training.speed as speed
import training.train as tr
from training.data import Packed
from training.speed import choose_precision
from training.train import train
from training.train_config import TrainConfig


@pytest.mark.parametrize("rates, chosen", [
    ({"fp32": 103.8, "bf16": 72.0}, "fp32"),    # emulated bf16 (the Xeon without AMX)
    ({"fp32": 90.0, "bf16": 209.0}, "bf16"),    # AMX
    ({"fp32": 100.0, "bf16": 104.0}, "fp32"),   # within the margin: fp32, the safer arithmetic
    ({"fp32": 100.0}, "fp32"),                  # bf16 not available at all
])
def test_the_faster_precision_is_chosen(rates, chosen):
    assert choose_precision(rates) == chosen


def _faces(n):
    g = torch.Generator().manual_seed(0)
    ages = torch.randint(0, 101, (n,), generator=g)
    return Packed(images=torch.randint(0, 256, (n, 64, 64, 3), generator=g, dtype=torch.uint8),
                  ages=ages.float(), labels=ages, age_std=torch.full((n,), float("nan")),
                  gender=[None] * n, race=[None] * n)


@pytest.mark.parametrize("fast", ["fp32", "bf16"])
def test_a_run_measures_both_records_them_and_trains_in_the_faster(tmp_path, monkeypatch, fast):
    # Both rates faked, and bf16 said to be available: the same answer on every host.
    monkeypatch.setattr(speed, "bf16_supported", lambda device: True)
    monkeypatch.setattr(speed, "step_rate", lambda model, stage, batch, bf16, *a, **k: 200.0 if (bf16 == (fast == "bf16")) else 100.0)
    seen = []
    real = torch.autocast

    def autocast(device_type, dtype=None, enabled=True, **kw):
        seen.append(enabled)
        return real(device_type, dtype=dtype, enabled=enabled, **kw)

    monkeypatch.setattr(tr.torch, "autocast", autocast)
    cfg = TrainConfig.from_flat(model="al_resnet_tiny", stage="global", out=str(tmp_path), epochs=1, batch_size=16,
                      progress=False, device="cpu", channels_last=False)
    result = train(cfg, _faces(32), _faces(16))

    assert result["precision"]["precision"] == fast
    assert seen == [fast == "bf16"]
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert events[0] == {"event": "precision", "stage": "global", "precision": fast,
                         "fp32_img_s": 100.0 if fast == "bf16" else 200.0,
                         "bf16_img_s": 200.0 if fast == "bf16" else 100.0, "forced": False}
    assert events[1]["precision"] == fast
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ckpt["precision"]["precision"] == fast and ckpt["resume"]["precision"]["precision"] == fast


def test_a_forced_precision_is_not_measured(tmp_path, monkeypatch):
    def never(*a, **k):
        raise AssertionError("measured although forced")

    monkeypatch.setattr(speed, "step_rate", never)
    cfg = TrainConfig.from_flat(model="al_resnet_tiny", stage="global", out=str(tmp_path), epochs=1, batch_size=16,
                      progress=False, device="cpu", channels_last=False, bf16=False)
    assert train(cfg, _faces(32), _faces(16))["precision"] == {"precision": "fp32", "forced": True}


def test_speed_all_times_every_shipped_architecture_at_its_served_size():
    from training.speed import shipped_architectures

    shipped = {(arch, size) for arch, size, _ in shipped_architectures()}
    active = json.loads(open(tr.Path(__file__).resolve().parents[2] / "models" / "active.json").read())
    for tier in active["tiers"].values():
        manifest = tr.Path(__file__).resolve().parents[2] / "models" / tier["name"] / tier["version"] / "manifest.json"
        m = json.loads(manifest.read_text())
        assert (m["arch"], m["input"]["size"]) in shipped
