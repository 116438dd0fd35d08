"""Paired event sequences: T steps of video, sound and caption drawn from one latent event track.

    batch = events(World(), "heldout", range(64))              # EventBatch, T = 10 steps
    batch = events(world, "heldout", range(64), EventConfig(p_silent=0.3))

What a sequence is (AVE-like: one event class per sequence, on for part of it):

* the latent track: the event class (the split's classes, balanced over indices), an onset and a
  length (`min_length` .. `max_length` steps); steps outside the span are background;
* misalignment inside the span, drawn per step: the event pauses (a background step: neither seen
  nor heard) at `p_background`, is seen but silent at `p_silent`, heard but off screen at
  `p_offscreen`, and is seen and heard otherwise;
* video: the world's scene of the sequence (class, colour, context, size, pose from
  `World.latents`) with the object travelling in a straight line across the T frames; on steps
  where it is not visible it is moved off the image, leaving the backdrop;
* sound: one segment of `audio_length` samples per step ("one second"): the class's harmonic
  signature and tremolo as `World.sounds` makes them, with the sequence's pitch and a per-step
  pitch jitter, over the context's noise band; inaudible steps hold the noise band only;
* caption: one per step, its template drawn per step from the wording for what happens there
  (seen and heard, seen only, heard only, background); colour, context and direction words vary.

Nuisance the semantic code should drop: context, colour, position and size in video; the context
noise band and pitch jitter in sound; template wording in text. Every number is a pure function
of (world seed, split, index): see `rng.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import captions as cap
from .contexts import CONTEXT_NAMES, CONTEXTS
from .rng import sample_seeds, stream_key, uniforms
from .shapes import ALL_CLASSES
from .world import _PITCH, World, _class_timbre, _repeat_latents, check_int

SEEN_HEARD = (
    "{a_cls} {ctx}, and we hear it.",
    "{a_color} {cls} moving {direction}, making its sound.",
    "we see and hear {a_cls}.",
    "{a_cls} sounding {ctx}.",
)
SEEN_ONLY = (
    "{a_color} {cls} moving {direction}, silently.",
    "a silent {cls} {ctx}.",
    "we see {a_cls} but hear nothing.",
)
HEARD_ONLY = (
    "the sound of {a_cls}, off screen.",
    "{a_cls} heard but not seen.",
    "we hear {a_cls} {ctx}.",
)
BACKGROUND = (
    "nothing happens {ctx}.",
    "an empty scene {ctx}.",
    "just background noise.",
    "no event here.",
)

# per-sequence fields of the event stream; then three per-step blocks of `steps` fields each
_ONSET, _LENGTH, _END_X, _END_Y = 0, 1, 2, 3
_N_SEQ = 4


@dataclass(frozen=True)
class EventConfig:
    """How event sequences are drawn. Rates are per step inside the event span and exclusive:
    p_silent + p_offscreen + p_background <= 1 (the rest is seen and heard)."""

    steps: int = 10
    p_silent: float = 0.15  # seen, not heard
    p_offscreen: float = 0.15  # heard, not seen
    p_background: float = 0.1  # the event pauses: neither seen nor heard (a background step)
    min_length: int = 3  # event span in steps, uniform over min_length .. max_length
    max_length: int = 8
    audio_length: int = 1024  # samples per step (one "second", as in World.sounds)
    pitch_jitter: float = 0.06  # per-step relative pitch change, uniform in +- half of it
    noise_level: float = 0.5  # amplitude of the context noise band (World.sounds uses 0.5)

    def __post_init__(self):
        for name in ("steps", "min_length", "max_length", "audio_length"):
            object.__setattr__(self, name, check_int(getattr(self, name), name))
        for name in ("p_silent", "p_offscreen", "p_background"):
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}={p!r} is outside [0, 1]; accepted: a rate (probability) in [0, 1]")
        total = self.p_silent + self.p_offscreen + self.p_background
        if total > 1.0 + 1e-12:
            raise ValueError(f"p_silent + p_offscreen + p_background = {total:g} > 1: the three kinds of "
                             "misaligned step are exclusive, so their rates must sum to at most 1")
        if self.steps < 2:
            raise ValueError(f"steps={self.steps!r}: a sequence needs at least 2 steps")
        if not 1 <= self.min_length <= self.max_length <= self.steps:
            raise ValueError(f"min_length={self.min_length!r}, max_length={self.max_length!r}: accepted "
                             f"1 <= min_length <= max_length <= steps ({self.steps})")
        if self.audio_length < 64:
            raise ValueError(f"audio_length={self.audio_length!r}: use at least 64 samples per step")
        for name in ("pitch_jitter", "noise_level"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}={v!r} is outside [0, 1]; accepted: a number in [0, 1]")


@dataclass
class EventBatch:
    """B paired sequences of T steps. Labels index `classes`; `len(classes)` (C) means background."""

    frames: torch.Tensor  # (B, T, 3, H, W) in [0, 1]
    audio: torch.Tensor  # (B, T, L) one sound segment per step
    captions: list[list[str]]  # B lists of T captions
    step_labels: torch.Tensor  # (B, T) long in [0, C]; C = background
    labels: torch.Tensor  # (B,) long: the sequence's event class
    visible: torch.Tensor  # (B, T) bool: the event is on screen
    audible: torch.Tensor  # (B, T) bool: the event is heard
    index: torch.Tensor  # (B,)
    classes: tuple[str, ...]  # the event classes (the split's classes)
    contexts: torch.Tensor  # (B,) index into World.contexts (nuisance, for exemplars and checks)
    colors: torch.Tensor  # (B,) index into World.colors

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def background(self) -> int:
        """The label of a background step (C)."""
        return len(self.classes)


@dataclass
class EventTrack:
    """The latent track of B sequences (all (B, T) unless said): what happens at each step."""

    step_labels: torch.Tensor
    visible: torch.Tensor
    audible: torch.Tensor
    labels: torch.Tensor  # (B,)
    u: np.ndarray  # (B, _N_SEQ + 3 T) the event stream's uniforms


def event_track(world: World, split: str, idx: np.ndarray, config: EventConfig) -> EventTrack:
    """Onset, span and per-step misalignment of each sequence, from the world's counter-based stream."""
    T = config.steps
    u = uniforms(stream_key(world.config.seed, f"{split}/events"), idx, _N_SEQ + 3 * T)
    C = len(world.split_classes(split))
    labels = torch.as_tensor(idx % C, dtype=torch.long)  # balanced over any run of indices
    span = config.max_length - config.min_length + 1
    length = config.min_length + np.minimum((u[:, _LENGTH] * span).astype(np.int64), span - 1)
    onset = np.minimum((u[:, _ONSET] * (T - length + 1)).astype(np.int64), T - length)
    steps = np.arange(T)
    on = (steps >= onset[:, None]) & (steps < (onset + length)[:, None])  # (B, T) inside the span
    m = u[:, _N_SEQ:_N_SEQ + T]  # one misalignment draw per step
    silent = m < config.p_silent
    offscreen = (m >= config.p_silent) & (m < config.p_silent + config.p_offscreen)
    pause = (m >= config.p_silent + config.p_offscreen) & (m < config.p_silent + config.p_offscreen
                                                            + config.p_background)
    happening = on & ~pause
    visible = happening & ~offscreen
    audible = happening & ~silent
    step_labels = torch.where(torch.as_tensor(happening), labels.view(-1, 1), torch.tensor(C))
    return EventTrack(step_labels, torch.as_tensor(visible), torch.as_tensor(audible), labels, u)


