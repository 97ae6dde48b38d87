"""MODEL_CARD.md's section on the decision by sex and race: written from fairness.json beside the
manifest (bench/age-checks.mjs --fairness), and absent without it (older models)."""
import json
import shutil
from math import sqrt

import pytest

from training.card import share_gap, write_card

from .conftest import REPO


@pytest.fixture
def model_dir(tmp_path):
    """A copy of the served default model's manifest and report: what write_card reads."""
    active = json.loads((REPO / "models" / "active.json").read_text())
    src = REPO / "models" / active["name"] / active["version"]
    for name in ("manifest.json", "report.json"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def _share(rate, lo, hi, n):
    return {"rate": rate, "ci95": [lo, hi], "n": n, "n_effective": n}


def _row(group, referred, referred_rw, minors=None):
    none = {"rate": None, "ci95": [None, None], "n": 0, "n_effective": 0}
    return {"group": group, "faces": 500, "mae": 4.2345, "mae_reweighted": 4.5, "adults_referred": referred,
            "adults_referred_reweighted": referred_rw, "minors_pass": minors or none, "minors_pass_reweighted": minors or none}


FAIRNESS = {
    "model": "al-test/1", "threshold": 18, "rule": "the model's decision (fitted on val)", "false_accept_target": 0.01,
    "data": "UTKFace test", "faces": 1000,
    "by": {
        "gender": [_row("female", _share(0.253, 0.224, 0.284, 400), _share(0.209, 0.181, 0.240, 400),
                        _share(0.005, 0.001, 0.028, 100)),
                   _row("male", _share(0.106, 0.088, 0.128, 500), _share(0.156, 0.132, 0.182, 500))],
        "race": [_row("Asian", _share(0.189, 0.142, 0.248, 206), _share(0.15, 0.105, 0.209, 206))],
    },
    "date": "2026-12-07", "command": "npm run bench:age-checks -- --fairness",
}


def test_the_section_comes_from_fairness_json_and_only_from_it(model_dir):
    without = write_card(str(model_dir)).read_text()
    assert "by sex and race" not in without

    (model_dir / "fairness.json").write_text(json.dumps(FAIRNESS))
    card = write_card(str(model_dir)).read_text()
    start = card.index("## The decision by sex and race")
    end = card.index("## Serving cost")
    section = card[start:end]
    assert start < end
    assert "| female | 500 | 4.23 | 4.50 | 25.3% [22.4, 28.4] (400) | 20.9% [18.1, 24.0] | 0.5% [0.1, 2.8] (100) | 0.5% [0.1, 2.8] |" in section
    assert "| male | 500 | 4.23 | 4.50 | 10.6% [8.8, 12.8] (500) | 15.6% [13.2, 18.2] | – (0) | – |" in section
    assert "| Asian | 500 |" in section and "| race | faces |" in section and "| sex | faces |" in section
    # 20.9 - 15.6 = 5.3; interval 5.3 -/+ sqrt(2.8² + 2.6²) = 3.82 and sqrt(3.1² + 2.4²) = 3.92.
    assert ("20.9% [18.1, 24.0] of adults labelled female are referred at 18 against 15.6% [13.2, 18.2] of those "
            "labelled male, a gap of 5.3 points [1.5, 9.2]") in section
    assert "1000 faces of UTKFace `test`" in section and "1% false-accept target" in section
    assert "Written by `npm run bench:age-checks -- --fairness` on 2026-12-07" in section
    # Nothing else in the card moves.
    assert card[:start] + card[end:] == without


def _wilson(k, n, z=1.959964):
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"rate": p, "ci95": [centre - half, centre + half]}


def test_share_gap_is_newcombes_interval():
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # example (a): 56/70 against 48/80, method 10 gives +0.0524 to +0.3339.
    d, lo, hi = share_gap(_wilson(56, 70), _wilson(48, 80))
    assert d == pytest.approx(0.2)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
