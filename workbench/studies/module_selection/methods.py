"""Study 04's methods: id -> how a cell builds (and trains) its model and what it measures.

`sweep` names the Config field a method's cells run over: "shared_layers" (k), "default_ks" (the
paper's k only), "temperatures"; none: one cell per seed; unseeded: one cell, no training, no seed.

    dual_encoder   tiny-world-clip as it is; a clip is the mean of its frames' embeddings
    modular        the modular model trained on the task mixture from the tiny towers, temporal on
    no_temporal    the same at k = default_k without the temporal modules (clips: frame mean)
    direction      tiny-world-clip's vision encoder with temporal modules trained for direction alone
    direction_off  the same without temporal modules (frame mean): what a direct signal can teach each
    temperature    the dual encoder fine-tuned contrastively at a fixed temperature ("Mind the Gap")
"""
from __future__ import annotations

from .. import kit
from .cells import Context, direction_cell, dual_encoder_cell, modular_cell, temperature_cell
from .dual import DualEncoder, DualOutput

__all__ = ["METHODS", "DualEncoder", "DualOutput"]

METHODS = kit.Registry("module_selection")


@METHODS.register("dual_encoder", "tiny-world-clip (frame-mean clips)", seeded=False)
def _dual_encoder(ctx: Context, cell: kit.Cell) -> dict:
    return dual_encoder_cell(ctx, cell)


@METHODS.register("modular", "modular model, temporal on", sweep="shared_layers")
def _modular(ctx: Context, cell: kit.Cell) -> dict:
    return modular_cell(ctx, cell, temporal=True)


@METHODS.register("no_temporal", "modular model, temporal off (frame mean)", sweep="default_ks")
def _no_temporal(ctx: Context, cell: kit.Cell) -> dict:
    return modular_cell(ctx, cell, temporal=False)


@METHODS.register("direction", "vision encoder trained for direction alone, temporal on")
def _direction(ctx: Context, cell: kit.Cell) -> dict:
    return direction_cell(ctx, cell, temporal=True)


@METHODS.register("direction_off", "vision encoder trained for direction alone, frame mean")
def _direction_off(ctx: Context, cell: kit.Cell) -> dict:
    return direction_cell(ctx, cell, temporal=False)


@METHODS.register("temperature", "dual encoder at a fixed temperature", sweep="temperatures")
def _temperature(ctx: Context, cell: kit.Cell) -> dict:
    return temperature_cell(ctx, cell)
