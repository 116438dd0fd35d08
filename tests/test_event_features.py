"""EventFeatures, the paper-layout loader (random arrays in the paper's shapes), and the frozen-encoder features."""
import numpy as np
import pytest
import torch

from workbench.data import EventFeatures, load_paper_features
from workbench.data.event_features import sequence_labels
from workbench.methods.codebook.features import extract_features, log_bands, text_features
from workbench.world.events import EventConfig, events

N, T, C = 6, 10, 28  # AVE: 28 event classes + background


def _paper_files(tmp_path, suffix=".npy", n_audio=N, t_audio=T, t_labels=T):
    rng = np.random.default_rng(0)
    video = rng.standard_normal((N, T, 7, 7, 512), dtype=np.float32)
    audio = rng.standard_normal((n_audio, t_audio, 128), dtype=np.float32)
    text = rng.standard_normal((N, 20, 768), dtype=np.float32)
    idx = rng.integers(0, C + 1, size=(N, t_labels))
    onehot = np.eye(C + 1, dtype=np.float32)[idx]
    paths = {}
    for name, arr in (("video", video), ("audio", audio), ("text", text), ("labels", onehot)):
        p = tmp_path / f"{name}{suffix}"
        if suffix == ".npy":
            np.save(p, arr)
        else:
            torch.save(torch.from_numpy(arr), p)
        paths[name] = p
    return paths, (video, audio, text, idx)


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_paper_layout_loads(tmp_path, suffix):
    paths, (video, audio, text, idx) = _paper_files(tmp_path, suffix)
    f = load_paper_features(**paths)
    assert len(f) == N and f.modalities == ("video", "audio", "text") and f.background == C
    assert f.shapes == {"video": (7, 7, 512), "audio": (128,), "text": (768,)}
    assert torch.equal(f.features["video"], torch.from_numpy(video))
    assert torch.allclose(f.features["text"][:, 3], torch.from_numpy(text).mean(1))  # token mean at every step
    assert torch.equal(f.step_labels, torch.from_numpy(idx))
    assert torch.equal(f.present["audio"], f.step_labels < C)
    counts = [np.bincount(r[r < C], minlength=C) for r in idx]
    assert f.labels.tolist() == [int(c.argmax()) if c.sum() else C for c in counts]


def test_index_labels_need_class_names(tmp_path):
    paths, (_, _, _, idx) = _paper_files(tmp_path)
    np.save(tmp_path / "labels.npy", idx)
    with pytest.raises(ValueError, match="need classes="):
        load_paper_features(paths["video"], paths["audio"], paths["labels"])
    names = [f"c{i}" for i in range(C)]
    f = load_paper_features(paths["video"], paths["audio"], paths["labels"], classes=names)
    assert f.classes == tuple(names) and "text" not in f.features and torch.equal(f.step_labels, torch.from_numpy(idx))


def _dir(root, name):
    (root / name).mkdir()
    return root / name


def test_paper_layout_bad_files(tmp_path):
    paths, _ = _paper_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="audio feature file .*missing.npy.* does not exist"):
        load_paper_features(paths["video"], tmp_path / "missing.npy", paths["labels"])
    short, _ = _paper_files(_dir(tmp_path, "a"), t_audio=8)
    with pytest.raises(ValueError, match="audio features have 8 steps per sequence but the video features 10"):
        load_paper_features(paths["video"], short["audio"], paths["labels"])
    few, _ = _paper_files(_dir(tmp_path, "b"), n_audio=4)
    with pytest.raises(ValueError, match=r"audio features have shape \(4, 10, 128\).*accepted \(6, \.\.\.\)"):
        load_paper_features(paths["video"], few["audio"], paths["labels"])
    lab, _ = _paper_files(_dir(tmp_path, "c"), t_labels=9)
    with pytest.raises(ValueError, match=r"labels cover \(6, 9\).*\(6, 10\): the files disagree"):
        load_paper_features(paths["video"], paths["audio"], lab["labels"])
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match="suffix '.csv'; accepted: .npy"):
        load_paper_features(tmp_path / "x.csv", paths["audio"], paths["labels"])
    with pytest.raises(ValueError, match="text_mode='tokens'"):
        load_paper_features(**paths, text_mode="tokens")


