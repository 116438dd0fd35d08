"""Frozen-encoder features of event sequences, per step, as Uni-Code trains on pre-extracted ones.

    feats = extract_features(model, World(), "heldout", range(512))     # EventFeatures
    feats.features["video"]   # (N, T, g, g, width): patch tokens of the image tower's last block
    feats.features["audio"]   # (N, T, bands): log band energies of each step's sound
    feats.features["text"]    # (N, T, D): the text tower's embedding of each step's caption

The paper's encoders are VGG (7 x 7 x 512 per second), VGGish (128) and BERT (768 per token);
here they are tiny-world-clip's image tower (its patch-token grid, or the pooled projected
embedding), a small spectral front end (an STFT and log-spaced triangular bands) and its text tower.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from workbench.data.event_features import EventFeatures
from workbench.models import ClipBackend, eval_mode
from workbench.world import World
from workbench.world.events import EventConfig, events

VIDEO_MODES = ("grid", "embedding")


def check_video_mode(mode: str, grid: int | None) -> None:
    if mode not in VIDEO_MODES:
        raise ValueError(f"video={mode!r}; accepted: {', '.join(map(repr, VIDEO_MODES))}")
    if grid is not None and (isinstance(grid, bool) or not isinstance(grid, int) or grid < 1):
        raise ValueError(f"grid={grid!r}: accepted None (the tower's own patch grid) or a positive integer")


@torch.no_grad()
def video_features(model: ClipBackend, frames: torch.Tensor, mode: str = "grid", grid: int | None = None,
                   batch_size: int = 256) -> torch.Tensor:
    """Frames (N, T, 3, S, S) in [0, 1] -> (N, T, g, g, width) patch tokens (mode "grid"; average-pooled
    to `grid` x `grid` if given) or (N, T, D) projected embeddings (mode "embedding")."""
    check_video_mode(mode, grid)
    N, T = frames.shape[:2]
    flat = model.resize(frames.reshape(N * T, *frames.shape[2:]))
    out = [_video_chunk(model, flat[i:i + batch_size], mode, grid) for i in range(0, len(flat), batch_size)]
    x = torch.cat(out)
    return x.reshape(N, T, *x.shape[1:])


def _video_chunk(model: ClipBackend, images: torch.Tensor, mode: str, grid: int | None) -> torch.Tensor:
    if mode == "embedding":
        return model.encode_image(images)
    store = {}
    handle = model.vision_blocks[-1].register_forward_hook(lambda mod, args, out: store.__setitem__("out", out))
    try:
        model.encode_image(images)
    finally:
        handle.remove()
    tokens = store["out"]  # (B, 1 + g*g, width); some towers are sequence-first
    g = model.grid_size
    if tokens.shape[0] != len(images):
        tokens = tokens.transpose(0, 1)
    patches = tokens[:, -g * g:]  # drop the class token
    maps = patches.reshape(len(images), g, g, -1)  # (B, g, g, width)
    if grid is not None and grid != g:
        maps = F.adaptive_avg_pool2d(maps.permute(0, 3, 1, 2), grid).permute(0, 2, 3, 1)
    return maps.contiguous()


def log_bands(audio: torch.Tensor, bands: int = 64, frame: int = 256, hop: int = 128,
              low: float = 0.01) -> torch.Tensor:
    """Sound segments (..., L) -> log band energies (..., bands), averaged over STFT frames.

    Bands are triangular on a log-frequency axis from `low` x Nyquist to Nyquist (the world's
    class pitches and context noise bands are spaced geometrically, as on a mel axis)."""
    if bands < 1 or frame < 8 or hop < 1:
        raise ValueError(f"bands={bands}, frame={frame}, hop={hop}: accepted bands >= 1, frame >= 8, hop >= 1")
    if audio.shape[-1] < frame:
        raise ValueError(f"sound segments of {audio.shape[-1]} samples are shorter than one frame ({frame})")
    lead = audio.shape[:-1]
    x = audio.reshape(-1, audio.shape[-1]).float()
    spec = torch.stft(x, n_fft=frame, hop_length=hop, window=torch.hann_window(frame), center=False,
                      return_complex=True).abs().pow(2)  # (B, frame // 2 + 1, frames)
    bank = _filterbank(frame // 2 + 1, bands, low)  # (bands, bins)
    energy = torch.einsum("kf,bft->bkt", bank, spec).mean(-1)  # (B, bands)
    return torch.log(energy + 1e-6).reshape(*lead, bands)


def _filterbank(bins: int, bands: int, low: float) -> torch.Tensor:
    """Triangular filters (bands, bins), centres spaced geometrically over the positive bins."""
    pos = torch.arange(bins, dtype=torch.float32) / (bins - 1)  # 0 .. 1 (Nyquist)
    edges = torch.logspace(torch.log10(torch.tensor(low)), 0.0, bands + 2)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (pos - lo) / (mid - lo)
    down = (hi - pos) / (hi - mid)
    tri = torch.clamp(torch.minimum(up, down), min=0.0)
    # narrow low bands can fall between bins: give each at least its nearest bin
    nearest = (mid.squeeze(1) * (bins - 1)).round().long()
    tri[torch.arange(bands), nearest] = torch.maximum(tri[torch.arange(bands), nearest], torch.tensor(1.0))
    return tri / tri.sum(1, keepdim=True)


@torch.no_grad()
def text_features(model: ClipBackend, captions: Sequence[Sequence[str]], batch_size: int = 256) -> torch.Tensor:
    """Captions (N lists of T strings) -> text-tower embeddings (N, T, D); each distinct caption is
    encoded once."""
    flat = [c for row in captions for c in row]
    T = len(captions[0]) if captions else 0
    if any(len(row) != T for row in captions):
        raise ValueError("every sequence needs the same number of captions (one per step)")
    unique = sorted(set(flat))
    pos = {c: i for i, c in enumerate(unique)}
    emb = torch.cat([model.encode_text(model.tokenize(unique[i:i + batch_size]))
                     for i in range(0, len(unique), batch_size)])
    return emb[torch.tensor([pos[c] for c in flat])].reshape(len(captions), T, -1)


def extract_features(model: ClipBackend, world: World, split: str, indices, config: EventConfig | None = None,
                     *, video: str = "grid", grid: int | None = None, bands: int = 64,
                     chunk: int = 64) -> EventFeatures:
    """Event sequences of `split` at `indices`, drawn and encoded `chunk` sequences at a time.

    present: video where the event is visible, audio where audible, text where it happens at all
    (a caption names the event whenever the step is not background)."""
    config = config or EventConfig()
    check_video_mode(video, grid)
    idx = list(indices)
    keys = ("video", "audio", "text", "y", "labels", "vis", "aud", "index")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    classes: tuple[str, ...] = world.split_classes(split)
    with eval_mode(model):
        for i in range(0, len(idx), chunk):
            b = events(world, split, idx[i:i + chunk], config)
            parts["video"].append(video_features(model, b.frames, video, grid))
            parts["audio"].append(log_bands(b.audio, bands))
            parts["text"].append(text_features(model, b.captions))
            parts["y"].append(b.step_labels)
            parts["labels"].append(b.labels)
            parts["vis"].append(b.visible)
            parts["aud"].append(b.audible)
            parts["index"].append(b.index)
    cat = {k: torch.cat(v) for k, v in parts.items()}
    step_labels = cat["y"]
    C = len(classes)
    return EventFeatures(
        features={"video": cat["video"], "audio": cat["audio"], "text": cat["text"]},
        step_labels=step_labels, labels=cat["labels"],
        present={"video": cat["vis"], "audio": cat["aud"], "text": step_labels < C},
        classes=classes, index=cat["index"],
        info={"split": split, "world_seed": world.config.seed, "encoder": model.name, "video": video,
              "grid": grid or model.grid_size if video == "grid" else 0, "bands": bands})
