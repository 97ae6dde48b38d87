"""Every registered architecture: shapes, stages, gradients, RoR shortcuts, statelessness."""
import copy

import pytest
import numpy as np
import torch

from training.model import (ALNet, ExportWrapper, ModelConfig, checkpoint_dict, create_model,
                            crop_matrices, list_models, load_checkpoint)
from training.stage import set_stage, soft_targets, stage_loss, stage_modes

# Full-size architectures at a small input keep CPU tests quick; the layer structure is the same.
SMALL_INPUT = 64


def small(name: str, **kw) -> ALNet:
    """dlib's backbone needs ~100 px (its unpadded strides leave the last group nothing below)."""
    torch.manual_seed(0)
    size = 112 if create_model(name).cfg.backbone == "dlib" else SMALL_INPUT
    return create_model(name, input_size=size, **kw)


def test_registry_has_the_papers_models():
    assert {"al_resnet34", "al_resnet152", "al_ror34"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model"):
        create_model("al_vgg16")


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes_and_finite(name):
    model = small(name).eval()
    x = torch.randn(3, 3, model.cfg.input_size, model.cfg.input_size)
    out = model(x)
    assert out["global"].shape == (3, 101) and out["local"].shape == (3, 101)
    pred = model.predict(out)
    assert pred["probs"].shape == (3, 101) and pred["age"].shape == (3,)
    assert torch.allclose(pred["probs"].sum(1), torch.ones(3), atol=1e-5)
    box = pred["box"]
    assert box.shape == (3, 4)
    assert ((box >= 0) & (box <= 1)).all()
    assert (box[:, 2] > box[:, 0]).all() and (box[:, 3] > box[:, 1]).all()
    for v in pred.values():
        assert torch.isfinite(v).all()
    assert ((pred["age"] >= 0) & (pred["age"] <= 100)).all()


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("stage", ["global", "local"])
def test_stage_gradients_reach_trainable_and_spare_frozen(name, stage):
    model = small(name)
    # Residual branches start silenced (zero-init last BN), which zeroes their gradients on the
    # very first step; give every BN a scale so the test sees the paths a trained model has.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    trainable = set_stage(model, stage)
    stage_modes(model, stage)
    x = torch.randn(4, 3, model.cfg.input_size, model.cfg.input_size)
    loss = stage_loss(model, x, torch.tensor([3, 30, 60, 90]), stage, sigma=2.0)
    loss.backward()
    ids = {id(p) for p in trainable}
    for pname, p in model.named_parameters():
        if id(p) in ids:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{stage}: no gradient at {pname}"
        else:
            assert p.grad is None, f"{stage}: frozen {pname} got a gradient"
    if stage == "local":
        assert any(n.startswith("attention.location") for n, p in model.named_parameters() if id(p) in ids)


@pytest.mark.parametrize("local", [dict(local_grid=2), dict(local_grid=2, local_hidden=32),
                                   dict(local_grid=3, crop_size=6)])
def test_local_head_variants(local):
    model = small("al_resnet_tiny", **local).eval()
    g = local["local_grid"]
    first = model.local_head if isinstance(model.local_head, torch.nn.Linear) else model.local_head[0]
    assert first.in_features == model.cfg.feature_dim * g * g
    out = model(torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT))
    assert out["local"].shape == (2, 101) and torch.isfinite(out["local"]).all()
    # The grid keeps the layout: mirroring the feature map changes the local answer, not the global.
    fmap = torch.randn(1, model.cfg.feature_dim, 4, 4)
    pooled = fmap.mean(dim=(2, 3))
    a, _ = model.forward_local(fmap, pooled)
    b, _ = model.forward_local(fmap.flip(3), pooled)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("local_loss", ["fused", "local+age"])