def _features(n=4, t=5, c=3):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, c + 1, (n, t), generator=g)
    return EventFeatures({"video": torch.randn(n, t, 2, 2, 8, generator=g), "audio": torch.randn(n, t, 16)},
                         y, sequence_labels(y, c), {"video": y < c, "audio": y < c}, tuple("abc"),
                         index=torch.arange(n))


def test_event_features_subset_select_state():
    f = _features()
    s = f.subset([3, 1])
    assert len(s) == 2 and torch.equal(s.features["audio"][0], f.features["audio"][3])
    assert torch.equal(s.index, torch.tensor([3, 1])) and s.classes == f.classes
    assert len(f.subset(range(1, 3))) == 2 and len(f.subset(f.labels == f.labels[0])) >= 1
    assert f.select(["audio"]).modalities == ("audio",)
    back = EventFeatures.from_state(f.state())
    assert torch.equal(back.features["video"], f.features["video"]) and back.classes == f.classes
    assert f.to("cpu").steps == 5


def test_event_features_bad_input():
    f = _features()
    y = f.step_labels
    with pytest.raises(ValueError, match="unknown modality 'smell'; accepted: video, audio, text"):
        EventFeatures({"smell": torch.randn(4, 5, 3)}, y, f.labels, {"smell": y < 3}, "abc")
    with pytest.raises(ValueError, match=r"audio features have shape \(4, 6, 16\); accepted \(N, T, \.\.\.\) = \(4, 5"):
        EventFeatures({"audio": torch.randn(4, 6, 16)}, y, f.labels, {"audio": y < 3}, "abc")
    with pytest.raises(ValueError, match=r"step_labels hold values in \[0, 7\]; accepted: \[0, 3\]"):
        EventFeatures({"audio": torch.randn(4, 5, 16)}, y.clamp(max=2) + torch.eye(4, 5, dtype=torch.long) * 5,
                      f.labels, {"audio": y < 3}, "abc")
    with pytest.raises(ValueError, match="present has no mask for"):
        EventFeatures({"audio": torch.randn(4, 5, 16)}, y, f.labels, {}, "abc")
    with pytest.raises(ValueError, match="no \\['text'\\] features here"):
        f.select(["text"])


def test_log_bands_follow_pitch():
    t = torch.arange(1024) / 1024
    tones = torch.stack([torch.sin(2 * torch.pi * f * t) for f in (20, 40, 80, 160)])
    x = log_bands(tones, bands=64)
    assert x.shape == (4, 64)
    peaks = x.argmax(-1)
    assert (peaks[1:] > peaks[:-1]).all()  # a higher tone peaks in a higher band
    with pytest.raises(ValueError, match="shorter than one frame"):
        log_bands(torch.randn(3, 100))


def test_extract_features_shapes_and_presence(tiny_random, world):
    cfg = EventConfig(steps=4, min_length=2, max_length=4, audio_length=512)
    f = extract_features(tiny_random, world, "heldout", range(3), cfg, video="grid", grid=2, bands=32)
    assert f.shapes == {"video": (2, 2, 128), "audio": (32,), "text": (128,)}
    b = events(world, "heldout", range(3), cfg)
    assert torch.equal(f.step_labels, b.step_labels) and torch.equal(f.present["video"], b.visible)
    assert torch.equal(f.present["audio"], b.audible) and torch.equal(f.labels, b.labels)
    e = extract_features(tiny_random, world, "heldout", [1], cfg, video="embedding")
    assert e.shapes["video"] == (128,)
    with torch.no_grad():
        direct = tiny_random.encode_image(b.frames[1])
    assert torch.allclose(e.features["video"][0], direct, atol=1e-5)  # chunked extraction = the tower itself
    native = extract_features(tiny_random, world, "heldout", [1], cfg, video="grid", chunk=1)
    assert native.shapes["video"] == (8, 8, 128)
    assert torch.allclose(native.features["video"][0].mean((1, 2)), f.features["video"][1].mean((1, 2)), atol=1e-5)
    with pytest.raises(ValueError, match="video='pooled'; accepted: 'grid', 'embedding'"):
        extract_features(tiny_random, world, "heldout", [1], cfg, video="pooled")


def test_text_features_encode_each_caption_once(tiny_random):
    caps = [["a cow.", "no event here."], ["no event here.", "a cow."]]
    x = text_features(tiny_random, caps)
    assert x.shape == (2, 2, 128) and torch.equal(x[0, 0], x[1, 1]) and torch.equal(x[0, 1], x[1, 0])
