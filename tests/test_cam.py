"""CAMs on CLIP towers: agreement with pytorch-grad-cam, rollout invariants, no side effects."""
import pytest
import torch
import torch.nn.functional as F

from workbench.methods.cam import (
    ALL_CAM_METHODS,
    CAM_METHODS,
    compute_cam,
    gradcam,
    library_cam,
    recorded_attention,
    relevance_rollout,
)
from workbench.models import ImageClassifier, ZeroShotHead, load_model

NAMES = ("circle", "square", "triangle", "star", "heart")


def _classifier(backend, n_classes: int = len(NAMES), seed: int = 0) -> ImageClassifier:
    """A classifier with a random head: the CAM code never needs the text tower."""
    w = torch.randn(n_classes, backend.embed_dim, generator=torch.Generator().manual_seed(seed))
    return ImageClassifier(backend, ZeroShotHead(w, NAMES[:n_classes], scale=100.0))


@pytest.fixture(scope="module")
def tiny_clf(tiny_random):
    return _classifier(tiny_random)


@pytest.fixture(scope="module")
def hf_clf(tiny_hf_config):
    torch.manual_seed(0)
    return _classifier(load_model(tiny_hf_config))


@pytest.fixture(scope="module")
def scenes(world):
    return world.batch("id_test", range(8)).images  # (8, 3, 64, 64)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def _agreement(clf, images) -> list[float]:
    """Per-image Pearson r between our Grad-CAM (bilinearly upsampled) and the library's GradCAM."""
    ours = gradcam(clf, images)  # (B, g, g)
    theirs = library_cam(clf, images, None, "GradCAM")  # (B, S, S)
    up = F.interpolate(ours[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    assert ours.shape == (images.shape[0], clf.model.grid_size, clf.model.grid_size)
    return [_pearson(up[i], theirs[i]) for i in range(images.shape[0]) if ours[i].max() > 0]


def test_gradcam_matches_pytorch_grad_cam_on_tiny_clip(tiny_clf, scenes):
    r = _agreement(tiny_clf, scenes)
    assert len(r) >= 4 and min(r) >= 0.99, r


def test_gradcam_matches_pytorch_grad_cam_on_hf_clip(hf_clf):
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    r = _agreement(hf_clf, images)
    assert len(r) >= 2 and min(r) >= 0.99, r


@pytest.mark.slow
def test_gradcam_matches_pytorch_grad_cam_on_vit_b_32():
    torch.manual_seed(0)
    clf = _classifier(load_model("ViT-B-32", pretrained=None))
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    r = _agreement(clf, images)
    assert len(r) >= 1 and min(r) >= 0.99, r
    cam = relevance_rollout(clf, images)
    assert cam.shape == (2, 7, 7)


def _snapshot(module):
    return ([m.training for m in module.modules()], [p.requires_grad for p in module.parameters()],
            [None if p.grad is None else p.grad.clone() for p in module.parameters()],
            [(len(m._forward_hooks), len(m._forward_pre_hooks), "forward" in m.__dict__) for m in module.modules()])


@pytest.mark.parametrize("method", ["gradcam", "rollout", "GradCAM", "EigenCAM"])
def test_cams_leave_the_classifier_as_they_found_it(tiny_clf, scenes, method):
    """Train mode, parameters requiring grad, a .grad already there: all come back unchanged."""
    images = scenes[:2]
    frozen = compute_cam(tiny_clf, images, None, method)
    clf = tiny_clf
    try:
        clf.train()
        clf.head.eval()  # a mixed state must come back exactly, not as a blanket train(True)
        for p in clf.parameters():
            p.requires_grad_(True)
        first = next(clf.parameters())
        first.grad = torch.full_like(first, 3.0)
        before = _snapshot(clf)
        cam = compute_cam(clf, images, None, method)
        after = _snapshot(clf)
        assert before[0] == after[0] and before[1] == after[1] and before[3] == after[3]
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(before[2], after[2]))
        # eval-mode CAM whatever the caller's mode, and independent of requires_grad
        assert torch.allclose(cam, frozen, atol=1e-5)
    finally:
        clf.eval()
        for p in clf.parameters():
            p.requires_grad_(False)
            p.grad = None


def test_cams_work_under_no_grad_and_take_targets_by_name(tiny_clf, scenes):
    images = scenes[:4]
    with torch.no_grad():
        logits = tiny_clf(images)
        predicted = gradcam(tiny_clf, images)
    assert torch.allclose(predicted, gradcam(tiny_clf, images, logits.argmax(-1)))
    by_name = gradcam(tiny_clf, images, ["star"] * 4)
    assert torch.allclose(by_name, gradcam(tiny_clf, images, 3))
    with pytest.raises(KeyError, match="'cow'"):
        gradcam(tiny_clf, images, ["cow"] * 4)
    with pytest.raises(ValueError, match="out of range"):
        relevance_rollout(tiny_clf, images, torch.tensor([0, 1, 2, 99]))
    with pytest.raises(ValueError, match="2 entries but there are 4 images"):
        gradcam(tiny_clf, images, [0, 1])


@pytest.mark.parametrize("method", CAM_METHODS)
def test_wrong_image_size_gets_the_models_error(tiny_clf, method):
    with pytest.raises(ValueError, match="32x32 but tiny-world-clip takes 64x64"):
        compute_cam(tiny_clf, torch.rand(1, 3, 32, 32), None, method)


def test_unknown_method_is_named_with_the_accepted_ones(tiny_clf, scenes):
    with pytest.raises(ValueError, match="'gradcam\\+\\+'.*gradcam, rollout.*ScoreCAM"):
        compute_cam(tiny_clf, scenes[:1], None, "gradcam++")


@pytest.mark.parametrize("clf_name", ["tiny_clf", "hf_clf"])
def test_recorded_attention_keeps_outputs_and_restores_modules(request, clf_name):
    clf = request.getfixturevalue(clf_name)
    S = clf.model.image_size
    images = torch.rand(3, 3, S, S, generator=torch.Generator().manual_seed(3))
    blocks = clf.model.vision_blocks
    with torch.no_grad():
        ref, ref_logits = clf.features(images), clf(images)
        with recorded_attention(clf.model.vision_attention) as probs:
            patched, patched_logits = clf.features(images), clf(images)
    assert torch.allclose(patched, ref, atol=1e-5), (patched - ref).abs().max()
    # logits are 100 x cosine: the same agreement, scaled
    assert torch.allclose(patched_logits, ref_logits, atol=1e-5 * clf.head.scale)
    probs = probs[:len(blocks)]  # the features pass; the logits pass recorded a second set
    T = 1 + clf.model.grid_size ** 2
    assert len(probs) == len(blocks) and all(p.shape[0] == 3 and p.shape[-2:] == (T, T) for p in probs)
    assert all(torch.allclose(p.sum(-1), torch.ones(()), atol=1e-5) for p in probs)  # rows are distributions
    assert not any("forward" in m.__dict__ for m in clf.modules())  # originals back


def test_recorded_attention_restores_modules_on_error(tiny_clf):
    with pytest.raises(RuntimeError, match="boom"):
        with recorded_attention(tiny_clf.model.vision_attention):
            raise RuntimeError("boom")
    assert not any("forward" in m.__dict__ for m in tiny_clf.modules())
    with pytest.raises(NotImplementedError, match="vision_attention"):  # blocks are not attention modules
        with recorded_attention(tiny_clf.model.vision_blocks):
            pass
    assert not any("forward" in m.__dict__ for m in tiny_clf.modules())


@pytest.mark.parametrize("clf_name", ["tiny_clf", "hf_clf"])
def test_rollout_shape_range_and_per_image_max(request, clf_name):
    clf = request.getfixturevalue(clf_name)
    S, g = clf.model.image_size, clf.model.grid_size
    images = torch.rand(4, 3, S, S, generator=torch.Generator().manual_seed(4))
    cam = relevance_rollout(clf, images)
    assert cam.shape == (4, g, g) and cam.min() >= 0
    assert torch.allclose(cam.flatten(1).amax(1), torch.ones(4))
    # each image's map depends on that image only (no batch mixing)
    alone = relevance_rollout(clf, images[1:2])
    assert torch.allclose(alone[0], cam[1], atol=1e-5)


def test_library_methods_give_patch_grid_maps(tiny_clf, scenes):
    for method in ("GradCAMPlusPlus", "XGradCAM", "LayerCAM", "EigenCAM"):
        cam = compute_cam(tiny_clf, scenes[:2], None, method)
        peak = cam.flatten(1).amax(1)  # 1, or 0 where a ReLU'd method finds no positive evidence
        assert cam.shape == (2, 8, 8) and cam.min() >= 0
        assert torch.all(((peak - 1).abs() < 1e-6) | (peak == 0)), method
    assert set(CAM_METHODS) < set(ALL_CAM_METHODS)


def test_figures_and_explorer_build_headless(tiny_clf, scenes):
    import matplotlib.pyplot as plt

    from workbench.methods.cam import counterfactual, predict_probs
    from workbench.viz.cam import cam_explorer, cam_gallery, counterfactual_figure

    images, labels = scenes[:3], torch.tensor([0, 3, 1])
    fig = cam_gallery(images, {m: compute_cam(tiny_clf, images, labels, m) for m in CAM_METHODS})
    assert len(fig.axes) == 3 * (1 + len(CAM_METHODS))
    cf = counterfactual(tiny_clf, images, labels, generator=torch.Generator().manual_seed(0))
    fig2 = counterfactual_figure(images, cf, predict_probs(tiny_clf, images), predict_probs(tiny_clf, cf.images),
                                 NAMES, labels)
    assert len(fig2.axes) == 3 * 4
    plt.close(fig)
    plt.close(fig2)

    flags = [m.training for m in tiny_clf.modules()]
    box = cam_explorer(tiny_clf, images, labels, methods=("gradcam", "rollout"))
    ex = box.explorer
    first = ex.image.value
    assert first[:4] == b"\x89PNG" and "true class" in ex.info.value
    ex.controls["index"].value = 1
    assert ex.controls["target"].value == 3  # the class follows the image's label
    for name, value in [("method", "rollout"), ("kind", "context"), ("fill", "multi"), ("kind", "random")]:
        before = ex.image.value
        ex.controls[name].value = value
        assert ex.image.value != before, name
    assert not any("forward" in m.__dict__ for m in tiny_clf.modules())
    assert [m.training for m in tiny_clf.modules()] == flags  # every flag as the explorer found it
    with pytest.raises(ValueError, match="'lime'"):
        cam_explorer(tiny_clf, images, labels, methods=("lime",))


def test_cam_frames_compute_what_the_explorer_draws(tiny_clf, scenes):
    from workbench.methods.cam import CamFrames

    frames = CamFrames(tiny_clf, scenes[:3], seed=0)
    a = frames.frame(1, 3, "gradcam", "object", 0.3, 0.5, "single")
    b = frames.frame(1, 3, "gradcam", "object", 0.3, 0.5, "single")
    assert torch.equal(a["counterfactual"], b["counterfactual"]) and torch.equal(a["mask"], b["mask"])
    assert torch.equal(a["cam"], compute_cam(tiny_clf, frames.images[1:2], [3], "gradcam")[0])
    r = frames.frame(0, 0, "gradcam", "random", 0.3, 0.5, "multi")
    assert r["cam"] is None and r["before"].shape == r["after"].shape == (len(NAMES),)
