"""Robust fine-tuning methods: invariants of the objectives, WiSE-FT, parameter selection, CAM reuse."""
import pytest
import torch

from workbench.data import WorldSplits
from workbench.methods.cam import compute_cam
from workbench.methods.robust_ft import (
    METHOD_NAMES,
    CrossEntropyObjective,
    FineTuneConfig,
    MaskDistillObjective,
    MaskSpec,
    TeacherCams,
    build_teacher_cams,
    fine_tune,
    frozen_copy,
    logits_with_cam,
    set_trainable,
    text_parameters,
    vision_modules,
    visited_indices,
    wise_ft,
    wise_state,
    with_dependencies,
    zero_shot_classifier,
)
from workbench.models import load_model


@pytest.fixture(scope="module")
def data(world):
    return WorldSplits(world, n_train=16, batch_size=8, seed=0)


@pytest.fixture(scope="module")
def zs(tiny_random, data):
    clf = zero_shot_classifier(tiny_random, data.classnames, data.templates)
    clf.requires_grad_(False)
    return clf.eval()


def _changed(a, b) -> set[str]:
    sa, sb = a.state_dict(), b.state_dict()
    return {k for k in sa if not torch.equal(sa[k], sb[k])}


def _group(name: str) -> str:
    if name.startswith("head."):
        return "head"
    if name.startswith(("model.model.visual.", "model.model.vision_model.", "model.model.visual_projection.")):
        return "vision"  # open_clip, Hugging Face
    return "scale" if name.endswith("logit_scale") else "text"


@pytest.mark.parametrize("method", ["gradcam", "rollout"])
def test_fused_cam_is_compute_cam_and_keeps_the_graph(zs, data, method):
    student = frozen_copy(zs).train()
    set_trainable(student, ["vision", "head"])
    images, labels = data.train_batch(torch.arange(6))
    logits, cam = logits_with_cam(student, images, labels, method)
    assert torch.allclose(cam, compute_cam(student, images, labels, method), atol=1e-5)
    assert torch.allclose(logits, student(images), atol=1e-5)
    assert all(p.grad is None for p in student.parameters())  # the CAM gradient stops at activations
    logits.logsumexp(-1).sum().backward()  # ... and the CE graph is still there
    assert all(p.grad is not None for p in vision_modules(student.model)[0].parameters())


