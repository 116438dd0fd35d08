"""The recipe that makes `tiny-world-clip`: contrastive pretraining on the world's `pretrain` split.

    workbench pretrain --out data/tiny-world-clip

Writes open_clip_config.json, open_clip_model.safetensors (fp16), recipe.json and
metrics.json; the folder loads with `load_model("tiny-world-clip")` and with plain
`open_clip.create_model_and_transforms("local-dir:data/tiny-world-clip")`.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import torch

from workbench.checks import Check, atomic_path, check_fields
from workbench.engine import TrainConfig, train
from workbench.eval import zero_shot_accuracy
from workbench.methods.contrastive import ContrastiveObjective
from workbench.models import TINY_MODEL_CFG, build_tiny, load_open_clip_dir
from workbench.models.tiny import TINY_MEAN, TINY_STD
from workbench.world import EVAL_SPLITS, World, WorldConfig


@dataclass(frozen=True)
class PretrainConfig:
    world_seed: Annotated[int, Check(ge=0)] = 0
    seed: Annotated[int, Check(ge=0)] = 0
    steps: int = 7000  # checked by TrainConfig (steps >= 0) and by `workbench pretrain --steps` (>= 1)
    batch_size: Annotated[int, Check(ge=1)] = 60  # a multiple of the pretrain split's group (10), so groups stay whole
    lr: Annotated[float, Check(gt=0)] = 1e-3
    weight_decay: Annotated[float, Check(ge=0)] = 0.1
    warmup: Annotated[float, Check(ge=0, lt=1)] = 0.05
    eval_n: Annotated[int, Check(ge=1)] = 2000  # images per split for the reported zero-shot accuracy
    model_cfg: dict = field(default_factory=lambda: TINY_MODEL_CFG)

    def __post_init__(self):
        check_fields(self)


def pretrain(cfg: PretrainConfig, out_dir: str | Path, progress: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    world = World(WorldConfig(seed=cfg.world_seed))
    model = build_tiny(cfg.model_cfg)
    objective = ContrastiveObjective(model)

    def batches(step: int) -> dict:
        b = world.batch("pretrain", range(step * cfg.batch_size, (step + 1) * cfg.batch_size))
        return {"images": b.images, "tokens": model.tokenize(b.captions)}

    tcfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
                       seed=cfg.seed, log_every=50, checkpoint_every=250)
    t0 = time.perf_counter()
    result = train(objective, batches, tcfg, checkpoint=out / "pretrain_state.pt", progress=progress,
                   desc="pretrain tiny-world-clip")
    train_minutes = result.seconds / 60
    save_tiny(model, cfg, out)
    # evaluate what ships (fp16 weights loaded back), not the fp32 model in memory
    shipped = load_open_clip_dir(out, name="tiny-world-clip")
    acc = {k: round(v, 4) for k, v in zero_shot_accuracy(shipped, world, EVAL_SPLITS, n=cfg.eval_n).items()}
    metrics = {
        "zero_shot_accuracy": acc,
        "train_minutes": round(train_minutes, 2),
        "total_minutes": round((time.perf_counter() - t0) / 60, 2),
        "final_loss": round(result.final_loss, 4),
        "history": result.history,
        "torch_threads": torch.get_num_threads(),
    }
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    (out / "pretrain_state.pt").unlink(missing_ok=True)
    return metrics


def save_tiny(model, cfg: PretrainConfig, out: Path) -> None:
    from safetensors.torch import save_file

    state = {k: (v.half() if v.is_floating_point() else v).contiguous()
             for k, v in model.model.state_dict().items()}
    with atomic_path(out / "open_clip_model.safetensors") as tmp:  # a unique temporary name, then renamed
        save_file(state, str(tmp), metadata={"format": "pt", "recipe": "workbench.pretrain"})
    config = {"model_cfg": cfg.model_cfg,
              "preprocess_cfg": {"mean": list(TINY_MEAN), "std": list(TINY_STD), "interpolation": "bicubic",
                                 "resize_mode": "shortest"}}
    for name, data in (("open_clip_config.json", config), ("recipe.json", asdict(cfg))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(json.dumps(data, indent=1))
