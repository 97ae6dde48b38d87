"""A released version's numbers as served: its int8 graph in onnxruntime-web's wasm build, the
Worker's runtime, on `val` and `test` (served_int8_report, which the release and `reencode` call
too), and `python -m training measure`, which writes them again into a model directory."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .attention import box_statistics
from .calibration import fit_range_levels
from .contract import write_manifest_json
from .data import fixed_subset, load_split
from .evaluate import detailed_report, predict_onnx, predict_wasm, summarize_predictions, wasm_runtime


# The fixed part of `val` whose served MAE a release records, so a test can check the shipped
# graph in the serving runtime within CI's time (load_packed(limit=VAL_SUBSET) picks the same faces).
VAL_SUBSET = 256


def served_int8_report(int8: Path, val, test, range_levels: list[dict] | str | None = None) -> dict:
    """An int8 graph's numbers as served: onnxruntime-web wasm, the Worker's runtime, on `val`
    and `test`; Python onnxruntime's answers on `val` beside them as a parity check, since its
    int8 kernels differ by CPU. range_levels: the served range's per-band calibration, or "fit"
    to fit it here on the served `val` answers (calibration.fit_range_levels)."""
    val_wasm = predict_wasm(int8, val)
    val_python = predict_onnx(int8, val)
    test_wasm = predict_wasm(int8, test)
    if range_levels == "fit":
        range_levels = fit_range_levels(val_wasm["fused"]["probs"], np.clip(val.ages.numpy(), 0, 100),
                                                val_wasm["fused"]["age"])
    val_served = summarize_predictions(val_wasm, val)
    val_python_served = summarize_predictions(val_python, val)
    test_served = detailed_report(test_wasm, test, range_levels)
    test_served["attention_box"] = box_statistics(test_wasm["box"])
    subset = fixed_subset(len(val), VAL_SUBSET, 0) if VAL_SUBSET < len(val) else list(range(len(val)))
    subset_mae = float(np.mean(np.abs(val_wasm["fused"]["age"][subset] - val.ages.numpy()[subset])))
    parity = {"max_abs_age": float(np.max(np.abs(val_wasm["fused"]["age"] - val_python["fused"]["age"]))),
              "mean_abs_age": float(np.mean(np.abs(val_wasm["fused"]["age"] - val_python["fused"]["age"]))),
              "max_l1_probs": float(np.max(np.abs(val_wasm["fused"]["probs"] - val_python["fused"]["probs"]).sum(1)))}
    runtime = wasm_runtime()
    return {
        "runtime": runtime,
        "range_levels": range_levels,
        "test_boxes": test_wasm["box"],
        "val": {"onnx_int8": val_served, "onnx_int8_python": val_python_served,
                "int8_wasm_vs_python": parity},
        "test": test_served,
        "metrics": {
            "runtime_int8": runtime,
            "mae_int8": round(test_served["branches"]["fused"]["mae"], 3),
            "cs5_int8": round(test_served["branches"]["fused"]["cs5"], 4),
            "range80_coverage_int8": round(test_served["range80_coverage"], 4),
            **({"range80_coverage_int8_uncalibrated": round(test_served["range80_uncalibrated"]["coverage"], 4)}
               if range_levels else {}),
            "val_mae_int8": round(val_served["fused"]["mae"], 3),
            "val_mae_int8_python": round(val_python_served["fused"]["mae"], 3),
            "val_subset": {"n": len(subset), "seed": 0, "mae_int8": round(subset_mae, 4)},
        },
    }


def measure_served(model_dir: str, figure: str | None = None, data_root: str | None = None) -> dict:
    """Measures a released version again in the serving runtime (served_int8_report) and writes
    the results into its report.json (int8 rows) and manifest.json (int8 metrics); `figure`
    draws where its attention box goes on the test split's average face."""
    from .attention import draw_attention

    d = Path(model_dir)
    manifest = json.loads((d / "manifest.json").read_text())
    report = json.loads((d / "report.json").read_text())
    val, test = (load_split(report, split, manifest["input"]["size"], data_root)
                 for split in ("val", "test"))
    served = served_int8_report(d / manifest["model"], val, test, manifest.get("range_levels"))
    report["runtime_int8"] = served["runtime"]
    report["val"].update(served["val"])
    report["test"]["int8"] = served["test"]
    report["sizes_bytes"]["int8"] = sum(f["bytes"] for f in manifest["files"])
    (d / "report.json").write_text(json.dumps(report) + "\n")
    manifest["metrics"] = {**{k: v for k, v in manifest["metrics"].items() if not k.endswith("_int8")},
                           **served["metrics"]}
    write_manifest_json(d / "manifest.json", manifest)
    if figure:
        draw_attention(test.images.numpy(), served["test_boxes"], figure)
    return {"metrics": manifest["metrics"], "int8_wasm_vs_python": served["val"]["int8_wasm_vs_python"],
            "attention_box": served["test"]["attention_box"], "minors": served["test"]["minors"]}
