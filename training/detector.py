"""The face detector: MediaPipe's BlazeFace, converted from the npm package's TFLite to ONNX.

`python -m training detector convert` fetches `@mediapipe/face_detection` from the npm registry,
converts its TFLite graph with tflite2onnx, checks the ONNX against the TFLite run by
ai-edge-litert, and writes a versioned model directory (manifest with sha256, license notice,
reference outputs for the TypeScript tests). The decoding here (anchors, sigmoid scores,
weighted non-maximum suppression, letterbox) follows MediaPipe's face_detection_*_range
graphs; `src/detector/` is the serving copy and is held to `reference.json`.
"""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

NPM_PACKAGE = "@mediapipe/face_detection"
NPM_VERSION = "0.4.1657300184"

# MediaPipe's face_detection_{short,full}_range.pbtxt: SsdAnchorsCalculator and
# TensorsToDetectionsCalculator options, as the manifest's `anchors` and `decode`.
VARIANTS = {
    "short": {
        "name": "blazeface-short-range",
        "tflite": "face_detection_short_range.tflite",
        "size": 128,
        # stride 8 once, stride 16 three times; two anchors per layer (aspect 1 + interpolated)
        "anchors": {"strides": [8, 16, 16, 16], "per_layer": 2, "offset": 0.5},
        "score_threshold": 0.5,
    },
    "full": {
        "name": "blazeface-full-range",
        "tflite": "face_detection_full_range.tflite",
        "size": 192,
        "anchors": {"strides": [4], "per_layer": 1, "offset": 0.5},
        "score_threshold": 0.6,
    },
}
NMS_IOU = 0.3
NUM_KEYPOINTS = 6
SCORE_CLIP = 100.0
# Parity of the converted graph with the TFLite original on the same input (raw outputs:
# regressors are in input pixels, up to ~150; classificators are logits).
PARITY_TOLERANCE = 1e-3


def anchors(spec: dict, size: int) -> np.ndarray:
    """Anchor centres [N, 2] (x, y) in [0, 1], in the order of the graph's outputs
    (SsdAnchorsCalculator with fixed_anchor_size: layers of equal stride share one grid)."""
    strides = spec["strides"]
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = spec["per_layer"] * (j - i)
        n = math.ceil(size / strides[i])
        for y in range(n):
            for x in range(n):
                out.extend([((x + spec["offset"]) / n, (y + spec["offset"]) / n)] * per_cell)
        i = j
    return np.asarray(out, dtype=np.float64)


