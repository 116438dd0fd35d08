"""The world: a seeded procedural generator of scenes, clips and sounds with ground truth.

    world = World(WorldConfig(seed=0))
    batch = world.batch("finetune", range(128))   # SceneBatch: images, masks, labels, captions
    clips = world.clips("pretrain", range(16))    # ClipBatch: frames, motion direction, audio

Every sample is a pure function of (seed, split, index): see `rng.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F

from workbench.checks import BadValue, Check, check_fields, check_number

from . import captions as cap
from .contexts import CONTEXT_NAMES, CONTEXTS, SEEN_CONTEXTS, UNSEEN_CONTEXTS, texture_bank
from .rng import sample_seeds, stream_key, uniforms
from .shapes import ALL_CLASSES, NOVEL_CLASSES, PRETRAIN_CLASSES, shape_masks


@dataclass(frozen=True)
class SplitSpec:
    """How a split draws its scenes."""

    classes: Literal["pretrain", "all", "novel"] = "pretrain"
    contexts: Literal["all", "seen", "unseen"] = "all"
    tie: Literal["none", "tied", "flipped"] = "none"  # class -> context coupling
    style: Literal["photo", "sketch", "mixed"] = "photo"
    # Scenes come in groups of `group` consecutive indices that share context and colour (a
    # photographer's roll: same place, same paint, different objects). Over the split, context
    # and colour stay independent of the class; inside a contrastive batch, groups make captions
    # that differ only in the object name, so the shortcut of matching colour and background is
    # not enough and the model has to learn shape. Labels cycle through the split's classes, so a
    # group as long as the class list holds each class exactly once: no two captions in a group
    # name the same object, and the contrastive loss sees no false negatives inside it.
    group: int = 1


SPLITS: dict[str, SplitSpec] = {
    "pretrain": SplitSpec("pretrain", "all", "none", "mixed", group=len(PRETRAIN_CLASSES)),
    "heldout": SplitSpec("pretrain", "all", "none", "photo"),  # balanced, never trained on
    "finetune": SplitSpec("pretrain", "seen", "tied", "photo"),
    "id_test": SplitSpec("pretrain", "seen", "tied", "photo"),
    "ood_flipped": SplitSpec("pretrain", "seen", "flipped", "photo"),
    "ood_unseen": SplitSpec("pretrain", "unseen", "none", "photo"),
    "ood_style": SplitSpec("pretrain", "all", "none", "sketch"),
    "novel_train": SplitSpec("all", "all", "none", "photo"),
    "novel_test": SplitSpec("all", "all", "none", "photo"),
}
EVAL_SPLITS = ("heldout", "id_test", "ood_flipped", "ood_unseen", "ood_style")
SplitName = Literal[tuple(SPLITS)]  # a Config field naming a split: `split: SplitName = "heldout"`

# Columns of the per-sample uniform table.
_CTX, _TIE, _COLOR, _JIT, _SIZE, _ANGLE, _CX, _CY, _STYLE, _TPL, _CROPX, _CROPY, _FLIP, _BRIGHT, \
    _DIR, _SPEED, _PITCH = 0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18
_N_FIELDS = 19


@dataclass(frozen=True)
class WorldConfig:
    """The world's knobs; each field declares what it accepts (workbench.checks), checked on construction."""

    seed: Annotated[int, Check(ge=0)] = 0
    image_size: Annotated[int, Check(ge=16, note="pixels; smaller objects would not render")] = 64
    # P(class shown on its own context) in the tied splits
    p_tie: Annotated[float, Check(ge=0, le=1, note="a probability")] = 0.95
    # share of sketches in `pretrain` (the "web" has some drawings)
    sketch_share: Annotated[float, Check(ge=0, le=1, note="a share of the images")] = 0.1
    # object radius / image side: (smallest, largest); 0.5 would touch the image's edges
    size_range: Annotated[tuple[float, float], Check(gt=0, lt=0.5, note="(smallest, largest) object radius / "
                                                     "image side, smallest <= largest")] = (0.16, 0.3)
    # degrees either way: pose varies, but a star stays upright-ish
    max_rotation: Annotated[float, Check(ge=0, le=180, note="degrees either way")] = 30.0
    # A dark rim around every object (pixels, 0 = none), like the contour of a cut-out sticker:
    # without it a small ViT needs many times more steps to see shapes on busy textures.
    rim: Annotated[int, Check(ge=0, note="pixels, 0 = none")] = 1
    # Contexts are shown as a soft backdrop: half desaturated, lighter, this much of their
    # contrast. Still unmistakable (grass stays green and grassy), but the object pops out;
    # at full contrast the tiny ViT learned shapes about half as fast per step.
    backdrop_contrast: Annotated[float, Check(ge=0, le=1, note="0: flat backdrop, 1: the texture at full "
                                              "contrast")] = 0.35

    def __post_init__(self):
        check_fields(self)
        lo, hi = self.size_range
        if lo > hi:
            raise BadValue(f"WorldConfig.size_range={self.size_range!r}: the smallest radius is above the largest; "
                           "accepted: (smallest, largest) with smallest <= largest, each in (0, 0.5)")


