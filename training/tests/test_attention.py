"""Box statistics and the attention figure (training/attention.py)."""
import numpy as np
import pytest
from PIL import Image

from training.attention import box_statistics, draw_attention


def test_box_statistics_on_known_boxes():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0],       # the whole crop: area 1
                      [0.25, 0.25, 0.75, 0.75],   # a quarter
                      [0.6, 0.2, 0.2, 0.6],       # corners given in reverse order: 0.16
                      [-0.5, 0.0, 0.5, 1.5]])     # clipped to the crop first: 0.5
    s = box_statistics(boxes)
    assert s["n"] == 4
    assert s["area_mean"] == pytest.approx((1 + 0.25 + 0.16 + 0.5) / 4)
    assert s["area_p50"] == pytest.approx((0.25 + 0.5) / 2)
    assert s["area_min"] == pytest.approx(0.16)
    assert s["share_over_90pct"] == pytest.approx(0.25)
    assert s["mean_centre"] == pytest.approx([(0.5 + 0.5 + 0.4 + 0.25) / 4, (0.5 + 0.5 + 0.4 + 0.5) / 4])


def test_figure_is_the_average_face_with_the_mean_box(tmp_path):
    faces = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    faces[1] = 200                                   # average face: uniform 100
    boxes = np.array([[0.25, 0.25, 0.75, 0.75]] * 2)
    img = np.asarray(Image.open(draw_attention(faces, boxes, tmp_path / "a.png", scale=10)))
    assert img.shape == (80, 80, 3)
    assert np.all(img[5, 5] == 100)                  # outside the box: the average face
    assert img[20, 40, 0] > 200 and img[20, 40, 2] < 100   # on the mean box's top edge: its orange


@pytest.mark.parametrize("train_mode", [True, False])
def test_max_box_keeps_the_box_a_region(train_mode):
    import torch
    from training.model import AttentionLSTM
    torch.manual_seed(0)
    att = AttentionLSTM(feature_dim=8, hidden=4, min_box=0.25, momentum=0.1, max_box=0.6).train(train_mode)
    with torch.no_grad():
        att.location.weight.mul_(50)                 # push the sigmoids to their limits
    box = att(torch.randn(64, 8) * 10)
    side = box[:, 2:] - box[:, :2]
    assert side.min() >= 0.25 - 1e-6 and side.max() <= 0.6 + 1e-6 and side.max() > 0.55
    assert box.min() >= 0 and box.max() <= 1


def test_box_fixed_to_the_whole_map_is_the_control():
    import torch
    from training.model import AttentionLSTM
    att = AttentionLSTM(feature_dim=8, hidden=4, min_box=1.0, momentum=0.1, max_box=1.0).eval()
    box = att(torch.randn(5, 8))
    torch.testing.assert_close(box, torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 5))
    with pytest.raises(ValueError):
        AttentionLSTM(feature_dim=8, hidden=4, min_box=0.5, momentum=0.1, max_box=0.4)
