"""Codebook pictures and explorer (study 3) on small synthetic usage tensors and code indices.

The numbers a figure prints are checked against hand computations on a usage tensor small enough
to do by hand; the explorer's controls are moved and the picture compared before and after.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from workbench.viz import codebook as cb
from workbench.viz.codebook.base import _class_colors

CLASSES = ("dog", "car")  # C = 2; class slot 2 = background


def hand_usage() -> torch.Tensor:
    """K=4 codes, M=2 (video, audio), C+1=3: video uses codes 0 and 1 twice each, audio code 0 four times."""
    u = torch.zeros(4, 2, 3, dtype=torch.long)
    u[0, 0, 0] = 2  # video, code 0: dog x2
    u[1, 0, 1] = 1  # video, code 1: car x1, background x1
    u[1, 0, 2] = 1
    u[0, 1, 0] = 3  # audio, code 0: dog x3, car x1
    u[0, 1, 1] = 1
    return u


def entropy(counts) -> float:
    p = np.asarray(counts, float) / sum(counts)
    return float(-sum(x * math.log(x) for x in p if x > 0))


# ------------------------------------------------------------------ numbers


def test_stats_match_hand_computation():
    s = cb.codebook_stats(hand_usage())
    np.testing.assert_allclose(s.perplexity, [2.0, 1.0], atol=1e-6)  # video: 2 codes evenly; audio: 1 code
    assert s.dead.tolist() == [2, 3] and s.used == 2
    assert s.shared_two == s.shared_all == 0.5  # code 0 of the 2 used codes is used by both
    np.testing.assert_allclose(s.purity[:2], [entropy([5, 1]), math.log(2)], atol=1e-6)
    assert np.isnan(s.purity[2:]).all()


def test_usage_series_from_checkpoints_and_dict():
    u0, u1 = hand_usage(), hand_usage()
    u1[2, 1, 0] = 4  # audio starts using code 2 as much as code 0
    s = cb.usage_series([u0, u1], steps=[0, 50])
    np.testing.assert_allclose(s.perplexity[:, 1], [1.0, 2.0], atol=1e-6)
    assert s.dead[:, 1].tolist() == [3, 2] and s.codes == 4
    np.testing.assert_allclose(s.shared_two, [0.5, 1 / 3])
    d = cb.usage_series({"step": [0, 1], "perplexity": [[1, 2], [3, 4]], "dead": [[0, 0], [1, 1]],
                         "shared_two": [0.1, 0.2], "shared_all": [0.0, 0.1]})
    assert d.perplexity.shape == (2, 2)
    d = cb.usage_series({"step": [0, 1], "perplexity": {"video": [1, 2], "audio": [3, 4]},
                         "dead": {"video": [0, 1], "audio": [2, 3]}, "shared_two": [0.1, 0.2], "shared_all": [0, 0]})
    assert d.perplexity.tolist() == [[1, 3], [2, 4]] and d.dead[:, 1].tolist() == [2, 3]
    with pytest.raises(ValueError, match="lacks"):
        cb.usage_series({"step": [0]})
    with pytest.raises(ValueError, match="different lengths"):
        cb.usage_series({"step": [0, 1], "perplexity": [1], "dead": [1], "shared_two": [1], "shared_all": [1]})
    with pytest.raises(ValueError, match="2 steps for 1 checkpoints"):
        cb.usage_series([u0], steps=[0, 1])


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(4, 2), "expected \\(codes K, modalities M, classes C \\+ 1\\)"),
    (-torch.ones(4, 2, 3), "non-negative integer counts"),
    (torch.full((4, 2, 3), 0.5), "non-negative integer counts"),
])
def test_bad_usage_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        cb.usage_histograms(bad)


# ------------------------------------------------------------------ figures


def test_usage_histograms_show_sorted_counts_and_perplexity():
    fig = cb.usage_histograms(hand_usage(), ("video", "audio"))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    video, audio = fig.axes
    heights = [list(ax.patches[0].get_data().values) for ax in (video, audio)]  # one step patch per panel
    assert heights == [[2, 2, 0.5, 0.5], [4, 0.5, 0.5, 0.5]]  # codes by total use: 0 (6), 1 (2), 2, 3; 0.5 = unused
    assert video.get_ylim()[0] == 0.5
    assert video.get_title() == "video: perplexity 2.0\n2 of 4 codes used"
    assert audio.get_title() == "audio: perplexity 1.0\n1 of 4 codes used"
    assert video.get_yscale() == "log" and "steps assigned" in video.get_ylabel()
    with pytest.raises(ValueError, match="3 modality names"):
        cb.usage_histograms(hand_usage(), ("video", "audio", "text"))


def test_over_training_draws_the_series():
    u0, u1 = hand_usage(), hand_usage()
    u1[2, 1, 0] = 4
    history = type("History", (), {"steps": [0, 25, 50], "perplexity": {"video": [3.0, 2.5, 2.0]}})()
    fig = cb.codebook_over_training([u0, u1], steps=[0, 50], modalities=("video", "audio"), train_history=history)
    ax_p, ax_d, ax_s = fig.axes
    lines = {line.get_label(): line for line in ax_p.lines}
    np.testing.assert_allclose(lines["audio"].get_ydata(), [1.0, 2.0], atol=1e-6)
    assert lines["audio"].get_xdata().tolist() == [0, 50]
    assert any(list(line.get_ydata()) == [3.0, 2.5, 2.0] for line in ax_p.lines)  # per-batch perplexity
    assert [list(line.get_ydata()) for line in ax_d.lines] == [[2, 2], [3, 2]]
    np.testing.assert_allclose(ax_s.lines[0].get_ydata(), [50.0, 100 / 3])  # percent of used codes
    assert len(ax_s.lines) == 1  # with 2 modalities, "all" equals ">= 2": drawn once
    assert all(ax.get_xlabel() == "training step" for ax in fig.axes)


def test_purity_figure_prints_the_use_weighted_entropy():
    fig = cb.purity_figure(hand_usage(), CLASSES)
    ax_s, ax_h = fig.axes[:2]
    want = (6 * entropy([5, 1]) + 2 * math.log(2)) / 8
    assert f"use-weighted mean {want:.2f} nats over 2 used codes" in ax_s.get_title()
    np.testing.assert_allclose(ax_s.collections[0].get_offsets()[:, 1], [entropy([5, 1]), math.log(2)], atol=1e-6)
    shares = ax_h.images[0].get_array()  # (C + 1, codes): class shares of the most used codes
    np.testing.assert_allclose(np.asarray(shares)[:, 0], [5 / 6, 1 / 6, 0])
    assert [t.get_text() for t in ax_h.get_yticklabels()] == ["dog", "car", "background"]
    with pytest.raises(ValueError, match="no code was used"):
        cb.purity_figure(torch.zeros(4, 2, 3, dtype=torch.long), CLASSES)
    with pytest.raises(ValueError, match="1 class names"):
        cb.purity_figure(hand_usage(), ("dog",))


def cells(ax, color) -> int:
    return sum(1 for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()
               and p.get_facecolor() == to_rgba(color))


def test_timeline_marks_cross_modal_mismatches():
    codes = {"video": torch.tensor([1, 2, 3, 4]), "audio": torch.tensor([1, 2, 5, 6]),
             "text": torch.tensor([1, 7, 3, 8])}
    fig = cb.code_timeline(codes, torch.tensor([0, 1, 2, 0]), CLASSES, title="sequence 0")
    ax = fig.axes[0]
    assert cells(ax, cb.MATCH_COLOR) == 7 and cells(ax, cb.MISMATCH_COLOR) == 5
    assert sum(1 for p in ax.patches if not p.get_fill()) == 3  # steps 1, 2, 3 differ across modalities
    assert ax.get_title() == "sequence 0: all 3 modalities share one code in 1 of 4 steps"
    texts = [t.get_text() for t in ax.texts]
    assert "background" in texts and "7" in texts and "8" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["event", "video", "audio", "text"]
    with pytest.raises(ValueError, match="accepted 0..2"):
        cb.code_timeline(codes, torch.tensor([0, 1, 3, 0]), CLASSES)
    with pytest.raises(ValueError, match="step_labels has 3"):
        cb.code_timeline(codes, torch.tensor([0, 1, 2]), CLASSES)
    with pytest.raises(ValueError, match="no codes for modality"):
        cb.code_timeline(codes, torch.tensor([0, 1, 2, 0]), CLASSES, modalities=("video", "depth"))


def test_code_map_sizes_by_usage_and_colours():
    u = torch.zeros(12, 2, 3, dtype=torch.long)
    u[:6, 0, 0] = torch.arange(1, 7)  # codes 0..5 used by video (dog), 6..11 unused
    u[3, 1, 1] = 10  # code 3 also used by audio, mostly car
    xy = np.stack([np.arange(12.0), np.zeros(12)], 1)
    fig = cb.code_map(torch.randn(12, 4), u, CLASSES, ("video", "audio"), xy=xy)
    ax = fig.axes[0]
    unused, used = ax.collections[:2]
    assert len(unused.get_offsets()) == 6 and len(used.get_offsets()) == 6
    sizes = used.get_sizes()
    assert np.argmax(sizes) == 3 and np.all(np.diff(sizes[[0, 1, 2, 4, 5]]) > 0)  # area grows with use
    colors = used.get_facecolors()
    assert tuple(colors[3][:3]) == pytest.approx(to_rgba(_class_colors(2)[1])[:3])  # code 3: car dominates
    fig2 = cb.code_map(torch.randn(12, 4), u, CLASSES, ("video", "audio"), color_by="modality", xy=xy)
    c2 = fig2.axes[0].collections[1].get_facecolors()
    assert tuple(c2[0][:3]) == pytest.approx(to_rgba(cb.MODALITY_COLORS["video"])[:3])  # video only
    assert not np.allclose(c2[3][:3], c2[0][:3])  # code 3 mixes in audio
    with pytest.raises(ValueError, match="color_by='size'"):
        cb.code_map(torch.randn(12, 4), u, CLASSES, color_by="size")
    with pytest.raises(ValueError, match="11 code vectors for a usage tensor of 12"):
        cb.code_map(torch.randn(11, 4), u, CLASSES)


def test_embed_codes_tsne_is_seeded():
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    a, b = cb.embed_codes(x, seed=1), cb.embed_codes(x, seed=1)
    assert a.shape == (12, 2) and np.allclose(a, b)
    with pytest.raises(ValueError, match="method='pca'"):
        cb.embed_codes(x, "pca")
    with pytest.raises(ValueError, match="K >= 4"):
        cb.embed_codes(torch.randn(3, 4))


def exemplar_data(N: int = 3, T: int = 4) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"video": torch.rand(N, T, 3, 8, 8, generator=g), "audio": torch.randn(N, T, 32, generator=g),
            "text": [[f"caption {n}.{t}" for t in range(T)] for n in range(N)]}


def titles(ax) -> list[str]:
    """The exemplar titles of a `draw_exemplars` row: its texts at the top of the axes."""
    top = ax.get_ylim()[1]
    return [t.get_text() for t in ax.texts if t.get_position()[1] == top]


def test_exemplars_show_each_modalitys_steps_of_the_code():
    codes = {"video": torch.tensor([[5, 1, 5, 2], [5, 0, 0, 0], [0, 0, 0, 0]]),
             "audio": torch.tensor([[0, 5, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
             "text": torch.zeros(3, 4, dtype=torch.long)}
    assert cb.exemplar_steps(codes["video"], 5, 3) == [(0, 0), (1, 0), (0, 2)]  # other sequences first
    fig = cb.code_exemplars(5, codes, exemplar_data(), k=3)
    video, audio, text = fig.axes  # one axes per modality: the rows of `draw_exemplars`
    assert len(video.images) == 3
    assert titles(video) == ["video: seq 0, step 0", "seq 1, step 0", "seq 0, step 2"]
    assert len(audio.lines) == 1 and titles(audio) == ["audio: seq 0, step 1, 32 samples"]  # one audio step
    assert "no step" in text.texts[0].get_text() and not text.images and not text.lines  # text never uses 5
    fig = cb.code_exemplars(0, codes, {"text": exemplar_data()["text"]}, k=2)
    video, audio, text = fig.axes
    assert video.texts[0].get_text() == "video: no exemplars given" and not video.images
    assert titles(text) == ["text: seq 0, step 0", "seq 1, step 0"]
    captions = [t.get_text() for t in text.texts if t.get_text() not in titles(text)]
    assert captions == ["\u201ccaption 0.0\u201d", "\u201ccaption 1.0\u201d"]
    with pytest.raises(ValueError, match="accepted: frames"):
        cb.code_exemplars(0, codes, {"video": torch.rand(3, 4, 5, 8, 8)})
    with pytest.raises(ValueError, match="2 text exemplars for codes of 3 sequences"):
        cb.code_exemplars(0, codes, {"text": exemplar_data()["text"][:2]})
    with pytest.raises(ValueError, match="at least one"):
        cb.code_exemplars(0, codes, {}, k=0)


def test_one_exemplar_drawer_for_the_figure_and_the_explorer(monkeypatch):
    """`code_exemplars` and the explorer's code panel draw their exemplar rows with `draw_exemplars`."""
    import workbench.viz.codebook.exemplars as exemplars

    rows = []
    draw = exemplars.draw_exemplars
    monkeypatch.setattr(exemplars, "draw_exemplars", lambda ax, code, codes, data, m, *a: rows.append(m) or
                        draw(ax, code, codes, data, m, *a))
    codes = {m: torch.zeros(3, 4, dtype=torch.long) for m in ("video", "audio", "text")}
    cb.code_exemplars(0, codes, exemplar_data(), k=2)
    assert rows == ["video", "audio", "text"]
    rows.clear()
    cb.CodebookExplorer(view(), dpi=40)
    assert rows == ["video", "audio", "text"]


