"""benchmarks/gpu.py end to end on the CPU preset, its argument errors and peak table, and the engine's
scale-path switches (fused AdamW, channels-last, torch.compile, the first-step-only pixel check)."""
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from workbench.engine import Loss, TrainConfig, inputs_trusted, train, trusted_inputs
from workbench.models import check_pixels

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
PARTS = ("vit_ft", "masking", "adapter", "gradcam", "world", "codebook")


@pytest.fixture(scope="module")
def gpu_module():
    sys.path.insert(0, str(BENCH))
    try:
        import gpu

        yield gpu
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def cpu_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "gpu_cpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--preset", "cpu-small", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(out.read_text()), proc.stdout


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_cpu_preset_writes_every_part(cpu_result):
    res, stdout = cpu_result
    assert res["errors"] == {}
    assert set(PARTS) <= set(res["measurements"])
    assert res["device"]["kind"] == "cpu" and res["device"]["name"].startswith("cpu")
    assert res["torch"] == torch.__version__ and res["precision"] == "fp32" and res["preset"] == "cpu-small"
    assert res["peak_bf16_tflops"] is None and "CPU" in res["peak_source"]
    assert "vit_ft_mfu" in res["targets"] and "targets do not apply" in res["targets_note"]
    assert "-> " in stdout and "images/s" in stdout


def test_cpu_numbers_are_finite_and_positive(cpu_result):
    m = cpu_result[0]["measurements"]
    ft = m["vit_ft"]
    assert ft["batch"] == 4 and ft["mfu"] is None  # no peak on a CPU: MFU is not made up
    assert all(_positive(v) for v in (ft["images_per_s"], ft["flops_per_step"], ft["flops_per_image"],
                                      *ft["seconds_per_step"].values()))
    assert ft["host_syncs"]["status"] == "not applicable"
    assert ft["torch_compile"]["used"] is False and ft["torch_compile"]["why"]
    mk = m["masking"]
    assert _positive(mk["floor_flops"]) and _positive(mk["floor_seconds"])
    for v in mk["variants"].values():
        assert all(_positive(v[k]) for k in ("seconds_per_step", "ratio_to_ft", "flops_per_step", "ratio_to_floor"))
        assert v["flops_over_floor"] >= 0.99  # a masked step does at least the floor's work
    ad = m["adapter"]
    for row in ad["train"].values():
        assert all(_positive(row[k]) for k in ("mode_approx_params", "lora_params", "ratio_mode_approx_over_lora"))
        assert 0.8 < row["lora_over_mode_approx_params"] < 1.25  # matched parameters
    assert all(_positive(v) for v in (ad["ratio_merged_over_base"], *ad["inference_seconds"].values()))
    cam = m["gradcam"]
    assert all(_positive(v) for v in cam["images_per_s"].values()) and _positive(cam["ratio_ours_over_library"])
    assert cam["maps_fp32"]["agree"] and cam["maps_fp32"]["max_abs_diff"] < 1e-3
    assert _positive(m["world"]["ratio_world_over_step"])
    cb = m["codebook"]
    assert cb["why"] if cb["skipped"] else all(_positive(v) for v in cb["seconds"].values())


