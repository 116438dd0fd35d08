"""A real pretrained classifier on real photos, offline: EfficientNet-Lite0 + scikit-image."""
import numpy as np
import pytest
import torch

from workbench.methods.cam.real_photo import photo_counterfactuals
from workbench.models.real_photo import PHOTO_SIZE, _renamed, load_efficientnet_lite0, preprocess_photo, real_photos

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.fixture(scope="module")
def clf():
    return load_efficientnet_lite0()


@pytest.fixture(scope="module")
def photos():
    return real_photos(["cat", "coffee"])


def test_pretrained_weights_recognise_the_photos(clf, photos):
    assert len(clf.classnames) == 1000 and not clf.training
    with torch.no_grad():
        top5 = clf(torch.stack(list(photos.values()))).topk(5).indices
    names = [{clf.classnames[i] for i in row} for row in top5.tolist()]
    assert names[0] & CATS, names[0]
    assert names[1] & {"espresso", "cup", "coffee mug"}, names[1]


def test_photo_counterfactuals_mask_complementary_patches(clf, photos):
    results = photo_counterfactuals(clf, photos, threshold=0.5, grid=7, fill="constant", value=0.0)
    assert [r.name for r in results] == ["cat", "coffee"]
    for r, x in zip(results, photos.values()):
        assert r.cam.shape == (7, 7) and r.cam.max() == 1 and r.object_mask.any()
        assert torch.equal(r.object_mask, r.cam > 0.5) and torch.equal(r.context_mask, ~r.object_mask)
        m = r.object_mask.repeat_interleave(32, 0).repeat_interleave(32, 1)  # (224, 224)
        assert torch.equal(r.object_image[:, ~m], x[:, ~m]) and (r.object_image[:, m] == 0).all()
        assert torch.equal(r.context_image[:, m], x[:, m]) and (r.context_image[:, ~m] == 0).all()
        assert 0 <= r.prob_object_masked <= 1 and 0 <= r.prob_context_masked <= 1 and r.prob_clean > 0.1


def test_preprocessing_and_input_errors(clf):
    grey = preprocess_photo(np.zeros((300, 500), dtype=np.uint8))
    rgba = preprocess_photo(np.full((400, 260, 4), 255, dtype=np.uint8))
    assert grey.shape == rgba.shape == (3, PHOTO_SIZE, PHOTO_SIZE)
    assert grey.max() == 0 and rgba.min() > 0.999  # alpha dropped, white stays white
    with pytest.raises(ValueError, match="224, 224"):
        clf(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="'lena'"):
        real_photos(["lena"])
    with pytest.raises(ValueError, match="grid=5"):
        photo_counterfactuals(clf, {}, grid=5)


def test_weight_keys_must_line_up_in_shape():
    src = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    assert list(_renamed(src, {"x": torch.ones(2, 3), "y": torch.ones(4)})) == ["x", "y"]
    with pytest.raises(ValueError, match="does not line up"):
        _renamed(src, {"x": torch.ones(3, 2), "y": torch.ones(4)})
    with pytest.raises(ValueError, match="2 tensors"):
        _renamed(src, {"x": torch.ones(2, 3)})