def events(world: World, split: str, indices, config: EventConfig | None = None) -> EventBatch:
    """Paired event sequences of `split` at `indices` (see the module docstring)."""
    config = EventConfig() if config is None else config
    if not isinstance(config, EventConfig):
        raise TypeError(f"config={config!r} is a {type(config).__name__}; accepted: an EventConfig or None (the "
                        "defaults)")
    lat = world.latents(split, indices)
    idx = lat.index.numpy()
    track = event_track(world, split, idx, config)
    frames, direction = _frames(world, lat, track, config)
    audio = _audio(world, split, lat, track, config)
    classes = world.split_classes(split)
    captions = _captions(lat, track, direction, classes, config)
    return EventBatch(frames=frames, audio=audio, captions=captions, step_labels=track.step_labels,
                      labels=track.labels, visible=track.visible, audible=track.audible, index=lat.index,
                      classes=classes, contexts=lat.context, colors=lat.color)


def _frames(world: World, lat, track: EventTrack, config: EventConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (B, T, 3, S, S): the object travels from its scene position to a drawn end point;
    hidden steps move it off the image. Also each sequence's dominant direction (index into DIRECTIONS)."""
    S, T, B = world.config.image_size, config.steps, len(lat.label)
    lat.radius = lat.radius * 0.75  # smaller objects leave room to travel, as in World.clips
    lo, hi = lat.radius, S - lat.radius
    u = torch.as_tensor(track.u, dtype=torch.float32)
    end_x = lo + (hi - lo) * u[:, _END_X]
    end_y = lo + (hi - lo) * u[:, _END_Y]
    start_x, start_y = lo + (hi - lo) * (lat.cx / S), lo + (hi - lo) * (lat.cy / S)
    frac = torch.linspace(0, 1, T).view(1, T)
    dx = (end_x - start_x).view(B, 1) * frac + (start_x - lat.cx).view(B, 1)  # offsets from lat.cx
    dy = (end_y - start_y).view(B, 1) * frac + (start_y - lat.cy).view(B, 1)
    dx = torch.where(track.visible, dx, dx + 4.0 * S)  # off the image: the backdrop alone
    rep = _repeat_latents(lat, T)
    images, _ = world.render(rep, dx.reshape(-1), dy.reshape(-1))
    mx, my = end_x - start_x, end_y - start_y
    # DIRECTIONS = right, left, up, down; image rows grow downwards, so "up" is -y
    direction = torch.where(mx.abs() >= my.abs(), torch.where(mx >= 0, 0, 1), torch.where(my < 0, 2, 3))
    return images.view(B, T, 3, S, S), direction


def _audio(world: World, split: str, lat, track: EventTrack, config: EventConfig) -> torch.Tensor:
    """Sound (B, T, L): class signature (World.sounds' pitch, timbre, tremolo) with pitch jitter on
    audible steps, plus the context's noise band everywhere."""
    B, T, L = len(lat.label), config.steps, config.audio_length
    t = torch.arange(L, dtype=torch.float32) / L  # one "second" per step
    k = lat.label.float().view(B, 1, 1)  # World.classes index: the same signature as World.sounds
    pitch = 1 + 0.04 * (torch.as_tensor(lat.u[:, _PITCH], dtype=torch.float32).view(B, 1, 1) - 0.5)
    jitter = torch.as_tensor(track.u[:, _N_SEQ + T:_N_SEQ + 2 * T], dtype=torch.float32).view(B, T, 1)
    f0 = 12 * (1.22 ** k) * pitch * (1 + config.pitch_jitter * (jitter - 0.5))  # (B, T, 1)
    timbre = _class_timbre()[lat.label].view(B, 1, 3)
    wave = sum(timbre[..., h:h + 1] * torch.sin(2 * math.pi * (h + 1) * f0 * t) for h in range(3))
    tremolo = 1 + 0.5 * torch.sin(2 * math.pi * (1 + (k % 5)) * t)
    signal = wave * tremolo * track.audible.view(B, T, 1)
    seeds = sample_seeds(stream_key(world.config.seed, f"{split}/events/noise"), lat.index.numpy())
    noise = torch.stack([torch.randn(T, L, generator=torch.Generator().manual_seed(s)) for s in seeds])
    freqs = torch.fft.rfftfreq(L, d=1 / L)
    centre = (20 * 1.28 ** lat.context.float()).view(B, 1, 1)
    band = torch.exp(-0.5 * ((freqs.view(1, 1, -1) - centre) / (0.3 * centre)) ** 2)
    shaped = torch.fft.irfft(torch.fft.rfft(noise) * band, n=L)
    shaped = shaped / shaped.std(dim=-1, keepdim=True).clamp_min(1e-6)
    return signal + config.noise_level * shaped


def _captions(lat, track: EventTrack, direction: torch.Tensor, classes: tuple[str, ...],
              config: EventConfig) -> list[list[str]]:
    T = config.steps
    tpl = track.u[:, _N_SEQ + 2 * T:_N_SEQ + 3 * T]
    out = []
    for i in range(len(lat.label)):
        words = dict(cls=ALL_CLASSES[lat.label[i]], color=cap.COLOR_NAMES[lat.color[i]],
                     ctx=CONTEXTS[CONTEXT_NAMES[lat.context[i]]], direction=cap.DIRECTIONS[direction[i]])
        row = []
        for s in range(T):
            seen, heard = bool(track.visible[i, s]), bool(track.audible[i, s])
            pool = SEEN_HEARD if seen and heard else SEEN_ONLY if seen else HEARD_ONLY if heard else BACKGROUND
            row.append(cap.fill(pool[min(int(tpl[i, s] * len(pool)), len(pool) - 1)], **words))
        out.append(row)
    return out