def test_figures_do_not_leak_into_pyplot():
    import matplotlib.pyplot as plt

    plt.close("all")
    figs = [cb.usage_histograms(hand_usage()), cb.code_timeline({"video": [1, 2], "audio": [1, 3]}, [0, 2], CLASSES)]
    assert plt.get_fignums() == []
    assert all(f._repr_png_().startswith(b"\x89PNG") for f in figs)  # a notebook shows them without pyplot


# ------------------------------------------------------------------ explorer


def view(checkpoints: int = 2, sequences: int = 3, exemplars: bool = True) -> cb.CodebookView:
    g = torch.Generator().manual_seed(0)
    K, T, mods = 8, 4, ("video", "audio", "text")
    labels = torch.randint(0, 3, (sequences, T), generator=g)
    usages, codes = [], []
    for i in range(checkpoints):
        c = {m: torch.randint(0, K if i == 0 else 3, (sequences, T), generator=g) for m in mods}
        u = torch.zeros(K, 3, 3, dtype=torch.long)
        for j, m in enumerate(mods):
            u[:, j].index_put_((c[m].reshape(-1), labels.reshape(-1)), torch.ones(sequences * T, dtype=torch.long),
                               accumulate=True)
        usages.append(u)
        codes.append(c)
    return cb.CodebookView(usages, codes, labels, CLASSES, mods, steps=[0, 100][:checkpoints],
                           exemplars=exemplar_data(sequences, T) if exemplars else None)


