"""Retrieval recall@k: against a plain loop, invariances, duplicated captions, bad input."""
import random

import pytest
import torch

from workbench.eval.retrieval import (
    RetrievalResult,
    classify_features,
    evaluate_retrieval,
    positives,
    recall_at_k,
    retrieval_from_features,
    zero_shot_classification,
)


def _naive(img, txt, caps, k):
    """Image->text and text->image recall@k by explicit loops over texts."""
    img = torch.nn.functional.normalize(img, dim=-1)
    txt = torch.nn.functional.normalize(txt, dim=-1)
    sim = img @ txt.T
    i2t = sum(any(caps[j] == caps[i] for j in sim[i].topk(k).indices.tolist()) for i in range(len(caps)))
    t2i = sum(any(caps[j] == caps[i] for j in sim[:, i].topk(k).indices.tolist()) for i in range(len(caps)))
    return i2t / len(caps), t2i / len(caps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop_with_duplicated_captions(seed):
    g = torch.Generator().manual_seed(seed)
    n = 40
    rnd = random.Random(seed)
    caps = [f"a photo of shape {rnd.randrange(9)}." for _ in range(n)]  # many duplicates
    img, txt = torch.randn(n, 16, generator=g), torch.randn(n, 16, generator=g)
    r = retrieval_from_features(img, txt, caps)
    for k in (1, 5):
        i2t, t2i = _naive(img, txt, caps, k)
        assert getattr(r, f"i2t_r{k}") == pytest.approx(i2t)
        assert getattr(r, f"t2i_r{k}") == pytest.approx(t2i)
    assert r.n == n and r.n_unique == len(set(caps))


def test_duplicate_caption_counts_as_hit():
    # image 0 is closest to text 1, whose text equals image 0's caption: a hit at @1
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    same = retrieval_from_features(img, txt, ["a cat.", "a cat."])
    assert same.i2t_r1 == 1.0 and same.t2i_r1 == 1.0
    distinct = retrieval_from_features(img, txt, ["a cat.", "a dog."])
    assert distinct.i2t_r1 == 0.0 and distinct.t2i_r1 == 0.0
    no_text = retrieval_from_features(img, txt, None)  # only the diagonal is positive
    assert no_text.i2t_r1 == 0.0


def test_invariant_to_joint_permutation_and_recall_grows_with_k():
    g = torch.Generator().manual_seed(3)
    n = 30
    img, txt = torch.randn(n, 8, generator=g), torch.randn(n, 8, generator=g)
    caps = [f"c{i % 7}" for i in range(n)]
    perm = torch.randperm(n, generator=g)
    a = retrieval_from_features(img, txt, caps)
    b = retrieval_from_features(img[perm], txt[perm], [caps[i] for i in perm])
    assert a == b
    assert a.i2t_r5 >= a.i2t_r1 and a.t2i_r5 >= a.t2i_r1
    assert 0.0 <= a.mean_recall <= 1.0


def test_identical_features_give_perfect_recall():
    x = torch.eye(12)
    r = retrieval_from_features(x, x.clone(), [str(i) for i in range(12)])
    assert (r.i2t_r1, r.i2t_r5, r.t2i_r1, r.t2i_r5) == (1.0, 1.0, 1.0, 1.0)


def test_recall_at_k_bigger_than_set_is_clamped():
    sim = torch.randn(3, 3)
    assert float(recall_at_k(sim, positives(None, 3), k=10)) == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="3 captions for 2 pairs"):
        retrieval_from_features(torch.randn(2, 4), torch.randn(2, 4), ["a", "b", "c"])
    with pytest.raises(ValueError, match="one shape"):
        retrieval_from_features(torch.randn(2, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="k=0"):
        recall_at_k(torch.randn(2, 2), positives(None, 2), 0)


def test_classify_features_is_cosine_argmax():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[5.0, 1.0], [0.1, 3.0], [-1.0, -0.5]])
    assert classify_features(f, w).tolist() == [0, 1, 1]


def test_on_a_model_and_the_world(tiny_random, world):
    r = evaluate_retrieval(tiny_random, world, "novel_test", n=24)
    assert isinstance(r, RetrievalResult) and r.n == 24
    assert all(0.0 <= v <= 1.0 for v in (r.i2t_r1, r.i2t_r5, r.t2i_r1, r.t2i_r5))
    acc = zero_shot_classification(tiny_random, world, "novel_test", n=28)
    assert 0.0 <= acc <= 1.0
    with pytest.raises(ValueError, match="n=0"):
        evaluate_retrieval(tiny_random, world, "novel_test", n=0)