def test_bad_preset_and_part_are_named(gpu_module, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_module.parse(["--preset", "cpu-huge"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unknown preset 'cpu-huge'; accepted: auto, gpu, cpu-small" in err
    with pytest.raises(SystemExit):
        gpu_module.parse(["--only", "vit_ft", "warp"])
    assert "unknown part(s) 'warp'; accepted: vit_ft" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_module.parse(["--batch", "1"])
    assert "--batch 1" in capsys.readouterr().err


def test_peak_table_matches_device_names(gpu_module):
    from gpu_parts.common import lookup_peak, mfu

    assert lookup_peak("NVIDIA H200")[0] == 989.0
    assert lookup_peak("NVIDIA H100 80GB HBM3")[0] == 989.0
    assert lookup_peak("NVIDIA H100 PCIe")[0] == 756.0
    assert lookup_peak("NVIDIA A100-SXM4-80GB")[0] == 312.0
    assert lookup_peak("NVIDIA L40S")[0] == 362.0 and lookup_peak("NVIDIA L4")[0] == 121.0
    assert lookup_peak("NVIDIA A10G")[0] is None  # listed as unknown rather than matched to the A10
    peak, why = lookup_peak("Some Future GPU")
    assert peak is None and "--peak-tflops" in why
    assert mfu(10**12, 1.0, None) is None and mfu(989 * 10**12, 2.0, 989.0) == pytest.approx(0.5)


def test_batch_search_and_compile_branch_on_cpu(gpu_module):
    """The gpu preset's paths a CPU run never takes: the batch search and the compiled step (eager backend)."""
    from gpu_parts.common import PRESETS, device_info
    from gpu_parts.finetune import measure_ft

    from workbench.engine import make_accelerator

    torch.set_num_threads(1)
    preset = replace(PRESETS["cpu-small"], batch=None, batch_candidates=(2, 4), compile="eager", repeats=1)
    out = measure_ft(make_accelerator("no"), preset, device_info())
    ft = out["vit_ft"]
    assert [r["batch"] for r in ft["batch_search"]] == [2, 4] and ft["batch"] in (2, 4)
    assert all(_positive(r["images_per_s"]) for r in ft["batch_search"])
    assert set(ft["seconds_per_step"]) == {"eager", "compiled"} and ft["torch_compile"]["backend"] == "eager"
    assert ft["headline"] in ("eager", "compiled") and ft["torch_compile"]["used"] == (ft["headline"] == "compiled")
    assert out["masking"]["batch"] == ft["batch"]


# ---- the engine's scale path


class PixelRegression(nn.Module):
    """An objective that checks its pixels as a model's encode_image does."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 2, stride=2)
        self.head = nn.Linear(4 * 4 * 4, 1)

    def forward(self, images, y):
        check_pixels(images)
        return Loss(((self.head(self.conv(images).flatten(1)).squeeze(-1) - y) ** 2).mean())


def _batches(bad_at: int | None = None):
    def f(step):
        g = torch.Generator().manual_seed(step)
        x = torch.rand(8, 3, 8, 8, generator=g)
        if step == bad_at:
            x = x * 255
        return {"images": x, "y": x.mean((1, 2, 3))}
    return f


def _trained(cfg: TrainConfig, bad_at: int | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = PixelRegression()
    train(model, _batches(bad_at), cfg, progress=False)
    return model


def test_trusted_inputs_skips_only_the_range_and_restores():
    bad = torch.full((1, 3, 4, 4), 255.0)
    with pytest.raises(ValueError, match=r"\[255, 255\]"):
        check_pixels(bad)
    with trusted_inputs():
        assert inputs_trusted()
        check_pixels(bad)  # the range is not read inside the block
        with pytest.raises(TypeError, match="uint8"):
            check_pixels(bad.to(torch.uint8))  # the type check always runs
        with trusted_inputs(False):
            with pytest.raises(ValueError):
                check_pixels(bad)
    assert not inputs_trusted()
    with pytest.raises(ValueError):
        check_pixels(bad)


def test_engine_pixel_checks_first_or_every_step():
    cfg = TrainConfig(steps=4, lr=1e-2, log_every=100)
    with pytest.raises(ValueError, match=r"accepted: pixels in \[0, 1\]"):
        _trained(replace(cfg, input_checks="first"), bad_at=0)
    with pytest.raises(ValueError, match=r"accepted: pixels in \[0, 1\]"):
        _trained(replace(cfg, input_checks="every"), bad_at=2)
    # "first": later batches are trusted (the GPU's hot loop); "auto" on a CPU checks every step
    _trained(replace(cfg, input_checks="first"), bad_at=2)
    with pytest.raises(ValueError):
        _trained(cfg, bad_at=2)
    assert not inputs_trusted()
    with pytest.raises(ValueError, match=r"input_checks='sometimes'; accepted: one of auto, every, first"):
        TrainConfig(input_checks="sometimes")


@pytest.mark.parametrize("option", [{"fused_adamw": True}, {"channels_last": True}, {"compile": "eager"}])
def test_scale_switches_train_the_same_numbers(option):
    cfg = TrainConfig(steps=6, lr=1e-2, log_every=100, seed=1)
    ref, other = _trained(cfg), _trained(replace(cfg, **option))
    for (n, p), q in zip(ref.named_parameters(), other.parameters()):
        assert torch.allclose(p, q, atol=1e-5), n


def test_execution_options_do_not_block_resuming(tmp_path):
    cfg = TrainConfig(steps=4, lr=1e-2, log_every=100, seed=1)
    torch.manual_seed(0)
    model = PixelRegression()
    train(model, _batches(), replace(cfg, steps=4), checkpoint=tmp_path / "c.pt", progress=False)
    again = train(model, _batches(), replace(cfg, fused_adamw=True, input_checks="every"),
                  checkpoint=tmp_path / "c.pt", progress=False)
    assert again.resumed_from == 4
