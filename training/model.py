"""AL-ResNet / AL-RoR: a ResNet (or RoR) backbone for global features, an attention LSTM that
proposes an age-sensitive box on the last feature map, a differentiable crop of that box for
local features, and the fusion P_final = w_g * P_global + w_l * P_local with a DEX expectation.

Reads top to bottom: config -> registry -> backbone -> attention branch -> the whole network.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck

from .contract import OUTPUT_NAMES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# dlib's face-recognition ResNet reads RGB as (x - mean) / 256 on 0..255 pixels; in our [0, 1]
# terms that is (x/255 - mean/255) / (256/255).
DLIB_MEAN = (122.782 / 255, 117.001 / 255, 104.298 / 255)
DLIB_STD = (256 / 255,) * 3


@dataclass
class ModelConfig:
    arch: str = "al_resnet34"
    backbone: str = "resnet"                # 'resnet' (torchvision blocks, RoR optional) or 'dlib' (dlib's
                                            # face-recognition ResNet: unpadded strided convs, average-pool
                                            # shortcuts, per-channel affine instead of batch norm)
    block: str = "basic"                    # 'basic' (ResNet-18/34) or 'bottleneck' (ResNet-152)
    layers: tuple[int, ...] = (3, 4, 6, 3)  # residual blocks per group
    widths: tuple[int, ...] = (64, 128, 256, 512)
    ror: bool = False                       # add RoR's root- and middle-level shortcuts
    stem_pool: bool = True                  # the stem's max-pool; off for small inputs so the map stays >= 4x4
    input_size: int = 224
    num_classes: int = 101                  # ages 0..100, or 8 Adience groups
    class_ages: tuple[float, ...] | None = None  # age of each class for the DEX expectation; None = 0..M-1
    lstm_hidden: int = 128
    min_box: float = 0.25                   # smallest attention box side, as a fraction of the map
    max_box: float = 1.0                    # largest; < 1 keeps the box a region (at 1.0 version 3's box
                                            # grew to the whole map). min_box = max_box = 1: no attention, the
                                            # local branch reads the whole crop (the control for attention)
    crop_size: int = 0                      # side of the sampled crop; 0 = the feature map's (rounded up to the grid)
    local_grid: int = 1                     # the crop is average-pooled to grid x grid cells for the local head;
                                            # > 1 keeps where in the box a feature fired, which the global mean loses
    local_source: str = "map"               # what the box crops: 'map' = the last feature map (fine-grained
                                            # pooling, no extra cost); 'image' = the input, and the backbone reads
                                            # the zoomed region again (a second look, twice the compute);
                                            # 'region' = the input, read by the local branch's own copy of the
                                            # backbone, fine-tuned on the regions in stage local (twice the compute)
    box_level: int = -1                     # the group whose output map the box crops (-1: the last). An
                                            # earlier one (a map with room for a region) sends the crop on
                                            # through the later groups, shared with the global branch
    local_hidden: int = 0                   # > 0: the local head is an MLP with this hidden width, not one linear layer
    fusion_global: float = 1.0
    fusion_local: float = 0.5
    state_momentum: float = 0.01            # EMA rate of the LSTM state kept for stateless inference
    test_flip: bool = False                 # the served graph also reads the mirrored face and averages the
                                            # two answers: twice the compute for a steadier estimate
    test_gray: bool = False                 # ...and the face in gray (and its mirror with test_flip): an answer
                                            # that leans less on the light's colour (docs/stability.md)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def feature_size(self) -> int:
        if self.backbone == "dlib":
            return dlib_map_sizes(self.input_size, len(self.layers))[-1]
        stride = 32 if self.stem_pool else 16
        return -(-self.input_size // stride)

    @property
    def feature_dim(self) -> int:
        return self.widths[-1] * (4 if self.block == "bottleneck" else 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        for k in ("layers", "widths", "class_ages", "mean", "std"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Registry of named architectures, timm style: create_model('al_resnet34', num_classes=8)
# ---------------------------------------------------------------------------------------------
MODEL_CONFIGS: dict[str, ModelConfig] = {
    "al_resnet34": ModelConfig(arch="al_resnet34"),
    "al_resnet152": ModelConfig(arch="al_resnet152", block="bottleneck", layers=(3, 8, 36, 3)),
    "al_ror34": ModelConfig(arch="al_ror34", ror=True),
    "al_resnet18": ModelConfig(arch="al_resnet18", layers=(2, 2, 2, 2)),
    # Half-width ResNet-18 without the stem pool: what two CPU cores can train, and small enough
    # for the edge; at 64 px its feature map is 4x4 (at 96 px, 6x6).
    "al_resnet18_edge": ModelConfig(arch="al_resnet18_edge", layers=(2, 2, 2, 2),
                                    widths=(32, 64, 128, 256), stem_pool=False, input_size=64),
    # Version 4's fast tier: al_resnet18_edge at 80 px (a 5x5 map), one view, the box on the map
    # (no second backbone). Measured in onnxruntime-web wasm (int8, untrained, one run, loaded
    # machine): 19.1 ms per face vs face-api's ageGenderNet 23.1 ms and version 3.1's 130.2 ms;
    # the same network at 112 px 34.0 ms, at 64 px 14.8 ms, fp32 at 80 px 41.0 ms.
    "al_resnet18_edge_fast": ModelConfig(arch="al_resnet18_edge_fast", layers=(2, 2, 2, 2),
                                         widths=(32, 64, 128, 256), stem_pool=False, input_size=80),
    # The fast tier's cheaper sibling: the same network at 112 px with the stem's max-pool kept, so
    # the stem sees 3.1's pixel scale while the residual groups run at the cost of a 56 px input (a
    # 4x4 map). Untrained in wasm (int8, one run): 15.8 ms per face vs face-api's 23.1 ms.
    "al_resnet18_edge_fast_pooled": ModelConfig(arch="al_resnet18_edge_fast_pooled", layers=(2, 2, 2, 2),
                                                widths=(32, 64, 128, 256), stem_pool=True, input_size=112),
    # dlib's face-recognition ResNet (29 conv layers, a half-width ResNet-34 trained on ~3 M faces,
    # CC0; `python -m training pretrained dlib` converts it) under the AL head. Its unpadded strides
    # shrink a 150 px face to 2x2 (112 px to 1x1), so the box sits on the 8x8 map of the third group
    # and the crop goes on through the last two groups (about a fifth more compute).
    "al_dlib29": ModelConfig(arch="al_dlib29", backbone="dlib", layers=(3, 4, 3, 3, 1),
                             widths=(32, 64, 128, 256, 256), input_size=150, box_level=2,
                             mean=DLIB_MEAN, std=DLIB_STD),
    # The fast tier's candidate: the same network at 112 px (0.56x the 150 px cost), served one
    # view. Its last map is 1x1, so the box sits on the fourth group's 3x3 map and the crop is read
    # by the last group alone (one block on a 3x3 map: almost free).
    "al_dlib29_fast": ModelConfig(arch="al_dlib29_fast", backbone="dlib", layers=(3, 4, 3, 3, 1),
                                  widths=(32, 64, 128, 256, 256), input_size=112, box_level=3,
                                  mean=DLIB_MEAN, std=DLIB_STD),
    "al_ror18_edge": ModelConfig(arch="al_ror18_edge", layers=(2, 2, 2, 2), ror=True,
                                 widths=(32, 64, 128, 256), stem_pool=False, input_size=64),
    # For tests and the serving fixture: seconds on a laptop CPU, a few hundred KB as ONNX.
    "al_resnet_tiny": ModelConfig(arch="al_resnet_tiny", layers=(1, 1, 1, 1),
                                  widths=(16, 32, 48, 64), stem_pool=False, input_size=64,
                                  lstm_hidden=32),
}


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


def create_model(name: str, **overrides) -> "ALNet":
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    return ALNet(replace(MODEL_CONFIGS[name], **overrides))


# ---------------------------------------------------------------------------------------------
# Backbone: torchvision's residual blocks, optionally wrapped in RoR's extra shortcut levels
# ---------------------------------------------------------------------------------------------
def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """1x1 strided projection where a shortcut changes shape, identity otherwise."""
    if in_ch == out_ch and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


class Backbone(nn.Module):
    """ResNet, or RoR (paper eq. 2) when cfg.ror: a root-level shortcut from the stem output to
    the end of the last group, a middle-level shortcut around each group, and the ordinary block
    shortcuts as the final level."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        block = Bottleneck if cfg.block == "bottleneck" else BasicBlock
        stem_ch = cfg.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_ch, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_ch),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1) if cfg.stem_pool else nn.Identity(),
        )
        groups, group_io = [], []
        in_ch = stem_ch
        for i, (n_blocks, width) in enumerate(zip(cfg.layers, cfg.widths)):
            stride = 1 if i == 0 else 2
            out_ch = width * block.expansion
            blocks = [block(in_ch, width, stride, downsample=_projection(in_ch, out_ch, stride)
                            if (stride != 1 or in_ch != out_ch) else None)]
            blocks += [block(out_ch, width) for _ in range(n_blocks - 1)]
            groups.append(nn.Sequential(*blocks))
            group_io.append((in_ch, out_ch, stride))
            in_ch = out_ch
        self.groups = nn.ModuleList(groups)
        self.ror = cfg.ror
        if cfg.ror:
            self.middle_shortcuts = nn.ModuleList(_projection(i, o, s) for i, o, s in group_io)
            total_stride = 2 ** (len(cfg.layers) - 1)
            self.root_shortcut = _projection(stem_ch, in_ch, total_stride)
        self._zero_init_last_bn()

    def _zero_init_last_bn(self):
        # Residual branches start as identity (Goyal et al.); from-scratch training is steadier.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward_groups(self, h: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Groups start..stop-1 on h (what group `start` reads). RoR's shortcuts span several
        groups, so it runs only whole."""
        if self.ror:
            raise ValueError("RoR's backbone runs whole: box_level must be the last group")
        for group in self.groups[start:stop]:
            h = group(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)                                   # [N, C0, S/4, S/4] (S/2 without pool)
        h = stem
        for i, group in enumerate(self.groups):
            out = group(h)
            if self.ror:
                out = out + self.middle_shortcuts[i](h)
                if i == len(self.groups) - 1:
                    out = out + self.root_shortcut(stem)
            h = out
        return h                                              # [N, C, H, W], H = W = cfg.feature_size


def dlib_map_sizes(input_size: int, groups: int) -> list[int]:
    """Side of the stem's and each group's output map in dlib's network: unpadded 7x7/2 conv and
    3x3/2 max-pool; each later group halves with an unpadded 3x3/2 conv beside a 2x2/2 average
    pool, and the sum takes the larger side."""
    side = ((input_size - 7) // 2 + 1 - 3) // 2 + 1
    sizes = [side]
    for i in range(groups):
        if i > 0:
            # The 3x3 conv needs a map of at least 3x3: below it the group gets nothing to read.
            side = max((side - 3) // 2 + 1, (side - 2) // 2 + 1) if side >= 3 else 0
        sizes.append(side)
    return sizes


class Affine(nn.Module):
    """Per-channel scale and shift: dlib's `affine` layer, a batch norm folded at the end of its
    training. Kept as is (trainable, no batch statistics), so fine-tuning starts from exactly
    the function dlib computes, whatever the batch."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum takes the larger size in every dimension; the smaller tensor is
    zero-padded at the end (channels, rows, columns: top-left aligned)."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t):
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))
    return pad(a) + pad(b)


