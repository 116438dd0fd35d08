"""Counterfactual masks and fills: complements, patch alignment, determinism, clear errors."""
import pytest
import torch
from einops import rearrange

from workbench.methods.cam import FILLS, MASK_KINDS, apply_fill, counterfactual, gradcam, make_mask
from workbench.models import ImageClassifier, ZeroShotHead

P = 8  # patch size
B, G = 6, 4  # images, patches per side


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def images():
    return torch.rand(B, 3, G * P, G * P, generator=_gen(0))  # every patch distinct


@pytest.fixture(scope="module")
def cam():
    return torch.rand(B, G, G, generator=_gen(1))


def _patches(x):
    return rearrange(x, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=P, p2=P)


def test_object_and_context_masks_are_complements(cam):
    for t in (0.1, 0.3, 0.6, 0.9):
        obj, ctx = make_mask("object", cam, t), make_mask("context", cam, t)
        assert obj.dtype == torch.bool and obj.shape == cam.shape
        assert torch.equal(obj, ~ctx) and torch.equal(obj, cam > t)


def test_random_mask_is_seeded_and_has_rate_p():
    a = make_mask("random", p=0.3, generator=_gen(5), shape=(64, 16, 16))
    b = make_mask("random", p=0.3, generator=_gen(5), shape=(64, 16, 16))
    c = make_mask("random", p=0.3, generator=_gen(6), shape=(64, 16, 16))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(a.float().mean().item() - 0.3) < 0.02  # 16384 draws: sd 0.0036
    assert not make_mask("random", p=0.0, shape=(2, 4, 4)).any()
    assert make_mask("random", p=1.0, shape=(2, 4, 4)).all()


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5])
def test_threshold_outside_unit_interval_is_named(cam, threshold):
    with pytest.raises(ValueError, match=f"threshold={threshold!r}"):
        make_mask("object", cam, threshold)


def test_mask_errors_name_the_bad_input(cam):
    with pytest.raises(ValueError, match="'edges'.*object, context, random"):
        make_mask("edges", cam)
    with pytest.raises(ValueError, match="p=1.5"):
        make_mask("random", cam, p=1.5)
    with pytest.raises(ValueError, match="pass cam"):
        make_mask("context")


@pytest.mark.parametrize("fill", FILLS)
def test_fills_touch_only_masked_patches(images, cam, fill):
    mask = make_mask("object", cam, 0.5)
    out = apply_fill(images, mask, fill, P, generator=_gen(2))
    assert out.shape == images.shape and out.dtype == images.dtype
    src, dst, m = _patches(images), _patches(out), mask.flatten(1)
    assert torch.equal(dst[~m], src[~m])  # pixels outside the mask are unchanged
    assert not torch.equal(dst[m], src[m])  # and the masked ones were replaced


@pytest.mark.parametrize("fill", ["single", "multi"])
def test_copy_fills_take_whole_patches_from_other_images(images, cam, fill):
    mask = make_mask("context", cam, 0.4)
    out = _patches(apply_fill(images, mask, fill, P, generator=_gen(3)))
    src = _patches(images)
    donors = {}
    for i, n in mask.flatten(1).nonzero().tolist():
        match = [j for j in range(B) if torch.equal(out[i, n], src[j, n])]  # same position in the donor
        assert match and i not in match, (i, n, match)
        donors.setdefault(i, set()).update(match)
    if fill == "single":  # one donor per image, and the donors are a derangement of the batch
        assert all(len(d) == 1 for d in donors.values())
        if len(donors) == B:
            assert sorted(d.pop() for d in donors.values()) == list(range(B))
    else:
        assert max(len(d) for d in donors.values()) > 1


def test_constant_and_mean_fills(images, cam):
    mask = make_mask("object", cam, 0.5)
    m = torch.nn.functional.interpolate(mask[:, None].float(), scale_factor=P)[:, 0].bool()  # (B, H, W)
    per_image = images.mean(dim=(2, 3))  # (B, 3)
    out = apply_fill(images, mask, "constant", P)
    assert torch.allclose(out.permute(0, 2, 3, 1)[m], per_image[:, None, None, :].expand(-1, *m.shape[1:], -1)[m])
    black = apply_fill(images, mask, "constant", P, value=0.0)
    assert (black.permute(0, 2, 3, 1)[m] == 0).all()
    colour = apply_fill(images, mask, "constant", P, value=(1.0, 0.0, 0.5))
    assert torch.equal(colour.permute(0, 2, 3, 1)[m][0], torch.tensor([1.0, 0.0, 0.5]))
    mean = apply_fill(images, mask, "mean", P)
    ref = images.mean(0, keepdim=True).expand_as(images)
    assert torch.allclose(mean.permute(0, 2, 3, 1)[m], ref.permute(0, 2, 3, 1)[m])


@pytest.mark.parametrize("fill", FILLS)
def test_same_generator_seed_same_fill(images, cam, fill):
    mask = make_mask("object", cam, 0.3)
    a = apply_fill(images, mask, fill, P, generator=_gen(7))
    b = apply_fill(images, mask, fill, P, generator=_gen(7))
    assert torch.equal(a, b)
    if fill in ("single", "multi"):
        assert not torch.equal(a, apply_fill(images, mask, fill, P, generator=_gen(8)))


def test_fill_errors_name_the_bad_input(images, cam):
    mask = make_mask("object", cam, 0.3)
    with pytest.raises(ValueError, match="'black'.*constant, mean, single, multi"):
        apply_fill(images, mask, "black", P)
    with pytest.raises(ValueError, match="needs >= 2 images, got 1"):
        apply_fill(images[:1], mask[:1], "single", P)
    with pytest.raises(ValueError, match="does not tile.*patch_size=16"):
        apply_fill(images, mask, "mean", 16)


@pytest.fixture(scope="module")
def tiny_clf(tiny_random):
    w = torch.randn(4, tiny_random.embed_dim, generator=_gen(0))
    return ImageClassifier(tiny_random, ZeroShotHead(w, ("circle", "square", "star", "heart")))


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_counterfactual_is_seeded_and_patch_aligned(tiny_clf, world, kind):
    x = world.batch("id_test", range(4)).images
    labels = torch.tensor([0, 1, 2, 3])
    a = counterfactual(tiny_clf, x, labels, kind=kind, fill="single", threshold=0.3, generator=_gen(11))
    b = counterfactual(tiny_clf, x, labels, kind=kind, fill="single", threshold=0.3, generator=_gen(11))
    assert torch.equal(a.images, b.images) and torch.equal(a.mask, b.mask)
    assert a.mask.shape == (4, 8, 8) and a.images.shape == x.shape and not a.images.requires_grad
    m = torch.nn.functional.interpolate(a.mask[:, None].float(), scale_factor=8)[:, 0].bool()
    assert torch.equal(a.images.permute(0, 2, 3, 1)[~m], x.permute(0, 2, 3, 1)[~m])
    if kind == "random":
        assert a.cam is None
    else:
        assert torch.equal(a.mask, make_mask(kind, gradcam(tiny_clf, x, labels), 0.3))


def test_counterfactual_rejects_unknown_names(tiny_clf, world):
    x = world.batch("id_test", range(2)).images
    with pytest.raises(ValueError, match="'everything'"):
        counterfactual(tiny_clf, x, None, kind="everything")
    with pytest.raises(ValueError, match="'noise'"):
        counterfactual(tiny_clf, x, None, fill="noise")
    with pytest.raises(ValueError, match="'cam'"):
        counterfactual(tiny_clf, x, None, method="cam")