@pytest.mark.parametrize("source", ["map", "image", "region"])
def test_local_losses_train_only_the_local_branch(local_loss, source):
    model = small("al_resnet_tiny", local_grid=2, local_source=source)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    set_stage(model, "local")
    stage_modes(model, "local")
    x, labels = torch.randn(4, 3, SMALL_INPUT, SMALL_INPUT), torch.tensor([3, 30, 60, 90])
    # In training mode every call moves the LSTM's running state (and the region backbone's
    # BatchNorm statistics), so a second call on the same model would differ from the first
    # whatever the loss: each reference is computed on its own copy in the same state.
    twin, probe = copy.deepcopy(model), copy.deepcopy(model)
    loss = stage_loss(model, x, labels, "local", 2.0, local_loss=local_loss)
    loss.backward()
    assert model.global_head.weight.grad is None
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.local_head.weight.grad.abs().sum() > 0
    # The box learns from the loss, through the crop (and, for 'image' and 'region', through the
    # backbone that reads the region).
    assert model.attention.location.weight.grad.abs().sum() > 0
    if source == "region":
        assert all(p.grad is not None for p in model.local_backbone.parameters())
    plain = stage_loss(twin, x, labels, "local", 2.0, local_loss="local")
    # What each loss is, from the model's own outputs (one forward of the copy in the same state).
    with torch.no_grad():
        fmap = probe.forward_features(x)
        pooled = fmap.mean(dim=(2, 3))
        local_logits, box = probe.forward_local(fmap, pooled, x)
        pred = probe.predict({"global": probe.global_head(pooled), "local": local_logits, "box": box},
                             temperature=torch.ones(()))
    target = soft_targets(labels, 101, 2.0)
    if local_loss == "fused":
        expected = torch.sum(-target * torch.log(pred["probs"]), dim=1).mean()
    else:
        expected = plain + 0.1 * (pred["age"] - labels.float()).abs().mean()
        assert (pred["age"] - labels.float()).abs().mean() > 1  # the age term is not negligible
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-4, atol=1e-5)
    assert not torch.isclose(loss, plain)
    with pytest.raises(ValueError, match="local_loss"):
        stage_loss(model, x, labels, "local", 2.0, local_loss="global")


def test_global_age_term_adds_the_expectations_error():
    model = small("al_resnet_tiny").eval()
    x, labels = torch.randn(4, 3, SMALL_INPUT, SMALL_INPUT), torch.tensor([3, 30, 60, 90])
    with torch.no_grad():
        plain = stage_loss(model, x, labels, "global", 2.0)
        weighted = stage_loss(model, x, labels, "global", 2.0, global_age_weight=0.5)
        age = model.predict(model(x))["global_age"]
    expected = 0.5 * (age - labels.float()).abs().mean()
    assert torch.isclose(weighted - plain, expected, rtol=1e-4)


@pytest.mark.parametrize("stage", ["global", "local"])
def test_teacher_is_mixed_into_the_target(stage):
    model = small("al_resnet_tiny", local_grid=2, local_source="region").eval()
    x, labels = torch.randn(4, 3, SMALL_INPUT, SMALL_INPUT), torch.tensor([3, 30, 60, 90])
    teacher = torch.softmax(torch.randn(4, 101), dim=1)
    torch.manual_seed(1)
    with torch.no_grad():
        losses = {w: stage_loss(model, x, labels, stage, 2.0, teacher=teacher, teacher_weight=w)
                  for w in (0.0, 0.5, 1.0)}
        plain = stage_loss(model, x, labels, stage, 2.0)
    # Cross-entropy is linear in its target.
    assert torch.isclose(losses[0.0], plain)
    assert torch.isclose(losses[0.5], (losses[0.0] + losses[1.0]) / 2, rtol=1e-4)
    assert not torch.isclose(losses[1.0], plain)