def test_view_checks_its_inputs():
    v = view()
    with pytest.raises(ValueError, match="2 checkpoints but 2 steps and 1 code sets"):
        cb.CodebookView(v.checkpoints, v.codes[:1], v.step_labels, CLASSES, v.modalities, steps=v.steps)
    bad = [dict(c) for c in v.codes]
    bad[1]["audio"] = np.full_like(bad[1]["audio"], 8)
    with pytest.raises(ValueError, match="checkpoint 1: audio codes .* in \\[0, 7\\]"):
        cb.CodebookView(v.checkpoints, bad, v.step_labels, CLASSES, v.modalities)
    with pytest.raises(ValueError, match="exemplars for unknown modality 'depth'"):
        cb.CodebookView(v.checkpoints, v.codes, v.step_labels, CLASSES, v.modalities, exemplars={"depth": []})
    with pytest.raises(ValueError, match="2 text exemplars for 3 sequences"):
        cb.CodebookView(v.checkpoints, v.codes, v.step_labels, CLASSES, v.modalities,
                        exemplars={"text": exemplar_data()["text"][:2]})
    with pytest.raises(ValueError, match="sequence=3; accepted 0..2"):
        cb.CodebookExplorer(v, sequence=3)


def test_explorer_controls_change_the_picture():
    ex = cb.CodebookExplorer(view(), dpi=40)
    c = ex.controls
    assert not any(w.disabled for w in c.values())  # 2 checkpoints, 3 sequences, exemplars: all apply
    first = ex.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and "step <b>0</b>" in ex.info.value
    seen = [first]
    calls = []
    code_png = ex.code_png
    ex.code_png = lambda: calls.append(1) or code_png()
    c["sequence"].value = 2
    assert calls == []  # the code's panel is reused when only the sequence moves
    for name, value in (("code", c["code"].options[1][1]), ("exemplars", 2), ("checkpoint", 1)):
        before = dict(ex.values())
        c[name].value = value
        assert ex.image.value not in seen, f"moving {name} from {before[name]} to {value} drew a picture seen before"
        seen.append(ex.image.value)
    assert len(calls) == 3
    assert ex.values()["code"] == c["code"].value and "step <b>100</b>" in ex.info.value
    top = int(ex.view.checkpoints[1].sum((1, 2)).argmax())
    assert c["code"].options[0][1] == top  # the code list follows the checkpoint's usage
    assert len(ex.seconds) == 5 and all(s > 0 for s in ex.seconds)


