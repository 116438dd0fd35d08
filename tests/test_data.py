"""Data sources: world splits and ImageFolder folders behind one step-indexed interface."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from workbench.data import ImageFolderSplits, WorldSplits, folder_classnames
from workbench.eval import evaluate, split_accuracy
from workbench.world import World


@pytest.fixture(scope="module")
def data(world):
    return WorldSplits(world, n_train=40, batch_size=16, seed=3)


def test_batches_are_a_pure_function_of_seed_and_step(world, data):
    a, b = data.batches(5), WorldSplits(world, n_train=40, batch_size=16, seed=3).batches(5)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["index"], b["index"])
    assert a["images"].shape == (16, 3, 64, 64) and a["labels"].shape == (16,)
    other = WorldSplits(world, n_train=40, batch_size=16, seed=4).batches(5)
    assert not torch.equal(a["index"], other["index"])


def test_each_epoch_visits_the_pool_once(world):
    d = WorldSplits(world, n_train=48, batch_size=16, seed=0)
    for epoch in range(2):  # 3 steps per epoch
        seen = torch.cat([d.batch_indices(s) for s in range(3 * epoch, 3 * epoch + 3)])
        assert sorted(seen.tolist()) == list(range(48))
    wrap = WorldSplits(world, n_train=40, batch_size=16, seed=0).batch_indices(2)  # crosses an epoch
    assert len(wrap) == 16 and wrap.max() < 40


def test_train_batch_matches_the_world(world, data):
    idx = data.batch_indices(0)
    images, labels = data.train_batch(idx)
    ref = world.batch("finetune", idx.tolist())
    assert torch.equal(images, ref.images)
    assert [data.classnames[int(y)] for y in labels] == [World.classes[int(y)] for y in ref.labels]
    assert torch.equal(data.train_labels(idx), labels)
    with pytest.raises(IndexError, match="40"):
        data.train_batch(torch.tensor([40]))


def test_eval_splits_and_resizing(world):
    d = WorldSplits(world, n_train=8, batch_size=4, image_size=32)
    assert d.eval_splits == ("id_test", "ood_flipped", "ood_unseen", "ood_style")
    chunks = list(d.eval_batches("ood_flipped", 10, batch_size=4))
    assert [len(y) for _, y in chunks] == [4, 4, 2] and chunks[0][0].shape[-1] == 32
    with pytest.raises(KeyError, match="ood_flipped"):
        split_accuracy(nn.Linear(1, 1), d, "heldout", 4)
    with pytest.raises(ValueError, match="n="):
        list(d.eval_batches("id_test", 0))


class _Oracle(nn.Module):
    """A classifier that reads the answer from a pixel we wrote: tests the accuracy bookkeeping."""

    def __init__(self, lookup):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.lookup = lookup

    def forward(self, images):
        return self.lookup(images)


def test_evaluate_counts_hits_and_averages_ood(world):
    d = WorldSplits(world, n_train=8, batch_size=4)
    truth = {s: d.eval_set(s, 12).labels for s in d.eval_splits}
    always_zero = _Oracle(lambda x: torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float())
    accs = evaluate(always_zero, d, 12)
    for s in d.eval_splits:
        assert accs[s] == pytest.approx(float((truth[s] == 0).float().mean()))
    assert accs["ood_avg"] == pytest.approx(np.mean([accs[s] for s in d.ood_splits]))


def test_evaluate_items_are_each_images_hit_and_average_to_the_accuracies(world, folders):
    d = WorldSplits(world, n_train=8, batch_size=4)
    truth = {s: d.eval_set(s, 12).labels for s in d.eval_splits}
    always_zero = _Oracle(lambda x: torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float())
    accs = evaluate(always_zero, d, 12, items=True)
    for s in d.eval_splits:
        assert accs[f"{s}_items"] == (truth[s] == 0).int().tolist()
    assert accs["ood_avg_items"] == sum((accs[f"{s}_items"] for s in d.ood_splits), [])
    assert np.mean(accs["ood_avg_items"]) == pytest.approx(accs["ood_avg"])
    assert "id_test_items" not in evaluate(always_zero, d, 12)  # off by default
    # OOD splits of 4 and 2 images: weighted so that the items' mean is still the mean of the splits' accuracies
    _write_folder(folders / "ood_b", ["cat"], 2, seed=3)
    f = ImageFolderSplits(folders / "train", {"id_test": folders / "test", "ood_a": folders / "ood",
                                              "ood_b": folders / "ood_b"}, image_size=16, batch_size=4)
    first = _Oracle(lambda x: torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 3).float())
    fa = evaluate(first, f, items=True)
    assert len(fa["ood_avg_items"]) == 6 and fa["ood_b"] == 1.0 and fa["ood_a"] == 0.0
    assert np.mean(fa["ood_avg_items"]) == pytest.approx(fa["ood_avg"]) == pytest.approx(0.5)


def test_world_errors(world):
    with pytest.raises(ValueError, match="nosuch"):
        WorldSplits(world, ood=("nosuch",))
    with pytest.raises(ValueError, match="novel_test"):  # shows classes finetune never does
        WorldSplits(world, ood=("novel_test",))


def _write_folder(root, classes, per_class, size=20, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = (rng.random((size, size + 4, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")


@pytest.fixture()
def folders(tmp_path):
    _write_folder(tmp_path / "train", ["red_fox", "cat", "dog"], 3)
    _write_folder(tmp_path / "test", ["red_fox", "cat", "dog"], 2, seed=1)
    _write_folder(tmp_path / "ood", ["dog", "red_fox"], 2, seed=2)  # a subset, as ImageNet-R
    return tmp_path


def test_imagefolder_classnames_labels_and_batches(folders):
    d = ImageFolderSplits(folders / "train", {"id_test": folders / "test", "ood_a": folders / "ood"},
                          image_size=16, batch_size=4, num_workers=2)
    assert d.classnames == ("cat", "dog", "red fox") and folder_classnames(["a_b_c"]) == ("a b c",)
    assert d.id_split == "id_test" and d.ood_splits == ("ood_a",) and d.train_size == 9
    b = d.batches(0)
    assert b["images"].shape == (4, 3, 16, 16) and 0 <= b["images"].min() and b["images"].max() <= 1
    assert torch.equal(b["labels"], torch.tensor(d.train_set.targets)[b["index"]])
    assert torch.equal(d.batches(0)["images"], b["images"])
    # the OOD folder has 2 of the 3 classes: labels are mapped by folder name
    _, labels = next(iter(d.eval_batches("ood_a", None, batch_size=10)))
    assert sorted(labels.tolist()) == [1, 1, 2, 2]
    assert len(next(iter(d.eval_batches("id_test", 3)))[1]) == 3


def test_imagefolder_errors(folders, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolderSplits(tmp_path / "nowhere", {"id_test": folders / "test"})
    with pytest.raises(FileNotFoundError, match="missing"):
        ImageFolderSplits(folders / "train", {"id_test": tmp_path / "missing"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        ImageFolderSplits(tmp_path / "empty", {"id_test": folders / "test"})
    with pytest.raises(ValueError, match="3 class folders"):
        ImageFolderSplits(folders / "train", {"id_test": folders / "test"}, classnames=["a", "b"])
    _write_folder(tmp_path / "alien", ["zebra"], 1)
    with pytest.raises(ValueError, match="zebra"):
        ImageFolderSplits(folders / "train", {"id_test": tmp_path / "alien"})
    with pytest.raises(ValueError, match="non-empty dict"):
        ImageFolderSplits(folders / "train", {})
    with pytest.raises(NotADirectoryError):
        ImageFolderSplits(folders / "train" / "cat" / "0.png", {"id_test": folders / "test"})
