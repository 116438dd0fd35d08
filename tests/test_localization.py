"""Localisation of CAMs against the world's ground-truth masks."""
import pytest
import torch
import torch.nn.functional as F

from workbench.eval.localization import CENTRE_PRIOR, centre_prior, localization_scores, localization_table
from workbench.models import ImageClassifier
from workbench.world import zero_shot_templates


@pytest.fixture(scope="module")
def scenes(world):
    return world.batch("id_test", range(6))


def test_a_cam_equal_to_the_mask_scores_perfectly_and_its_inverse_scores_zero(scenes):
    gt = scenes.masks  # (B, 64, 64)
    perfect = localization_scores(gt.float(), gt)
    assert perfect["iou"] == 1.0 and perfect["pointing"] == 1.0
    inverse = localization_scores((~gt).float(), gt)
    assert inverse["iou"] == 0.0 and inverse["pointing"] == 0.0
    assert perfect["iou_per_image"].shape == (6,) and perfect["pointing_per_image"].shape == (6,)


def test_scores_ignore_scale_and_read_grid_cams(scenes):
    gt = scenes.masks
    grid = F.adaptive_avg_pool2d(gt[:, None].float(), 8)[:, 0]  # an 8x8 patch CAM of the object
    s = localization_scores(grid, gt)
    assert s["pointing"] == 1.0 and s["iou"] > 0.5
    scaled = localization_scores(grid * 7.0, gt)
    assert scaled["iou"] == pytest.approx(s["iou"]) and scaled["pointing"] == s["pointing"]


def test_scores_errors(scenes):
    with pytest.raises(ValueError, match="share B"):
        localization_scores(torch.rand(2, 8, 8), scenes.masks)
    with pytest.raises(ValueError, match="threshold=1.0"):
        localization_scores(torch.rand(6, 8, 8), scenes.masks, threshold=1.0)


def test_centre_prior_is_a_centred_blob():
    c = centre_prior(2, 64)
    assert c.shape == (2, 64, 64) and c.max() <= 1
    assert torch.equal(c, c.flip(-1)) and torch.equal(c, c.transpose(-1, -2))
    assert c[0, 31, 31] == c.max() and c[0, 0, 0] < 0.05


def test_localization_table_rows(tiny_random, world):
    names = world.split_classes("id_test")
    clf = ImageClassifier(tiny_random, tiny_random.zero_shot_head(names, zero_shot_templates()))
    rows = localization_table(clf, world, "id_test", n=6, methods=("gradcam", "rollout", "EigenCAM"),
                              batch_size=4, progress=False)
    assert [r["method"] for r in rows] == ["gradcam", "rollout", "EigenCAM", CENTRE_PRIOR]
    for r in rows:
        assert 0 <= r["iou"] <= 1 and 0 <= r["pointing"] <= 1 and r["n"] == 6
    with pytest.raises(ValueError, match="'saliency'"):
        localization_table(clf, world, "id_test", n=2, methods=("saliency",))
