"""Where the attention box goes: its statistics over a split and a picture of it, drawn on the
split's average face (no dataset image is shown, so the picture can be committed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def box_statistics(boxes: np.ndarray) -> dict:
    """boxes: [N, 4] as (x0, y0, x1, y1) in [0, 1] of the crop, as the graph outputs them."""
    b = np.clip(np.asarray(boxes, dtype=np.float64), 0, 1)
    w = np.abs(b[:, 2] - b[:, 0])
    h = np.abs(b[:, 3] - b[:, 1])
    area = w * h
    return {
        "n": int(len(b)),
        "area_mean": float(area.mean()),
        "area_p5": float(np.quantile(area, 0.05)),
        "area_p50": float(np.quantile(area, 0.5)),
        "area_p95": float(np.quantile(area, 0.95)),
        "area_min": float(area.min()),
        "share_over_90pct": float(np.mean(area > 0.9)),
        "mean_box": [float(v) for v in b.mean(0)],
        "mean_centre": [float(((b[:, 0] + b[:, 2]) / 2).mean()), float(((b[:, 1] + b[:, 3]) / 2).mean())],
    }


def draw_attention(faces: np.ndarray, boxes: np.ndarray, out: str | Path, scale: int = 3,
                   sample: int = 200, seed: int = 0) -> Path:
    """The average of `faces` (uint8 [N, S, S, 3]), with a sample of the boxes in thin outline
    and their mean in bold."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mean_face = faces.astype(np.float64).mean(0).round().astype(np.uint8)        # [S, S, 3]
    size = mean_face.shape[0] * scale
    img = Image.fromarray(mean_face).resize((size, size), Image.BICUBIC).convert("RGBA")
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    b = np.clip(boxes, 0, 1) * (size - 1)
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(b), min(sample, len(b)), replace=False):
        x0, y0, x1, y1 = b[i]
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=(0, 200, 255, 70))
    x0, y0, x1, y1 = b.mean(0)
    draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=(255, 60, 0, 255), width=3)
    Image.alpha_composite(img, layer).convert("RGB").save(out)
    return out