def test_image_source_reads_the_zoomed_region():
    model = small("al_resnet_tiny", local_grid=2, local_source="image").eval()
    with torch.no_grad():  # pin the box to the right quarter of the image: x in [0.75, 1]
        model.attention.location.weight.zero_()
        model.attention.location.bias.copy_(torch.tensor([20.0, 0.0, -20.0, 0.0]))
    x = torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT)
    left_blanked = x.clone()
    left_blanked[..., : SMALL_INPUT // 2] = 0
    with torch.no_grad():
        fmap = model.forward_features(x)
        pooled = fmap.mean(dim=(2, 3))
        a, box = model.forward_local(fmap, pooled, x)
        b, _ = model.forward_local(fmap, pooled, left_blanked)
        c, _ = model.forward_local(fmap, pooled, x.flip(3))
    assert torch.allclose(box[:, 0], torch.full((2,), 0.75), atol=1e-3)
    assert torch.allclose(a, b, atol=1e-4)          # what lies outside the box is not read
    assert not torch.allclose(a, c, atol=1e-3)      # what lies inside is
    with pytest.raises(ValueError, match="local_source"):
        small("al_resnet_tiny", local_source="pixels").eval()(x)


def test_region_source_starts_from_the_trained_backbone_and_trains_apart(tmp_path):
    from training.pretrained import init_from

    trained = small("al_resnet_tiny")
    with torch.no_grad():
        for p in trained.backbone.parameters():
            p.add_(1.0)
    torch.save(checkpoint_dict(trained), tmp_path / "global.pt")
    model = small("al_resnet_tiny", local_grid=2, local_source="region")
    assert not any(k.startswith("local_backbone.") for k in init_from(model, str(tmp_path / "global.pt")))
    for own, frozen in zip(model.local_backbone.parameters(), trained.backbone.parameters()):
        assert torch.equal(own, frozen)
    # Its own weights: stage local trains them, the global backbone stays as it was.
    assert {id(p) for p in model.local_backbone.parameters()} <= {id(p) for p in set_stage(model, "local")}
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_flip_view_averages_the_face_and_its_mirror():
    model = small("al_resnet_tiny").eval()
    img = torch.randint(0, 256, (2, SMALL_INPUT, SMALL_INPUT, 3), dtype=torch.uint8)
    with torch.no_grad():
        plain = ExportWrapper(model)(img)
        model.cfg.test_flip = True
        both = ExportWrapper(model)(img)
        mirrored = ExportWrapper(model)(img.flip(2))   # NHWC: dim 2 is x
    names = ExportWrapper.output_names
    a, b, m = (dict(zip(names, t)) for t in (plain, both, mirrored))
    assert not torch.allclose(a["probs"], b["probs"])
    # Mirroring the input of a mirror-averaged model changes nothing but the box.
    assert torch.allclose(b["probs"], m["probs"], atol=1e-6) and torch.allclose(b["age"], m["age"], atol=1e-4)
    assert torch.equal(a["box"], b["box"])
    assert torch.allclose(b["age"], b["probs"] @ model.class_ages, atol=1e-4)


def test_gray_view_averages_the_face_and_its_gray_and_ignores_the_lights_colour_in_that_half():
    from training.evaluate import predict_packed, served_tta
    from training.data import Packed
    from training.model import served_views
    model = small("al_resnet_tiny").eval()
    img = torch.randint(0, 256, (3, SMALL_INPUT, SMALL_INPUT, 3), dtype=torch.uint8)
    names = ExportWrapper.output_names
    with torch.no_grad():
        model.cfg.test_flip, model.cfg.test_gray = True, True
        four = dict(zip(names, ExportWrapper(model)(img)))
        # By hand: the network on each of the four views, distributions averaged.
        px = img.permute(0, 3, 1, 2).float() / 255
        g = (0.299 * px[:, :1] + 0.587 * px[:, 1:2] + 0.114 * px[:, 2:]).expand(-1, 3, -1, -1)
        probs = [model.predict(model(model.normalize(v)))["probs"] for v in (px, px.flip(3), g, g.flip(3))]
    assert served_views(model.cfg) == ["face", "mirror", "gray", "gray mirror"]
    assert torch.allclose(four["probs"], sum(probs) / 4, atol=1e-6)
    assert torch.allclose(four["age"], four["probs"] @ model.class_ages, atol=1e-4)
    # Evaluation reads the network as the graph serves it (the same four views).
    assert served_tta(model.cfg) == "flip+gray"
    data = Packed(img, torch.zeros(3), torch.zeros(3, dtype=torch.long), torch.full((3,), float("nan")), [None] * 3, [None] * 3)
    evaluated = predict_packed(model, data, tta="flip+gray")["fused"]["probs"]
    assert np.allclose(evaluated, four["probs"].numpy(), atol=1e-5)
    model.cfg.test_flip = False
    assert served_views(model.cfg) == ["face", "gray"] and served_tta(model.cfg) == "gray"


def test_local_stage_keeps_backbone_batchnorm_statistics():
    model = small("al_resnet_tiny")
    set_stage(model, "local")
    stage_modes(model, "local")
    before = model.backbone.stem[1].running_mean.clone()
    stage_loss(model, torch.randn(4, 3, SMALL_INPUT, SMALL_INPUT), torch.tensor([1, 2, 3, 4]),
               "local", 0.0).backward()
    assert torch.equal(before, model.backbone.stem[1].running_mean)


def test_crop_gradient_reaches_the_location_layer():
    model = small("al_resnet_tiny")
    model.train()
    fmap = torch.randn(2, model.cfg.feature_dim, 4, 4, requires_grad=True)
    logits, box = model.forward_local(fmap, fmap.mean(dim=(2, 3)))
    logits.sum().backward()
    grad = model.attention.location.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_crop_matrices_sample_the_box():
    # A box covering cells 1..3 of 4 cells, sampled at 2 points: centres at 1.25 and 2.75 cells
    # from the left edge, i.e. positions 0.75 and 2.25 -> weights (0.25, 0.75) and (0.75, 0.25).
    lo, hi = torch.tensor([0.125]), torch.tensor([0.875])
    w = crop_matrices(lo, hi, size=4, out=2)[0]
    expected = torch.tensor([[0.25, 0.75, 0.0, 0.0], [0.0, 0.0, 0.75, 0.25]])
    assert torch.allclose(w, expected, atol=1e-6)
    full = crop_matrices(torch.tensor([0.0]), torch.tensor([1.0]), size=4, out=4)[0]
    assert torch.allclose(full, torch.eye(4), atol=1e-6)


@pytest.mark.parametrize("name", [n for n in list_models() if create_model(n).cfg.ror])
def test_ror_shortcut_levels_all_contribute(name):
    """RoR = root level (stem -> end of the last group), middle level (around each of the four
    groups) and final level (the blocks' own shortcuts). Silencing any one changes the output;
    removing a level from the model makes this fail."""
    model = small(name).eval()
    bb = model.backbone
    assert len(bb.middle_shortcuts) == len(bb.groups) == 4
    x = torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT)
    with torch.no_grad():
        ref = bb(x)

    def changes_output_when_zeroed(module):
        handle = module.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        with torch.no_grad():
            out = bb(x)
        handle.remove()
        return not torch.allclose(out, ref)

    assert changes_output_when_zeroed(bb.root_shortcut)
    for shortcut in bb.middle_shortcuts:
        assert changes_output_when_zeroed(shortcut)
    # Final level: every block keeps its identity/projection shortcut (torchvision's blocks).
    # With its residual branch silenced, a block must still pass its input on through the
    # shortcut: relu(x), or relu(projection(x)) where the shape changes; a block without one
    # would answer zeros. (Every block has a `downsample` attribute, None or not, so its
    # presence proves nothing.)
    blocks = [b for g in bb.groups for b in g]
    inputs = {}
    hooks = [b.register_forward_pre_hook(lambda m, i: inputs.__setitem__(m, i[0])) for b in blocks]
    with torch.no_grad():
        bb(x)
    for h in hooks:
        h.remove()
    for block in blocks:
        h = inputs[block]
        last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
        handle = last_bn.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        with torch.no_grad():
            out = block(h)
            expected = torch.relu(block.downsample(h) if block.downsample is not None else h)
        handle.remove()
        assert out.shape == expected.shape and out.abs().sum() > 0
        torch.testing.assert_close(out, expected)
        if block.downsample is None:
            assert out.shape == h.shape
    # The middle shortcut around group 1 is a strided projection where the shape changes.
    assert isinstance(bb.middle_shortcuts[1][0], torch.nn.Conv2d) and bb.middle_shortcuts[1][0].stride == (2, 2)