@dataclass
class Latents:
    """Everything that decides one scene, per sample (all tensors of shape (B,))."""

    index: torch.Tensor
    label: torch.Tensor  # index into ALL_CLASSES
    context: torch.Tensor  # index into CONTEXT_NAMES
    color: torch.Tensor  # index into COLOR_NAMES
    rgb: torch.Tensor  # (B, 3)
    radius: torch.Tensor  # pixels
    angle: torch.Tensor  # radians
    cx: torch.Tensor
    cy: torch.Tensor
    sketch: torch.Tensor  # bool
    u: np.ndarray = field(repr=False)  # (B, _N_FIELDS) the raw uniforms


@dataclass
class SceneBatch:
    images: torch.Tensor  # (B, 3, H, W) in [0, 1]
    masks: torch.Tensor  # (B, H, W) bool, True on the object
    labels: torch.Tensor  # (B,) index into World.classes
    contexts: torch.Tensor  # (B,) index into World.contexts
    colors: torch.Tensor  # (B,) index into COLOR_NAMES
    sketch: torch.Tensor  # (B,) bool
    captions: list[str]
    index: torch.Tensor  # (B,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ClipBatch:
    frames: torch.Tensor  # (B, T, 3, H, W)
    masks: torch.Tensor  # (B, T, H, W)
    labels: torch.Tensor  # (B,)
    contexts: torch.Tensor  # (B,)
    direction: torch.Tensor  # (B,) index into DIRECTIONS
    audio: torch.Tensor  # (B, T, L // T): the object's sound, cut into one segment per frame
    captions: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def _check_split(name: str) -> SplitSpec:
    if name not in SPLITS:
        raise KeyError(f"unknown split {name!r}; the world has: {', '.join(SPLITS)}")
    return SPLITS[name]


