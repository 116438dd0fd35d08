import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch


@pytest.fixture(scope="session")
def world():
    from workbench.world import World

    return World()


@pytest.fixture(scope="session")
def tiny_random():
    """tiny-world-clip's architecture with random weights (seeded)."""
    from workbench.models import build_tiny

    torch.manual_seed(0)
    return build_tiny().eval()


@pytest.fixture(scope="session")
def tiny_hf_config():
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=24, vocab_size=49408),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32,
    )


@pytest.fixture
def reference_threads(monkeypatch):
    """Give the notebook kernel the thread count its committed reference was recorded with.

    torch splits float reductions by thread count, so losses match a reference to the last digit only
    at its thread count; the kernel inherits OMP_NUM_THREADS.
    """
    from workbench import compare
    from workbench.runner import NOTEBOOKS_DIR

    def pin(number: str) -> None:
        stems = compare.notebooks_in(NOTEBOOKS_DIR / "reference")
        stem = next((s for s in stems if s.startswith(f"{number}_")), None)
        env = compare.reference_environment(NOTEBOOKS_DIR / "reference", stem) if stem else None
        if env and env.get("threads"):
            monkeypatch.setenv("OMP_NUM_THREADS", str(env["threads"]))
            monkeypatch.setenv("MKL_NUM_THREADS", str(env["threads"]))

    return pin


@pytest.fixture
def run_quick(tmp_path, monkeypatch, reference_threads):
    """Run one notebook headlessly in quick mode with a fresh cell cache; (summary, its result, result.json, params).

    Before data/tiny-world-clip exists the notebook gets a seeded random tiny model (params["pretrained"]).
    """
    import json

    from workbench.models import TINY_DIR
    from workbench.runner import run_notebooks

    def run(stem: str):
        monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # the kernel inherits it: a fresh sweep
        reference_threads(stem)
        params = {}
        if not (TINY_DIR / "open_clip_config.json").is_file():
            from workbench.models import build_tiny
            from workbench.pretrain import PretrainConfig, save_tiny

            torch.manual_seed(0)
            (tmp_path / "tiny").mkdir()
            save_tiny(build_tiny(), PretrainConfig(), tmp_path / "tiny")
            params["pretrained"] = str(tmp_path / "tiny")
        summary = run_notebooks([stem], quick=True, params=params, runs_dir=tmp_path / "runs", progress=False)
        assert summary.ok, summary.verdict() + "\n" + (summary.results[0].traceback or "")
        res = summary.results[0]
        return summary, res, json.loads((res.output_dir / "result.json").read_text()), params

    return run


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one thread is faster than two fighting (and than spinning on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