def test_plain_resnet_has_no_ror_shortcuts():
    bb = small("al_resnet34").backbone
    assert not hasattr(bb, "root_shortcut") and not hasattr(bb, "middle_shortcuts")


def test_lstm_state_carries_in_training_and_is_stateless_in_eval():
    model = small("al_resnet_tiny")
    att = model.attention
    pooled = torch.randn(5, model.cfg.feature_dim)
    att.train()
    att.reset_state()
    first = att(pooled)
    second = att(pooled)  # same images, but the carried state differs now
    assert not torch.allclose(first, second)
    assert att.h_run.abs().sum() > 0, "the running state must learn from training batches"
    att.eval()
    together = att(pooled)
    alone = torch.cat([att(pooled[i:i + 1]) for i in range(5)])
    assert torch.allclose(together, alone, atol=1e-6)
    assert torch.allclose(att(pooled), together)  # no state leaks between eval calls


def test_export_wrapper_takes_uint8_nhwc():
    model = small("al_resnet_tiny").eval()
    img = torch.randint(0, 256, (2, SMALL_INPUT, SMALL_INPUT, 3), dtype=torch.uint8)
    age, probs, g, l, box = ExportWrapper(model)(img)
    assert age.shape == (2,) and probs.shape == (2, 101) and box.shape == (2, 4)
    ref = model.predict(model(model.normalize(img.permute(0, 3, 1, 2).float() / 255)))
    assert torch.allclose(age, ref["age"])