def test_explorer_disables_controls_that_do_not_apply():
    ex = cb.CodebookExplorer(view(checkpoints=1, sequences=1, exemplars=False), dpi=40)
    assert ex.controls["checkpoint"].disabled and ex.controls["sequence"].disabled
    assert ex.controls["exemplars"].disabled and not ex.controls["code"].disabled


def test_explorer_shows_a_static_picture_headless(monkeypatch):
    import IPython.display

    box = cb.codebook_explorer(view(), exemplars=1)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setenv("WORKBENCH_STATIC", "1")
    box._ipython_display_()
    assert isinstance(shown[0], IPython.display.Image) and shown[0].data == box.explorer.image.value
    shown.clear()
    monkeypatch.delenv("WORKBENCH_STATIC")
    box._ipython_display_()
    assert "application/vnd.jupyter.widget-view+json" in shown[0]  # the live widget in JupyterLab


def test_model_side_outputs_feed_the_view():
    """What `workbench.methods.codebook` returns (usage tensor, codes, codebook) draws as is."""
    from workbench.methods.codebook import CodebookConfig, UniCode, code_usage

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (4, 5), generator=g)
    feats = {"video": torch.randn(4, 5, 6, generator=g), "audio": torch.randn(4, 5, 3, generator=g)}
    model = UniCode(CodebookConfig(dim=8, codes=16, club=False, cpc=False), {m: x.shape[2:] for m, x in feats.items()},
                    seed=0).eval()
    usage = code_usage(model, feats, step_labels=labels, classes=2)
    with torch.no_grad():
        codes = model.codes(feats)
    v = cb.CodebookView([usage], [codes], labels, CLASSES, model.modalities)
    assert int(usage.sum()) == 2 * labels.numel() and v.n_codes == 16
    fig = cb.code_map(model.codebook(), usage, CLASSES, model.modalities, xy=np.random.rand(16, 2))
    assert len(fig.axes[0].collections[1].get_offsets()) == int((usage.sum((1, 2)) > 0).sum())


def test_grad_norm_axis_is_not_stretched_by_a_tiny_first_step():
    from workbench.viz.codebook import loss_grad_norms
    from workbench.viz.codebook.training import AXIS_DECADES

    fig = loss_grad_norms([1, 2, 3], {"cmcm": [2e-6, 1.0, 2.0], "club": [3.0, 6.0, 5.0]})
    low, high = fig.axes[0].get_ylim()
    assert low == pytest.approx(6.0 * AXIS_DECADES / 1.5) and high == pytest.approx(9.0)  # 4 decades, not 7
    assert "drawn at the floor" in fig.axes[0].texts[0].get_text()
    assert not loss_grad_norms([1, 2], {"club": [1.0, 2.0]}).axes[0].texts  # nothing clipped, no note