def check_int(value, name: str) -> int:
    """`value` as a Python int: ints and numpy integer scalars pass; bools, floats and the rest raise TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}): accepted: an integer (int or numpy integer)")
    return int(value)


MAX_INDEX = 2 ** 63 - 1  # indices are int64


def _as_index(indices: Iterable[int] | torch.Tensor | np.ndarray) -> np.ndarray:
    """Integer sample indices as a 1-D int64 array: a sequence/range/iterable of ints, or an integer
    tensor/array. Floats and bools are refused (they would be truncated silently)."""
    accepted = "accepted: a sequence or range of integers, or a 1-D integer tensor/array"
    if isinstance(indices, (str, bytes)) or np.isscalar(indices) or (
            isinstance(indices, (torch.Tensor, np.ndarray)) and indices.ndim == 0):
        raise TypeError(f"indices={indices!r} is a single value; {accepted} (e.g. [{indices!r}])")
    if isinstance(indices, torch.Tensor):
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise TypeError(f"indices have dtype {indices.dtype} (e.g. {indices.flatten()[:3].tolist()}); {accepted}")
        idx = indices.detach().cpu().numpy().astype(np.int64)
    elif isinstance(indices, np.ndarray):
        if indices.dtype.kind not in "iu" and indices.size:
            raise TypeError(f"indices have dtype {indices.dtype} (e.g. {indices.flatten()[:3].tolist()}); {accepted}")
        idx = indices.astype(np.int64)
    elif isinstance(indices, range):
        idx = np.asarray(indices, dtype=np.int64)
    else:
        values = list(indices)
        bad = [v for v in values if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))]
        if bad:
            raise TypeError(f"index {bad[0]!r} ({type(bad[0]).__name__}) is not an integer; {accepted}")
        big = [v for v in values if not -MAX_INDEX <= v <= MAX_INDEX]
        if big:
            raise ValueError(f"index {big[0]!r} is out of range; accepted: indices in [0, 2**63 - 1]")
        idx = np.asarray(values, dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
    if len(idx) and idx.min() < 0:
        raise ValueError(f"indices must be >= 0, got {int(idx.min())}")
    return idx


class World:
    """Seeded generator of scenes (images + masks + captions), clips and sounds."""

    classes: tuple[str, ...] = ALL_CLASSES
    pretrain_classes: tuple[str, ...] = PRETRAIN_CLASSES
    novel_classes: tuple[str, ...] = NOVEL_CLASSES
    contexts: tuple[str, ...] = CONTEXT_NAMES
    colors: tuple[str, ...] = cap.COLOR_NAMES
    directions: tuple[str, ...] = cap.DIRECTIONS
    splits: tuple[str, ...] = tuple(SPLITS)

    def __init__(self, config: WorldConfig | None = None, **overrides):
        if config is None:
            config = WorldConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a WorldConfig or keyword overrides, not both")
        self.config = config
        self._bank = texture_bank(2 * config.image_size)
        seen = [CONTEXT_NAMES.index(c) for c in SEEN_CONTEXTS]
        # `finetune` ties class k to the k-th seen context (cows on grass).
        self.tie = {k: seen[k] for k in range(len(PRETRAIN_CLASSES))}

    # ------------------------------------------------------------------ sampling
    def split_classes(self, split: str) -> tuple[str, ...]:
        """The class names a split draws from; labels index `World.classes` throughout."""
        spec = _check_split(split)
        return {"pretrain": PRETRAIN_CLASSES, "all": ALL_CLASSES, "novel": NOVEL_CLASSES}[spec.classes]

    def latents(self, split: str, indices) -> Latents:
        spec = _check_split(split)
        idx = _as_index(indices)
        cfg = self.config
        u = uniforms(stream_key(cfg.seed, split), idx, _N_FIELDS)
        if spec.group > 1:
            shared = uniforms(stream_key(cfg.seed, f"{split}/group"), idx // spec.group, _N_FIELDS)
            u[:, [_CTX, _COLOR]] = shared[:, [_CTX, _COLOR]]
        class_ids = np.array([ALL_CLASSES.index(c) for c in self.split_classes(split)])
        label = class_ids[idx % len(class_ids)]  # exactly balanced over any run of indices
        context = self._contexts(spec, label, u)
        color = (u[:, _COLOR] * len(cap.COLORS)).astype(np.int64)
        base = np.array(list(cap.COLORS.values()))[color]
        rgb = np.clip(base + 0.16 * (u[:, _JIT:_JIT + 3] - 0.5), 0, 1)
        lo, hi = cfg.size_range
        S = cfg.image_size
        radius = (lo + (hi - lo) * u[:, _SIZE]) * S
        cx = radius + (S - 2 * radius) * u[:, _CX]
        cy = radius + (S - 2 * radius) * u[:, _CY]
        sketch_p = {"photo": 0.0, "sketch": 1.0, "mixed": cfg.sketch_share}[spec.style]
        t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt)
        return Latents(
            index=t(idx, torch.long), label=t(label, torch.long), context=t(context, torch.long),
            color=t(color, torch.long), rgb=t(rgb), radius=t(radius),
            angle=t(math.radians(cfg.max_rotation) * (2 * u[:, _ANGLE] - 1)), cx=t(cx), cy=t(cy),
            sketch=t(u[:, _STYLE] < sketch_p, torch.bool), u=u,
        )

    def _contexts(self, spec: SplitSpec, label: np.ndarray, u: np.ndarray) -> np.ndarray:
        pool = {"all": CONTEXT_NAMES, "seen": SEEN_CONTEXTS, "unseen": UNSEEN_CONTEXTS}[spec.contexts]
        pool_ids = np.array([CONTEXT_NAMES.index(c) for c in pool])
        if spec.tie == "none":
            return pool_ids[(u[:, _CTX] * len(pool_ids)).astype(np.int64)]
        tied = np.array([self.tie[int(k)] for k in label])
        # "the other contexts": uniform over the pool minus the class's own context.
        others = (u[:, _CTX] * (len(pool_ids) - 1)).astype(np.int64)
        pos_tied = np.searchsorted(pool_ids, tied)
        other = pool_ids[others + (others >= pos_tied)]
        if spec.tie == "flipped":
            return other
        return np.where(u[:, _TIE] < self.config.p_tie, tied, other)

    # ------------------------------------------------------------------ rendering
    def render(self, lat: Latents, dx: torch.Tensor | None = None, dy: torch.Tensor | None = None):
        """Images (B, 3, S, S) and masks (B, S, S); dx, dy shift the object (clips)."""
        S = self.config.image_size
        B = len(lat.label)
        cx = lat.cx if dx is None else lat.cx + dx
        cy = lat.cy if dy is None else lat.cy + dy
        coords = torch.arange(S, dtype=torch.float32) + 0.5
        gx = coords.view(1, 1, S) - cx.view(B, 1, 1)  # (B, 1, S)
        gy = coords.view(1, S, 1) - cy.view(B, 1, 1)  # (B, S, 1)
        cos, sin = torch.cos(lat.angle).view(B, 1, 1), torch.sin(lat.angle).view(B, 1, 1)
        r = lat.radius.view(B, 1, 1)
        uu = (cos * gx + sin * gy) / r  # (B, S, S)
        vv = (-sin * gx + cos * gy) / r
        masks = shape_masks(lat.label, uu, vv)

        bg = self._backgrounds(lat)
        fg = lat.rgb.view(B, 3, 1, 1) * (1.0 - 0.12 * vv.clamp(-1, 1).unsqueeze(1))  # soft shading
        if self.config.rim > 0:
            k = 2 * self.config.rim + 1
            grown = F.max_pool2d(masks.float().unsqueeze(1), k, stride=1, padding=self.config.rim) > 0.5
            bg = torch.where(grown, 0.08 * torch.ones_like(bg), bg)
        images = torch.where(masks.unsqueeze(1), fg.clamp(0, 1), bg)
        if lat.sketch.any():
            sel = lat.sketch.nonzero(as_tuple=True)[0]
            images[sel] = self._sketch(masks[sel], bg[sel], lat.rgb[sel])
        return images, masks

    def _backgrounds(self, lat: Latents) -> torch.Tensor:
        S = self.config.image_size
        span = self._bank.shape[-1] - S
        u = torch.as_tensor(lat.u, dtype=torch.float32)
        y0 = (u[:, _CROPY] * span).long()
        x0 = (u[:, _CROPX] * span).long()
        ar = torch.arange(S)
        rows = (y0.view(-1, 1) + ar).view(-1, S, 1)  # (B, S, 1)
        cols = (x0.view(-1, 1) + ar).view(-1, 1, S)  # (B, 1, S)
        bank = self._bank.permute(0, 2, 3, 1)  # (C, Sb, Sb, 3)
        bg = bank[lat.context.view(-1, 1, 1), rows, cols].permute(0, 3, 1, 2)  # (B, 3, S, S)
        flip = u[:, _FLIP] < 0.5
        bg = torch.where(flip.view(-1, 1, 1, 1), bg.flip(-1), bg)
        bg = bg * (0.85 + 0.3 * u[:, _BRIGHT]).view(-1, 1, 1, 1)
        bg = 0.5 * bg + 0.5 * bg.mean(1, keepdim=True)  # half desaturated
        return (0.6 + self.config.backdrop_contrast * (bg - 0.5)).clamp(0, 1)

    @staticmethod
    def _sketch(masks: torch.Tensor, bg: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        """Outline rendering: the object's contour in a dark ink on a pale, washed-out page."""
        m = masks.float().unsqueeze(1)
        eroded = -F.max_pool2d(-m, kernel_size=5, stride=1, padding=2)
        outline = (m - eroded) > 0.5
        paper = 0.8 + 0.18 * bg.mean(1, keepdim=True)
        ink = (rgb * 0.6).view(-1, 3, 1, 1).expand_as(bg)
        return torch.where(outline, ink, paper.expand_as(bg))

    # ------------------------------------------------------------------ public API
    def batch(self, split: str, indices) -> SceneBatch:
        lat = self.latents(split, indices)
        images, masks = self.render(lat)
        return SceneBatch(
            images=images, masks=masks, labels=lat.label, contexts=lat.context, colors=lat.color,
            sketch=lat.sketch, captions=self._captions(lat), index=lat.index,
        )

    def _captions(self, lat: Latents) -> list[str]:
        out = []
        lo, hi = self.config.size_range
        S = self.config.image_size
        for i in range(len(lat.label)):
            templates = cap.SKETCH_TEMPLATES if lat.sketch[i] else cap.PHOTO_TEMPLATES
            t = templates[int(lat.u[i, _TPL] * len(templates))]
            rel = (float(lat.radius[i]) / S - lo) / (hi - lo)
            out.append(cap.fill(
                t, cls=ALL_CLASSES[lat.label[i]], color=cap.COLOR_NAMES[lat.color[i]],
                ctx=CONTEXTS[CONTEXT_NAMES[lat.context[i]]],
                size=cap.SIZE_WORDS[min(int(rel * 3), 2)],
            ))
        return out

    def clips(self, split: str, indices, frames: int = 8, audio_length: int = 1024) -> ClipBatch:
        """Short clips: the object moves in a straight line (`direction` is the label)."""
        frames = check_number(frames, "frames", integer=True, ge=2)  # a clip moves: at least 2 frames
        audio_length = check_number(audio_length, "audio_length", integer=True, ge=frames)  # a sample per frame
        lat = self.latents(split, indices)
        if not len(lat.label):
            raise ValueError(f"indices={indices!r} holds no index; accepted: at least one clip index")
        S = self.config.image_size
        B, T = len(lat.label), frames
        lat.radius = lat.radius * 0.75  # smaller objects leave room to travel
        u = torch.as_tensor(lat.u, dtype=torch.float32)
        direction = (u[:, _DIR] * 4).long()
        travel = (0.25 + 0.15 * u[:, _SPEED]) * S
        room = S - 2 * lat.radius - travel
        start_along = lat.radius + room * u[:, _CX]
        across = lat.radius + (S - 2 * lat.radius) * u[:, _CY]
        sign = torch.where(direction % 2 == 0, 1.0, -1.0)  # right/up move +, left/down move -
        start = torch.where(sign > 0, start_along, S - start_along)
        horizontal = direction < 2
        # image rows grow downwards, so "up" is -y
        lat.cx = torch.where(horizontal, start, across)
        lat.cy = torch.where(horizontal, across, S - start)
        steps = torch.linspace(0, 1, T).view(1, T) * travel.view(B, 1)  # (B, T)
        dx = torch.where(horizontal.view(B, 1), sign.view(B, 1) * steps, torch.zeros_like(steps))
        dy = torch.where(horizontal.view(B, 1), torch.zeros_like(steps), -sign.view(B, 1) * steps)
        rep = _repeat_latents(lat, T)
        images, masks = self.render(rep, dx.reshape(-1), dy.reshape(-1))
        audio = self.sounds(split, indices, length=audio_length)
        caps = [
            cap.fill(cap.CLIP_TEMPLATE, cls=ALL_CLASSES[lat.label[i]], color=cap.COLOR_NAMES[lat.color[i]],
                     ctx=CONTEXTS[CONTEXT_NAMES[lat.context[i]]], direction=cap.DIRECTIONS[direction[i]])
            for i in range(B)
        ]
        return ClipBatch(
            frames=images.view(B, T, 3, S, S), masks=masks.view(B, T, S, S), labels=lat.label,
            contexts=lat.context, direction=direction,
            audio=audio[:, : (audio_length // T) * T].reshape(B, T, -1), captions=caps,
        )

    def sounds(self, split: str, indices, length: int = 1024) -> torch.Tensor:
        """A 1-D "sound" per sample (B, length): the class's harmonic signature + context noise.

        The class decides pitch, timbre (harmonic weights) and tremolo; the context decides
        the noise band, so context leaks into sound exactly as it leaks into images.
        """
        length = check_number(length, "length", integer=True, ge=2)  # samples: one has no spread to normalise
        lat = self.latents(split, indices)
        B = len(lat.label)
        if not B:
            raise ValueError(f"indices={indices!r} holds no index; accepted: at least one sample index")
        t = torch.arange(length, dtype=torch.float32) / length  # one "second"
        k = lat.label.float().view(B, 1)
        pitch = 1 + 0.04 * (torch.as_tensor(lat.u[:, _PITCH], dtype=torch.float32).view(B, 1) - 0.5)
        f0 = 12 * (1.22 ** k) * pitch  # cycles per second
        timbre = _class_timbre()[lat.label]  # (B, 3)
        wave = sum(timbre[:, h:h + 1] * torch.sin(2 * math.pi * (h + 1) * f0 * t) for h in range(3))
        tremolo = 1 + 0.5 * torch.sin(2 * math.pi * (1 + (k % 5)) * t)
        noise = torch.stack([torch.randn(length, generator=torch.Generator().manual_seed(s))
                             for s in sample_seeds(stream_key(self.config.seed, split), lat.index.numpy())])
        freqs = torch.fft.rfftfreq(length, d=1 / length)  # (F,)
        centre = (20 * 1.28 ** lat.context.float()).view(B, 1)
        band = torch.exp(-0.5 * ((freqs.view(1, -1) - centre) / (0.3 * centre)) ** 2)
        shaped = torch.fft.irfft(torch.fft.rfft(noise) * band, n=length)
        shaped = shaped / shaped.std(dim=1, keepdim=True).clamp_min(1e-6)
        return wave * tremolo + 0.5 * shaped


def _class_timbre() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    w = torch.rand(len(ALL_CLASSES), 3, generator=g) + 0.2
    return w / w.sum(1, keepdim=True)


def _repeat_latents(lat: Latents, T: int) -> Latents:
    rep = lambda x: x.repeat_interleave(T, dim=0)
    return Latents(
        index=rep(lat.index), label=rep(lat.label), context=rep(lat.context), color=rep(lat.color),
        rgb=rep(lat.rgb), radius=rep(lat.radius), angle=rep(lat.angle), cx=rep(lat.cx), cy=rep(lat.cy),
        sketch=rep(lat.sketch), u=np.repeat(lat.u, T, axis=0),
    )