def test_wise_state_endpoints_midpoint_and_errors(zs):
    ft = frozen_copy(zs)
    with torch.no_grad():
        for p in ft.parameters():
            p.add_(torch.randn_like(p))
    a, b = zs.state_dict(), ft.state_dict()
    for k, v in wise_state(a, b, 0.0).items():
        assert torch.equal(v, a[k])
    for k, v in wise_state(a, b, 1.0).items():
        assert torch.equal(v, b[k])
    mid = wise_state(a, b, 0.5)
    k = "head.weight"
    assert torch.allclose(mid[k], (a[k] + b[k]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="alpha=1.5"):
        wise_state(a, b, 1.5)
    with pytest.raises(ValueError, match="different keys"):
        wise_state({k: a[k]}, b, 0.5)
    images, _ = (torch.rand(2, 3, 64, 64), None)
    assert torch.allclose(wise_ft(zs, ft, 0.0)(images), zs(images), atol=1e-5)


def test_set_trainable_parts_partition_the_model(zs, tiny_hf_config):
    clf = frozen_copy(zs)
    n_all = sum(p.numel() for p in clf.parameters())
    counts = {part: set_trainable(clf, [part]) for part in ("vision", "text", "head")}
    assert sum(counts.values()) + 1 == n_all  # everything but the logit scale
    set_trainable(clf, ["vision", "head"])
    assert {_group(n) for n, p in clf.named_parameters() if p.requires_grad} == {"vision", "head"}
    hf = load_model(tiny_hf_config)
    vis = {id(p) for m in vision_modules(hf) for p in m.parameters()}
    txt = {id(p) for p in text_parameters(hf)}
    assert not vis & txt and len(vis) + len(txt) + 1 == len(list(hf.parameters()))
    with pytest.raises(ValueError, match="accepted: vision, text, head"):
        set_trainable(clf, ["neck"])


CFG = FineTuneConfig(steps=2, lr=1e-3, log_every=1)


@pytest.mark.parametrize("method,parts", [("linear_probe", {"head"}), ("full_ft", {"vision", "head"}),
                                          ("fd", {"vision", "head"}),
                                          ("mask_fd", {"vision", "head"}), ("flyp", {"vision", "text", "head"})])
def test_each_method_trains_only_its_parts(zs, data, method, parts):
    before = {k: v.clone() for k, v in zs.state_dict().items()}
    run = fine_tune(method, zs, data, CFG, progress=False)
    assert {_group(k) for k in _changed(run.classifier, zs)} == parts
    assert all(torch.equal(v, before[k]) for k, v in zs.state_dict().items())  # the start is untouched
    assert len(run.train.history) == 2 and run.seconds_per_step > 0
    if method == "flyp":  # the head is rebuilt from the tuned text tower
        rebuilt = run.classifier.model.zero_shot_head(data.classnames, data.templates)
        assert torch.allclose(run.classifier.head.weight, rebuilt.weight, atol=1e-6)


def test_lp_ft_starts_from_the_probe_and_same_seed_same_numbers(zs, data):
    lp = fine_tune("linear_probe", zs, data, CFG, progress=False).classifier
    start = fine_tune("lp_ft", zs, data, FineTuneConfig(steps=0), init=lp, progress=False).classifier
    assert torch.equal(start.head.weight, lp.head.weight) and not torch.equal(lp.head.weight, zs.head.weight)
    a = fine_tune("lp_ft", zs, data, CFG, init=lp, progress=False)
    b = fine_tune("lp_ft", zs, data, CFG, init=lp, progress=False)
    assert [h["loss"] for h in a.train.history] == [h["loss"] for h in b.train.history]


def _objective(zs, spec, source="student", cams=None, w=30.0):
    student = frozen_copy(zs).train()
    set_trainable(student, ["vision", "head"])
    return MaskDistillObjective(student, frozen_copy(zs), w, spec, source, cams, seed=1)


@pytest.mark.parametrize("cam_method", ["gradcam", "rollout"])
def test_student_and_cached_cams_agree_while_student_is_teacher(zs, data, cam_method):
    spec = MaskSpec(cam_method=cam_method)
    cams = build_teacher_cams(zs, data, torch.arange(data.train_size), cam_method, progress=False)
    student_cam, cached = _objective(zs, spec), _objective(zs, spec, "cached", cams)
    batch = data.batches(0)
    a, b = student_cam(**batch, step=0), cached(**batch, step=0)
    assert torch.allclose(a.loss, b.loss, atol=1e-5)
    assert a.metrics["masked"] == b.metrics["masked"] and 0 < float(a.metrics["masked"]) < 1
    assert a.metrics["distill"] > 0  # masked images are where student and teacher could differ
    assert torch.equal(student_cam(**batch, step=0).loss, a.loss)  # same (seed, step), same masks


def test_w0_is_plain_cross_entropy_and_fraction_shrinks_the_masked_pass(zs, data):
    batch = data.batches(1)
    obj = _objective(zs, MaskSpec(cam_method="gradcam"), w=0.0)
    ce = CrossEntropyObjective(obj.student)
    assert torch.allclose(obj(**batch, step=3).loss, ce(batch["images"], batch["labels"]).loss, atol=1e-6)
    seen = []
    obj.teacher.model.model.visual.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    obj.distill_fraction = 0.5
    obj(**batch, step=3)
    assert seen == [4]


def test_random_masks_need_no_cam(zs, data):
    spec = MaskSpec(kind="random", p=0.5)
    out = _objective(zs, spec, "cached")(**data.batches(0), step=0)
    assert 0.2 < float(out.metrics["masked"]) < 0.8


def test_an_unreadable_teacher_cam_cache_is_set_aside_and_rebuilt(zs, data, tmp_path):
    file = tmp_path / "cams.pt"
    file.write_bytes(b"")  # a 0-byte file, as an interrupted copy leaves
    idx = visited_indices(data, 1)
    with pytest.warns(RuntimeWarning, match="unreadable.*set aside as cams.pt.corrupt"):
        cams = build_teacher_cams(zs, data, idx, "gradcam", cache_file=file, progress=False)
    assert cams.done.sum() == len(idx) and (tmp_path / "cams.pt.corrupt").is_file()
    assert torch.equal(build_teacher_cams(zs, data, idx, "gradcam", cache_file=file, progress=False).cams, cams.cams)


def test_teacher_cams_cache_file_and_lookup(zs, data, tmp_path):
    file = tmp_path / "cams.pt"
    idx = visited_indices(data, 1)
    cams = build_teacher_cams(zs, data, idx, "gradcam", cache_file=file, progress=False)
    assert cams.done.sum() == len(idx) and file.is_file()
    again = build_teacher_cams(zs, data, idx, "gradcam", cache_file=file, progress=False)
    assert torch.equal(again.cams, cams.cams) and again.seconds == cams.seconds
    images, labels = data.train_batch(idx[:3])
    assert torch.allclose(again.lookup(idx[:3]), compute_cam(zs, images, labels, "gradcam"), atol=1e-6)
    missing = torch.tensor(sorted(set(range(data.train_size)) - set(idx.tolist()))[:1])
    if len(missing):
        with pytest.raises(KeyError, match="no cached teacher CAM"):
            again.lookup(missing)
    with pytest.raises(IndexError):
        TeacherCams.empty(4, 8, "gradcam").lookup(torch.tensor([4]))


def test_bad_input_names_the_value(zs, data, world):
    with pytest.raises(ValueError, match="'nope'.*accepted"):
        fine_tune("nope", zs, data, CFG)
    with pytest.raises(ValueError, match="not trained"):
        fine_tune("wise_ft", zs, data, CFG)
    with pytest.raises(ValueError, match="linear probe"):
        fine_tune("lp_ft", zs, data, CFG)
    with pytest.raises(ValueError, match="teacher_cams"):
        fine_tune("mask_fd_cached", zs, data, CFG)
    with pytest.raises(ValueError, match="32px"):
        fine_tune("full_ft", zs, WorldSplits(world, n_train=8, batch_size=4, image_size=32), CFG)
    for kwargs, match in [({"threshold": 1.0}, "threshold=1.0"), ({"kind": "blob"}, "'blob'"),
                          ({"fill": "black"}, "'black'"), ({"cam_method": "ScoreCAM"}, "'ScoreCAM'")]:
        with pytest.raises(ValueError, match=match):
            MaskSpec(**kwargs)
    with pytest.raises(ValueError, match="distill_fraction=0"):
        MaskDistillObjective(zs, zs, distill_fraction=0)
    assert with_dependencies(["wise_ft", "lp_ft"]) == ("full_ft", "wise_ft", "linear_probe", "lp_ft")
    assert set(METHOD_NAMES) >= {"zero_shot", "linear_probe", "full_ft", "lp_ft", "wise_ft", "flyp", "fd", "mask_fd"}


def test_masking_step_benchmark_runs(tmp_path):
    """The benchmark script stays runnable (a smoke run on 4 images; timings are not checked)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_masking_step.py"
    spec = importlib.util.spec_from_file_location("bench_masking_step", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--batch", "4", "--repeats", "1", "--warmup", "0", "--out", str(tmp_path / "b.json")])
    names = [r["variant"] for r in out["rows"]]
    assert names[0] == "ft" and "mask_fd[cached]" in names and (tmp_path / "b.json").is_file()
    assert all(r["seconds_per_step"] > 0 for r in out["rows"])


@pytest.mark.parametrize("cam_method", ["gradcam", "rollout"])
def test_masked_distillation_on_a_hugging_face_clip(world, tiny_hf_config, cam_method):
    hf = load_model(tiny_hf_config)
    data32 = WorldSplits(world, n_train=8, batch_size=4, image_size=hf.image_size)
    zs = zero_shot_classifier(hf, data32.classnames, data32.templates)
    zs.requires_grad_(False)
    images, labels = data32.train_batch(torch.arange(4))
    student = frozen_copy(zs)
    set_trainable(student, ["vision", "head"])
    _, cam = logits_with_cam(student, images, labels, cam_method)
    assert torch.allclose(cam, compute_cam(student, images, labels, cam_method), atol=1e-5)
    cfg = FineTuneConfig(steps=1, mask=MaskSpec(cam_method=cam_method))
    run = fine_tune("mask_fd", zs, data32, cfg, progress=False)
    assert {_group(k) for k in _changed(run.classifier, zs)} == {"vision", "head"}
    assert 0.0 <= run.train.history[0]["masked"] <= 1.0


def test_mask_fd_half_is_mask_fd_distilling_half_of_each_batch(zs, data):
    import dataclasses

    cfg = FineTuneConfig(steps=2, seed=3)
    half = fine_tune("mask_fd_half", zs, data, cfg, progress=False).classifier
    explicit = fine_tune("mask_fd", zs, data, dataclasses.replace(cfg, distill_fraction=0.5), progress=False)
    full = fine_tune("mask_fd", zs, data, cfg, progress=False).classifier
    assert _changed(half, explicit.classifier) == set()
    assert _changed(half, full)  # distilling half the batch is a different step