def test_adience_head_uses_group_midpoints():
    from training.train import head_for
    model = small("al_resnet_tiny", **head_for("adience")).eval()
    pred = model.predict(model(torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT)))
    assert pred["probs"].shape == (2, 8)
    assert model.class_ages.tolist() == [1.0, 5.0, 10.0, 17.5, 28.5, 40.5, 50.5, 80.0]


def test_checkpoint_carries_config(tmp_path):
    model = small("al_ror18_edge")
    model.temperature.fill_(1.7)
    torch.save(checkpoint_dict(model, epoch=3), tmp_path / "c.pt")
    loaded, ckpt = load_checkpoint(tmp_path / "c.pt")
    assert loaded.cfg == model.cfg and ckpt["epoch"] == 3
    assert float(loaded.temperature) == pytest.approx(1.7)
    assert ModelConfig.from_dict(model.cfg.to_dict()) == model.cfg


def test_init_from_torchvision_imagenet_layout(tmp_path):
    """ImageNet -> ... chains start from a torchvision ResNet state dict."""
    import torchvision
    from training.pretrained import init_from
    tv = torchvision.models.resnet34(num_classes=1000)
    torch.save(tv.state_dict(), tmp_path / "imagenet.pt")
    model = small("al_resnet34")
    fresh = init_from(model, str(tmp_path / "imagenet.pt"))
    assert torch.equal(model.backbone.stem[0].weight, tv.conv1.weight)
    assert torch.equal(model.backbone.groups[3][2].conv2.weight, tv.layer4[2].conv2.weight)
    assert torch.equal(model.backbone.groups[1][0].downsample[1].running_var, tv.layer2[0].downsample[1].running_var)
    assert "global_head.weight" in fresh and "attention.cell.weight_ih" in fresh
    assert not any(k.startswith("backbone.") for k in fresh)


def test_init_from_a_101_age_run_into_8_adience_groups(tmp_path):
    from training.pretrained import init_from
    from training.train import head_for
    src = small("al_resnet_tiny")
    torch.save(checkpoint_dict(src), tmp_path / "imdb.pt")
    dst = small("al_resnet_tiny", **head_for("adience"))
    fresh = init_from(dst, str(tmp_path / "imdb.pt"))
    assert torch.equal(dst.backbone.stem[0].weight, src.backbone.stem[0].weight)
    assert torch.equal(dst.attention.location.weight, src.attention.location.weight)
    assert {"global_head.weight", "local_head.weight", "class_ages"} <= set(fresh)
    with pytest.raises(ValueError, match="al_resnet_tiny"):
        init_from(small("al_ror18_edge"), str(tmp_path / "imdb.pt"))


def test_train_speed_reports_throughput():
    from training.speed import train_speed

    r = train_speed("al_resnet_tiny", batch_size=4, steps=1, bf16=False)
    assert r["images_per_s"] > 0 and r["input_size"] == 64 and r["bf16"] is False
