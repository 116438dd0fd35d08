"""Study 04's methods: id -> how a cell builds (and trains) its model and what it measures.

`sweep` names the Config field a method's cells run over: "shared_layers" (k), "default_ks" (the
paper's k only), "unshared_ks" (Config.unshared_layers, default the paper's k), "temperatures"; none: one
cell per seed;
unseeded: one cell, no training, no seed.

    dual_encoder   tiny-world-clip as it is; a clip is the mean of its frames' embeddings
    modular        the modular model trained on the task mixture from the tiny towers, temporal on
    modular_unshared  the same with the universal layers as deep copies of the text blocks (the same
                   parameter count, not shared with text): the capacity-matched control, at the k of
                   Config.unshared_layers (default: default_k; never 0: nothing to copy, it is modular@0)
    no_temporal    optional: the same at k = default_k without the temporal modules (clips: frame mean);
                   direction with and without temporal modules is the direction cells' question (MP-6)
    direction      tiny-world-clip's vision encoder with temporal modules trained for direction alone
    direction_off  the same without temporal modules (frame mean): what a direct signal can teach each
    temperature    the dual encoder fine-tuned contrastively at a fixed temperature ("Mind the Gap")
    trivial        every task without the media: majority answer, most frequent caption slots, majority
                   class, chance retrieval (unseeded; the floor each task must clear to count as learned)
    alone          optional: the modular model trained on one task alone for the mixture's steps (sweep:
                   tasks), what each task reaches without sharing its steps
"""
from __future__ import annotations

from .. import kit
from .cells import Context, alone_cell, direction_cell, dual_encoder_cell, modular_cell, temperature_cell, trivial_cell
from .dual import DualEncoder, DualOutput

__all__ = ["METHODS", "DualEncoder", "DualOutput"]

METHODS = kit.Registry("module_selection")


@METHODS.register("dual_encoder", "tiny-world-clip (frame-mean clips)", seeded=False)
def _dual_encoder(ctx: Context, cell: kit.Cell) -> dict:
    return dual_encoder_cell(ctx, cell)


@METHODS.register("modular", "modular model, temporal on", sweep="shared_layers")
def _modular(ctx: Context, cell: kit.Cell) -> dict:
    return modular_cell(ctx, cell, temporal=True)


@METHODS.register("modular_unshared", "modular model, universal layers as unshared copies", sweep="unshared_ks")
def _modular_unshared(ctx: Context, cell: kit.Cell) -> dict:
    return modular_cell(ctx, cell, temporal=True, shared=False)


@METHODS.register("no_temporal", "modular model, temporal off (frame mean)", sweep="default_ks", optional=True)
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


@METHODS.register("trivial", "no media: majority answer, most frequent caption slots, chance", seeded=False)
def _trivial(ctx: Context, cell: kit.Cell) -> dict:
    return trivial_cell(ctx, cell)


@METHODS.register("alone", "modular model trained on one task alone", sweep="tasks", optional=True)
def _alone(ctx: Context, cell: kit.Cell) -> dict:
    return alone_cell(ctx, cell)