class DlibBlock(nn.Module):
    """dlib's `ares` (down=False) and `ares_down` (down=True) residual blocks: conv-affine-relu-
    conv-affine plus the input (average-pooled 2x2/2 and zero-padded in channels when down),
    then relu. The strided conv has no padding."""

    def __init__(self, in_ch: int, out_ch: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=2 if down else 1, padding=0 if down else 1, bias=False)
        self.affine1 = Affine(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.affine2 = Affine(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(y, shortcut))


class DlibBackbone(nn.Module):
    """dlib's face-recognition ResNet up to its last map (the 128-d embedding layer is not part
    of it). Groups as in dlib's `alevel4` ... `alevel0`: every group but the first starts with a
    downsampling block."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        stem_ch = cfg.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(3, stem_ch, 7, stride=2, padding=0, bias=False), Affine(stem_ch),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2))
        groups, in_ch = [], stem_ch
        for i, (n_blocks, width) in enumerate(zip(cfg.layers, cfg.widths)):
            blocks = [DlibBlock(in_ch if j == 0 else width, width, down=(i > 0 and j == 0)) for j in range(n_blocks)]
            groups.append(nn.Sequential(*blocks))
            in_ch = width
        self.groups = nn.ModuleList(groups)
        if dlib_map_sizes(cfg.input_size, len(cfg.layers))[-1] < 1:
            raise ValueError(f"{cfg.input_size} px leaves dlib's last group no input")

    def forward_groups(self, h: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        for group in self.groups[start:stop]:
            h = group(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_groups(self.stem(x))                              # [N, 256, H, W]


def create_backbone(cfg: ModelConfig) -> nn.Module:
    if cfg.backbone == "dlib":
        return DlibBackbone(cfg)
    if cfg.backbone == "resnet":
        return Backbone(cfg)
    raise ValueError(f"unknown backbone {cfg.backbone!r}")


# ---------------------------------------------------------------------------------------------
# Attention branch: LSTM -> box -> differentiable crop -> local features
# ---------------------------------------------------------------------------------------------
def crop_matrices(lo: torch.Tensor, hi: torch.Tensor, size: int, out: int) -> torch.Tensor:
    """Bilinear sampling weights for cropping [lo, hi] (fractions of a side of `size` cells) to
    `out` samples: [N, out, size]. A triangle kernel gives gradients w.r.t. lo and hi, so the
    location layer learns from the local loss; plain matmuls export cleanly to ONNX."""
    steps = (torch.arange(out, dtype=lo.dtype, device=lo.device) + 0.5) / out           # [out]
    pos = (lo[:, None] + (hi - lo)[:, None] * steps[None, :]) * size - 0.5               # [N, out]
    cells = torch.arange(size, dtype=lo.dtype, device=lo.device)                         # [size]
    return torch.relu(1 - (pos[:, :, None] - cells[None, None, :]).abs())                # [N, out, size]


def _crop(maps: torch.Tensor, box: torch.Tensor, out: int | None = None) -> torch.Tensor:
    """maps [N, C, H, W], box [N, 4] (x0, y0, x1, y1 in [0, 1]) -> [N, C, out, out] (out
    defaults to H, assuming a square map)."""
    n, c, h, w = maps.shape
    out = out or h
    rows = crop_matrices(box[:, 1], box[:, 3], h, out)                          # [N, out, H]
    cols = crop_matrices(box[:, 0], box[:, 2], w, out)                          # [N, out, W]
    return rows[:, None] @ maps @ cols[:, None].transpose(2, 3)                 # [N, C, out, out]


class AttentionLSTM(nn.Module):
    """Proposes the age-sensitive box from the pooled global feature (paper III-C).

    Training: the mini-batch is one sequence; the state carries from image to image and across
    batches (detached), so the box proposal can use what earlier faces looked like.
    Inference is stateless: every image starts from (h_run, c_run), an exponential moving average
    of the carried state over training, like BatchNorm's running statistics. The exported graph
    therefore answers the same for an image whatever else is in the batch."""

    def __init__(self, feature_dim: int, hidden: int, min_box: float, momentum: float,
                 max_box: float = 1.0):
        super().__init__()
        if not 0 < min_box <= max_box <= 1:
            raise ValueError(f"need 0 < min_box <= max_box <= 1, got {min_box}, {max_box}")
        self.cell = nn.LSTMCell(feature_dim, hidden)
        self.location = nn.Linear(2 * hidden, 4)
        self.min_box = min_box
        self.max_box = max_box
        self.momentum = momentum
        self.register_buffer("h_run", torch.zeros(hidden))
        self.register_buffer("c_run", torch.zeros(hidden))
        self._carry: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset_state(self):
        self._carry = None

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled [N, C] -> box [N, 4] as (x0, y0, x1, y1) in [0, 1] of the feature map."""
        n = pooled.shape[0]
        if self.training:
            h, c = self._carry if self._carry is not None else (self.h_run[None].clone(), self.c_run[None].clone())
            states = []
            for i in range(n):
                h, c = self.cell(pooled[i:i + 1], (h, c))                       # [1, hidden] each
                states.append(torch.cat([h, c], dim=1))
            s = torch.cat(states, dim=0)                                         # [N, 2*hidden]
            with torch.no_grad():
                self._carry = (h.detach(), c.detach())
                self.h_run.lerp_(h[0].detach(), self.momentum)
                self.c_run.lerp_(c[0].detach(), self.momentum)
        else:
            h0 = self.h_run[None].expand(n, -1)
            c0 = self.c_run[None].expand(n, -1)
            h, c = self.cell(pooled, (h0, c0))
            s = torch.cat([h, c], dim=1)                                         # [N, 2*hidden]
        t = torch.sigmoid(self.location(s))                                      # [N, 4]
        # (tx, ty) place the box, (tw, th) size it; x0 = tx * (1 - w) keeps it inside the map
        # without clamping, so gradients never vanish at the border.
        w = self.min_box + (self.max_box - self.min_box) * t[:, 2]
        hgt = self.min_box + (self.max_box - self.min_box) * t[:, 3]
        x0 = t[:, 0] * (1 - w)
        y0 = t[:, 1] * (1 - hgt)
        return torch.stack([x0, y0, x0 + w, y0 + hgt], dim=1)


def dex(probs: torch.Tensor, class_ages: torch.Tensor) -> torch.Tensor:
    """DEX: the expected age under the distribution. probs [N, M] -> [N]."""
    return probs @ class_ages


LUMA = (0.299, 0.587, 0.114)                # ITU-R 601, as training/capture.py gray()


def gray_view(x: torch.Tensor) -> torch.Tensor:
    """RGB pixels [N, 3, H, W] (before normalization) -> the same in gray: each channel its luma."""
    luma = LUMA[0] * x[:, 0:1] + LUMA[1] * x[:, 1:2] + LUMA[2] * x[:, 2:3]   # [N, 1, H, W]
    return luma.expand(-1, 3, -1, -1)


def served_views(cfg) -> list[str]:
    """The views the served graph averages, in its order (the manifest's `views`)."""
    views = ["face", "mirror"] if cfg.test_flip else ["face"]
    return views + [f"gray {v}" if v != "face" else "gray" for v in views] if cfg.test_gray else views


def average_views(preds: list[dict[str, torch.Tensor]], class_ages: torch.Tensor) -> dict[str, torch.Tensor]:
    """Predictions of several views of the same faces (mirror, ten-crop) -> one: each branch's
    distribution averaged, then DEX; the box is the first (unmodified) view's."""
    avg = {k: sum(p[k] for p in preds) / len(preds) for k in ("probs", "p_global", "p_local")}
    return {**avg, "age": dex(avg["probs"], class_ages), "global_age": dex(avg["p_global"], class_ages),
            "local_age": dex(avg["p_local"], class_ages), "box": preds[0]["box"]}


# ---------------------------------------------------------------------------------------------
# The whole network
# ---------------------------------------------------------------------------------------------
class ALNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = create_backbone(cfg)
        dim = cfg.feature_dim
        self.global_head = nn.Linear(dim, cfg.num_classes)
        self.attention = AttentionLSTM(dim, cfg.lstm_hidden, cfg.min_box, cfg.state_momentum, cfg.max_box)
        local_in = dim * cfg.local_grid ** 2
        self.local_head = (nn.Linear(local_in, cfg.num_classes) if not cfg.local_hidden else
                           nn.Sequential(nn.Linear(local_in, cfg.local_hidden), nn.ReLU(inplace=True),
                                         nn.Linear(cfg.local_hidden, cfg.num_classes)))
        self.local_backbone = copy.deepcopy(self.backbone) if cfg.local_source == "region" else None
        ages = cfg.class_ages if cfg.class_ages is not None else range(cfg.num_classes)
        self.register_buffer("class_ages", torch.tensor(list(ages), dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.std).view(1, 3, 1, 1))
        # Calibration temperature, fitted on validation data after training (1 = none).
        self.register_buffer("temperature", torch.ones(()))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """float [N, 3, S, S] in [0, 1] -> the backbone's input."""
        return (x - self.mean) / self.std

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, S, S, 3] RGB -> normalized float [N, 3, S, S]. Part of the exported graph,
        so callers hand over raw pixels."""
        return self.normalize(images.permute(0, 3, 1, 2).float() / 255.0)       # [N, 3, S, S]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)                                                 # [N, C, H, W]

    @property
    def box_on_earlier_map(self) -> bool:
        return self.cfg.box_level not in (-1, len(self.cfg.layers) - 1)

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the map the box crops, the last map). The same tensor unless box_level is earlier."""
        if not self.box_on_earlier_map:
            fmap = self.forward_features(x)
            return fmap, fmap
        box_map = self.backbone.forward_groups(self.backbone.stem(x), 0, self.cfg.box_level + 1)  # [N, Cb, Hb, Wb]
        return box_map, self.backbone.forward_groups(box_map, self.cfg.box_level + 1)             # [N, C, H, W]

    def forward_local(self, fmap: torch.Tensor, pooled: torch.Tensor, x: torch.Tensor | None = None,
                      box_map: torch.Tensor | None = None):
        """Local branch: the LSTM's box -> a crop -> grid pooling -> local logits. x (the
        normalized input) is needed when the box crops the image (local_source 'image', 'region');
        box_map when the box sits on an earlier group's map (box_level)."""
        box = self.attention(pooled)                                            # [N, 4]
        region = box
        if self.box_on_earlier_map:
            if self.cfg.local_source != "map":
                raise ValueError("box_level needs local_source 'map'")
            # The region of the earlier map, resampled to that map's size, read by the later groups.
            side = self.cfg.crop_size or box_map.shape[2]
            fmap = self.backbone.forward_groups(_crop(box_map, box, side), self.cfg.box_level + 1)
            region = torch.tensor([0.0, 0.0, 1.0, 1.0], device=box.device).expand_as(box)
        elif self.cfg.local_source in ("image", "region"):
            reader = self.local_backbone if self.local_backbone is not None else self.backbone
            fmap = reader(_crop(x, box))                                        # [N, C, H, W] of the region
            region = torch.tensor([0.0, 0.0, 1.0, 1.0], device=box.device).expand_as(box)
        elif self.cfg.local_source != "map":
            raise ValueError(f"unknown local_source {self.cfg.local_source!r}")
        n, c, h, w = fmap.shape
        g = self.cfg.local_grid
        k = (self.cfg.crop_size if not self.box_on_earlier_map else 0) or g * -(-h // g)
        cells = _crop(fmap, region, k).reshape(n, c, g, k // g, g, k // g).mean(dim=(3, 5))  # [N, C, g, g]
        return self.local_head(cells.flatten(1)), box                           # [N, C*g*g] -> [N, M]

    def forward(self, x: torch.Tensor, local: bool = True) -> dict[str, torch.Tensor]:
        """x: normalized float [N, 3, S, S] -> logits of both branches and the box. local=False
        skips the attention branch (a graph served with fusion_local 0 pays only for what it
        uses): its logits are the global head's and its box the whole crop."""
        if not local:
            pooled = self.forward_features(x).mean(dim=(2, 3))                  # [N, C]
            global_logits = self.global_head(pooled)                            # [N, M]
            whole = torch.tensor([0.0, 0.0, 1.0, 1.0], device=x.device).expand(x.shape[0], 4)
            return {"global": global_logits, "local": global_logits, "box": whole}
        box_map, fmap = self.forward_maps(x)                                    # [N, C, H, W]
        pooled = fmap.mean(dim=(2, 3))                                          # [N, C]
        global_logits = self.global_head(pooled)                                # [N, M]
        local_logits, box = self.forward_local(fmap, pooled, x, box_map)        # [N, M], [N, 4]
        return {"global": global_logits, "local": local_logits, "box": box}

    def predict(self, out: dict[str, torch.Tensor], temperature: torch.Tensor | None = None):
        """Logits -> the contract's outputs: fused probs and DEX ages of each branch."""
        t = self.temperature if temperature is None else temperature
        p_global = F.softmax(out["global"].float() / t, dim=1)
        p_local = F.softmax(out["local"].float() / t, dim=1)
        wg, wl = self.cfg.fusion_global, self.cfg.fusion_local
        probs = (wg * p_global + wl * p_local) / (wg + wl)
        return {
            "age": dex(probs, self.class_ages),
            "probs": probs,
            "p_global": p_global,
            "p_local": p_local,
            "global_age": dex(p_global, self.class_ages),
            "local_age": dex(p_local, self.class_ages),
            "box": out["box"].float(),
        }

    def start_local_backbone(self):
        """Stage local starts the local branch's own backbone (local_source 'region') from the
        trained global one."""
        self.local_backbone.load_state_dict(self.backbone.state_dict())

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """What each training stage updates: 'global' = backbone + global head; 'local' = the
        attention LSTM, location layer, local head (and the local branch's own backbone) on a
        frozen backbone."""
        if stage == "global":
            modules = [self.backbone, self.global_head]
        elif stage == "local":
            modules = [self.attention, self.local_head]
            if self.local_backbone is not None:
                modules.append(self.local_backbone)
        elif stage == "all":
            modules = [self]
        else:
            raise ValueError(f"unknown stage {stage!r}")
        return [p for m in modules for p in m.parameters()]


class ExportWrapper(nn.Module):
    """The serving graph: uint8 NHWC pixels in, the contract's five outputs out."""

    output_names = OUTPUT_NAMES

    def __init__(self, model: ALNet):
        super().__init__()
        self.model = model.eval()

    def forward(self, image: torch.Tensor):
        if self.model.cfg.test_gray:
            return self.forward_with_gray(image)
        x = self.model.preprocess(image)                                        # [N, 3, S, S]
        local = self.model.cfg.fusion_local > 0                                 # a branch weighted 0 is not run
        if not self.model.cfg.test_flip:
            pred = self.model.predict(self.model(x, local=local))
            return tuple(pred[k] for k in self.output_names)
        # One pass over face and mirror stacked in the batch: one copy of every weight in the
        # graph (two calls would quantize each weight twice) and one batched conv per layer.
        n = x.shape[0]
        both = self.model.predict(self.model(torch.cat([x, x.flip(3)]), local=local))   # each [2N, ...]
        views = [{k: v[:n] for k, v in both.items()}, {k: v[n:] for k, v in both.items()}]
        pred = average_views(views, self.model.class_ages)
        return tuple(pred[k] for k in self.output_names)

    def forward_with_gray(self, image: torch.Tensor):
        """The face and its gray (each with its mirror under test_flip) stacked in one batch, as
        served_views lists them, their distributions averaged."""
        n = image.shape[0]
        pixels = image.permute(0, 3, 1, 2).float() / 255.0                      # [N, 3, S, S]
        x = torch.cat([pixels, gray_view(pixels)])                               # [2N, ...]
        if self.model.cfg.test_flip:
            x = torch.cat([x[:n], x[:n].flip(3), x[n:], x[n:].flip(3)])          # face, mirror, gray, gray mirror
        local = self.model.cfg.fusion_local > 0
        out = self.model.predict(self.model(self.model.normalize(x), local=local))   # each [V*N, ...]
        views = [{k: v[i * n:(i + 1) * n] for k, v in out.items()} for i in range(x.shape[0] // n)]
        pred = average_views(views, self.model.class_ages)
        return tuple(pred[k] for k in self.output_names)


def checkpoint_dict(model: ALNet, **extra) -> dict:
    """A checkpoint carries its config, so load_checkpoint needs nothing else."""
    return {"config": model.cfg.to_dict(), "state_dict": model.state_dict(), **extra}


def load_checkpoint(path, map_location="cpu") -> tuple[ALNet, dict]:
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    model = ALNet(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model, ckpt
