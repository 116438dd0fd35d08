"""Study 04's methods: id -> how a cell builds (and trains) its model and what it measures.

`sweep` says over what a method's cells run: "k" (cfg.shared_layers), "default_k" (cfg.default_k
only), "temperature" (cfg.temperatures), "seed" (no setting: one cell per seed), "none" (one cell, no
training, no seed).

    dual_encoder   tiny-world-clip as it is; a clip is the mean of its frames' embeddings
    modular        the modular model trained on the task mixture from the tiny towers, temporal on
    no_temporal    the same at k = default_k without the temporal modules (clips: frame mean)
    direction      tiny-world-clip's vision encoder with temporal modules trained for direction alone
    direction_off  the same without temporal modules (frame mean): what a direct signal can teach each
    temperature    the dual encoder fine-tuned contrastively at a fixed temperature ("Mind the Gap")
"""
from __future__ import annotations

from .. import kit
from .dual import DualEncoder, DualOutput

__all__ = ["METHODS", "DualEncoder", "DualOutput"]

METHODS = kit.Registry("module_selection")


@METHODS.register("dual_encoder", "tiny-world-clip (frame-mean clips)", sweep="none")
def _dual_encoder(ctx, cell: kit.Cell) -> dict:
    from .cells import dual_encoder_cell  # the cells import the config, which imports this registry
    return dual_encoder_cell(ctx, cell)


@METHODS.register("modular", "modular model, temporal on", sweep="k")
def _modular(ctx, cell: kit.Cell) -> dict:
    from .cells import modular_cell
    return modular_cell(ctx, cell, temporal=True)


@METHODS.register("no_temporal", "modular model, temporal off (frame mean)", sweep="default_k")
def _no_temporal(ctx, cell: kit.Cell) -> dict:
    from .cells import modular_cell
    return modular_cell(ctx, cell, temporal=False)


@METHODS.register("direction", "vision encoder trained for direction alone, temporal on", sweep="seed")
def _direction(ctx, cell: kit.Cell) -> dict:
    from .cells import direction_cell
    return direction_cell(ctx, cell, temporal=True)


@METHODS.register("direction_off", "vision encoder trained for direction alone, frame mean", sweep="seed")
def _direction_off(ctx, cell: kit.Cell) -> dict:
    from .cells import direction_cell
    return direction_cell(ctx, cell, temporal=False)


@METHODS.register("temperature", "dual encoder at a fixed temperature", sweep="temperature")
def _temperature(ctx, cell: kit.Cell) -> dict:
    from .cells import temperature_cell
    return temperature_cell(ctx, cell)