def decode(regressors: np.ndarray, classificators: np.ndarray, anchor_xy: np.ndarray, size: int,
           score_threshold: float) -> list[dict]:
    """Raw outputs [N, 16], [N] (logits) -> detections above the threshold, in [0, 1] of the
    detector's input: box (x0, y0, x1, y1), score, keypoints [(x, y)] * 6."""
    r = regressors.astype(np.float64) / size
    logits = np.clip(classificators.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    dets = []
    for i in np.nonzero(scores >= score_threshold)[0]:
        ax, ay = anchor_xy[i]
        cx, cy, w, h = r[i, 0] + ax, r[i, 1] + ay, r[i, 2], r[i, 3]
        kp = [(r[i, 4 + 2 * k] + ax, r[i, 5 + 2 * k] + ay) for k in range(NUM_KEYPOINTS)]
        dets.append({"box": [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], "score": float(scores[i]),
                     "keypoints": kp})
    return dets


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(dets: list[dict], iou_threshold: float = NMS_IOU) -> list[dict]:
    """MediaPipe's WEIGHTED non-maximum suppression: the best remaining detection absorbs every
    one overlapping it by more than the threshold; box and keypoints become the score-weighted
    mean of the group, the score stays the best one's. Ties keep the earlier anchor first."""
    remaining = sorted(range(len(dets)), key=lambda i: (-dets[i]["score"], i))
    out = []
    while remaining:
        top = dets[remaining[0]]
        group = [i for i in remaining if iou(top["box"], dets[i]["box"]) > iou_threshold]
        remaining = [i for i in remaining if i not in group]
        total = sum(dets[i]["score"] for i in group)
        box = [sum(dets[i]["box"][k] * dets[i]["score"] for i in group) / total for k in range(4)]
        kp = [(sum(dets[i]["keypoints"][k][0] * dets[i]["score"] for i in group) / total,
               sum(dets[i]["keypoints"][k][1] * dets[i]["score"] for i in group) / total)
              for k in range(NUM_KEYPOINTS)]
        out.append({"box": box, "score": top["score"], "keypoints": kp})
    return out


def _area_taps(start: float, length: float, size: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """src/image/resize.ts axisWeights, step for step: output sample i averages
    [start + i*scale, start + (i+1)*scale) of the axis, each pixel weighted by how much of it the
    sample covers (float32, as the server stores them); what lies outside [0, limit) is black.
    -> (source index, weight), [size, taps], zero-weight taps padding the short rows."""
    scale = length / size
    rows = []
    for i in range(size):
        a = start + i * scale
        b = a + scale
        taps, p = [], max(0, math.floor(a))
        while p < b and p < limit:
            cover = min(b, p + 1) - max(a, p)
            if cover > 0:
                taps.append((p, float(np.float32(float(np.float32(cover)) / scale))))
            p += 1
        rows.append(taps)
    index = np.zeros((size, max(1, max(len(t) for t in rows))), dtype=np.int64)
    weight = np.zeros(index.shape, dtype=np.float64)
    for i, taps in enumerate(rows):
        for k, (p, w) in enumerate(taps):
            index[i, k], weight[i, k] = p, w
    return index, weight


def area_resize(image: np.ndarray, rect, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> the square `rect` (x, y, w, h, fractional, may leave the image) as
    uint8 [size, size, 3]: src/image/resize.ts resizeCrop with its 'area' rule, with its
    arithmetic (a float64 horizontal pass kept as float32, float32 accumulation down the
    columns in tap order, Math.round), so the detector reads the same pixels here as there."""
    x, y, w, h = rect
    xi, xw = _area_taps(x, w, size, image.shape[1])
    yi, yw = _area_taps(y, h, size, image.shape[0])
    src = image.astype(np.float64)
    rows = np.zeros((image.shape[0], size, 3), dtype=np.float64)
    for k in range(xi.shape[1]):
        rows += src[:, xi[:, k], :] * xw[None, :, k, None]
    rows = rows.astype(np.float32).astype(np.float64)
    acc = np.zeros((size, size, 3), dtype=np.float32)
    for k in range(yi.shape[1]):
        acc = (acc.astype(np.float64) + rows[yi[:, k]] * yw[:, k, None, None]).astype(np.float32)
    return np.clip(np.floor(acc.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)


def letterbox_rect(width: int, height: int) -> tuple[float, float, float, float]:
    """The server's letterboxRect (src/detector/face-detector.ts): the square of side max(w, h)
    centred on the image; resizing it pads the rest black."""
    side = max(width, height)
    return ((width - side) / 2, (height - side) / 2, side, side)


def letterbox_pixels(image: np.ndarray, size: int) -> tuple[np.ndarray, dict]:
    """uint8 [H, W, 3] -> the detector's input pixels, uint8 [size, size, 3]: the image scaled to
    fit and centred on black (MediaPipe's keep_aspect_ratio with zero border) exactly as the
    server makes them (test/parity.test.ts), and the transform back:
    image_x = (u * size - pad_x) / scale."""
    h, w = image.shape[:2]
    rect = letterbox_rect(w, h)
    scale = size / rect[2]
    return area_resize(image, rect, size), {"scale_x": scale, "scale_y": scale,
                                            "pad_x": -rect[0] * scale, "pad_y": -rect[1] * scale}


def letterbox(image: np.ndarray, size: int, value_range: tuple[float, float] = (-1.0, 1.0)) -> tuple[np.ndarray, dict]:
    """letterbox_pixels as the float32 NCHW [1, 3, size, size] tensor in `value_range` the
    server feeds (pixel * (hi - lo) / 255 + lo), and the transform back."""
    pixels, transform = letterbox_pixels(image, size)
    lo, hi = value_range
    tensor = (pixels.astype(np.float64) * ((hi - lo) / 255) + lo).astype(np.float32).transpose(2, 0, 1)[None]
    return tensor, transform


class Detector:
    """A converted detector directory (manifest.json + model.onnx) run with onnxruntime."""

    def __init__(self, directory: str | Path):
        import onnxruntime as ort

        self.dir = Path(directory)
        self.manifest = json.loads((self.dir / "manifest.json").read_text())
        m = self.manifest
        self.size = m["input"]["size"]
        self.anchor_xy = anchors(m["anchors"], self.size)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.dir / m["model"]), opts, providers=["CPUExecutionProvider"])

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.manifest
        reg, cls = self.session.run([m["outputs"]["regressors"], m["outputs"]["classificators"]],
                                    {m["input"]["name"]: tensor.astype(np.float32)})
        return reg[0], cls[0, :, 0]

    def detect(self, image: np.ndarray) -> list[dict]:
        """Faces in an uint8 RGB image, best first: box (x, y, w, h) in image pixels, score,
        keypoints (x, y) in image pixels (right eye, left eye, nose, mouth, right ear, left ear)."""
        tensor, t = letterbox(image, self.size, tuple(self.manifest["input"]["range"]))
        reg, cls = self.raw(tensor)
        dets = weighted_nms(decode(reg, cls, self.anchor_xy, self.size, self.manifest["score_threshold"]),
                            self.manifest["nms_iou"])
        out = []
        for d in dets:
            x0, y0, x1, y1 = d["box"]
            X0 = (x0 * self.size - t["pad_x"]) / t["scale_x"]
            Y0 = (y0 * self.size - t["pad_y"]) / t["scale_y"]
            X1 = (x1 * self.size - t["pad_x"]) / t["scale_x"]
            Y1 = (y1 * self.size - t["pad_y"]) / t["scale_y"]
            kp = [((x * self.size - t["pad_x"]) / t["scale_x"], (y * self.size - t["pad_y"]) / t["scale_y"])
                  for x, y in d["keypoints"]]
            out.append({"box": (X0, Y0, X1 - X0, Y1 - Y0), "score": d["score"], "keypoints": kp})
        return out


# --- reference inputs, rebuilt bit for bit by src/detector/detector.test.ts ------------------

def formula_tensor(size: int, k: int) -> np.ndarray:
    """A deterministic NCHW input in [-1, 1] (no face): smooth waves that differ per channel."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    chans = [np.sin(x * (0.05 + 0.01 * c) + y * 0.03 * (k + 1) + c) * np.cos(y * 0.07 - x * 0.02 * k) for c in range(3)]
    return np.stack(chans)[None].astype(np.float32)


def synthetic_raw(n: int, size: int, anchor_xy: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs with a few planted faces, each seen by several anchors (as a real face is),
    so decoding and the weighted suppression have overlapping groups and lone boxes to merge.
    Values are rounded to 1e-3 so the JSON holds them exactly."""
    rng = np.random.default_rng(seed)
    reg = rng.normal(0, 2, (n, 16))
    cls = rng.normal(-8, 2, n)
    for _ in range(4):
        cx, cy, s = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
        near = np.argsort(np.hypot(anchor_xy[:, 0] - cx, anchor_xy[:, 1] - cy))[:rng.integers(2, 9)]
        for i in near:
            ax, ay = anchor_xy[i]
            j = rng.normal(0, 0.01, 16)
            reg[i, 0], reg[i, 1] = (cx - ax + j[0]) * size, (cy - ay + j[1]) * size
            reg[i, 2], reg[i, 3] = (s + j[2]) * size, (s * 1.05 + j[3]) * size
            for k in range(NUM_KEYPOINTS):
                reg[i, 4 + 2 * k] = (cx - ax + 0.05 * (k - 2.5) * s + j[4 + k]) * size
                reg[i, 5 + 2 * k] = (cy - ay + 0.03 * k * s) * size
            cls[i] = rng.uniform(0.5, 6)
    return np.round(reg, 3), np.round(cls, 3)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch_npm(workdir: Path) -> Path:
    """The npm registry's tarball of the pinned package, unpacked; `npm pack` is the ordinary client."""
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    out = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
                         check=True, capture_output=True, text=True, cwd=workdir)
    info = json.loads(out.stdout)[0]
    tgz = workdir / info["filename"]
    with tarfile.open(tgz) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def _litert_raw(tflite: Path, nhwc: np.ndarray) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], nhwc)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


def convert(variant: str, out: str | Path, version: str = "1") -> dict:
    """npm package -> TFLite -> ONNX, checked against the TFLite, into out/ (a version directory)."""
    import onnx
    import tflite2onnx

    v = VARIANTS[variant]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = v["size"]
    with tempfile.TemporaryDirectory() as tmp:
        pkg = _fetch_npm(Path(tmp))
        tflite = pkg / v["tflite"]
        package_json = json.loads((pkg / "package.json").read_text())
        tflite_sha = _sha256(tflite)
        onnx_path = out / "model.onnx"
        tflite2onnx.convert(str(tflite), str(onnx_path))
        graph = onnx.load(str(onnx_path))
        # tflite2onnx writes the initializers in set order; sorted, the same package gives the same bytes.
        for field in (graph.graph.initializer, graph.graph.value_info):
            items = sorted(field, key=lambda t: t.name)
            del field[:]
            field.extend(items)
        onnx.save(graph, str(onnx_path))
        input_name = graph.graph.input[0].name
        # tflite2onnx keeps the TFLite tensor names: regressors first, classificators second.
        out_names = [o.name for o in graph.graph.output]
        reg_name = next(n for n in out_names if "regressor" in n)
        cls_name = next(n for n in out_names if "classif" in n)

        import onnxruntime as ort
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        worst = {"regressors": 0.0, "classificators": 0.0}
        inputs = [formula_tensor(size, k) for k in range(2)] + [
            rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32) for _ in range(4)]
        for x in inputs:
            ref = _litert_raw(tflite, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
            reg, cls = sess.run([reg_name, cls_name], {input_name: x})
            ref_reg = next(a for n, a in ref.items() if "regressor" in n)
            ref_cls = next(a for n, a in ref.items() if "classif" in n)
            worst["regressors"] = max(worst["regressors"], float(np.abs(reg - ref_reg).max()))
            worst["classificators"] = max(worst["classificators"], float(np.abs(cls - ref_cls).max()))
        if max(worst.values()) > PARITY_TOLERANCE:
            raise SystemExit(f"converted graph differs from the TFLite by {worst} (tolerance {PARITY_TOLERANCE})")

    notice = out / "NOTICE"
    notice.write_text(
        f"{v['tflite']} from the npm package {NPM_PACKAGE}@{NPM_VERSION} (MediaPipe, Google LLC),\n"
        f"licensed under the Apache License, Version 2.0 ({package_json.get('license')}):\n"
        "https://www.apache.org/licenses/LICENSE-2.0\n\n"
        "model.onnx is that TFLite graph converted to ONNX by tflite2onnx (`python -m training\n"
        "detector convert`); the weights are unchanged apart from float16 -> float32.\n")

    manifest_base = {
        "schema": 1,
        "kind": "face_detector",
        "name": v["name"],
        "version": version,
        "input": {"name": input_name, "size": size, "dtype": "float32", "layout": "NCHW",
                  "color": "RGB", "range": [-1, 1], "resize": "letterbox"},
        "outputs": {"regressors": reg_name, "classificators": cls_name},
        "anchors": v["anchors"],
        "keypoints": ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"],
        "score_threshold": v["score_threshold"],
        "nms_iou": NMS_IOU,
        "model": "model.onnx",
    }
    anchor_xy = anchors(v["anchors"], size)
    reference = {
        "generated_by": "python -m training detector convert",
        "anchors": {"count": len(anchor_xy), "xy": np.round(anchor_xy, 8).tolist()},
        "model": [],
        "decode": [],
    }
    for k in range(2):
        reg, cls = sess.run([reg_name, cls_name], {input_name: formula_tensor(size, k)})
        top = np.argsort(-cls[0, :, 0])[:8]
        reference["model"].append({"formula": k, "classificators": np.round(cls[0, :, 0], 5).tolist(),
                                   "top": top.tolist(), "regressors_top": np.round(reg[0, top], 5).tolist()})
    for seed in range(2):
        reg, cls = synthetic_raw(len(anchor_xy), size, anchor_xy, seed)
        dets = weighted_nms(decode(reg, cls, anchor_xy, size, v["score_threshold"]), NMS_IOU)
        reference["decode"].append({"seed": seed, "regressors": reg.tolist(), "classificators": cls.tolist(),
                                    "detections": [{"box": d["box"], "score": d["score"],
                                                    "keypoints": [list(p) for p in d["keypoints"]]} for d in dets]})
    (out / "reference.json").write_text(json.dumps(reference, separators=(",", ":")) + "\n")

    def entry(path: Path, role: str) -> dict:
        return {"path": path.name, "role": role, "sha256": _sha256(path), "bytes": path.stat().st_size}

    manifest = {
        **manifest_base,
        "files": [entry(onnx_path, "model"), entry(notice, "license"), entry(out / "reference.json", "reference")],
        "source": {"npm": f"{NPM_PACKAGE}@{NPM_VERSION}", "file": v["tflite"], "sha256": tflite_sha,
                   "license": package_json.get("license"), "converter": f"tflite2onnx {tflite2onnx.__version__}"},
        "parity": {"against": "ai-edge-litert (the TFLite original)", "inputs": len(inputs),
                   "max_abs_diff": worst, "tolerance": PARITY_TOLERANCE},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
