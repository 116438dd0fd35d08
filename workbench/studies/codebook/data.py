"""Study 03's data: event-sequence features from the frozen encoders, cached on disk by what decides them.

Train, validation and test sequences come from disjoint index ranges of one world split (train
from 0, validation from 1,000,000, test from 2,000,000), so no test sequence is ever trained on.
"""
from __future__ import annotations

import time
from typing import NamedTuple

from workbench.data import EventFeatures
from workbench.models import ClipBackend, load_model
from workbench.world import World, WorldConfig

from .. import kit
from .config import Config

OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}
FEATURE_VERSION = 1  # bump when the features' meaning changes


class Splits(NamedTuple):
    train: EventFeatures
    val: EventFeatures
    test: EventFeatures
    seconds: float  # spent extracting now (0 when all came from the cache)


def select(splits: Splits, modalities: tuple[str, ...]) -> Splits:
    """The same sequences with only `modalities` (the two-modality rows train and test on video and audio)."""
    return Splits(splits.train.select(modalities), splits.val.select(modalities), splits.test.select(modalities),
                  splits.seconds)


def split_indices(cfg: Config, part: str) -> range:
    n = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[part]
    return range(OFFSETS[part], OFFSETS[part] + n)


def load_encoder(cfg: Config) -> ClipBackend:
    return load_model(cfg.model, pretrained=cfg.pretrained, device=kit.device(cfg.device)).eval()


def feature_key(cfg: Config, part: str, weights: str) -> str:
    """What decides one part's features: the world, the event config, the encoders and the indices."""
    return kit.hash_of({"world_seed": cfg.world_seed, "split": cfg.split, "events": cfg.event_config(),
                        "video": cfg.video, "grid": cfg.grid, "bands": cfg.bands, "weights": weights,
                        "indices": [split_indices(cfg, part).start, split_indices(cfg, part).stop],
                        "version": FEATURE_VERSION})


def event_features(cfg: Config, encoder: ClipBackend | None = None, use_cache: bool = True) -> Splits:
    """Train / validation / test features, from the cache when it holds them, else extracted (then cached)."""
    from workbench.methods.codebook.features import extract_features

    encoder = encoder if encoder is not None else load_encoder(cfg)
    weights = kit.weights_fingerprint(encoder)
    world = World(WorldConfig(seed=cfg.world_seed))
    out, spent = {}, 0.0
    for part in OFFSETS:
        path = kit.cache_dir("codebook_features") / f"{part}-{feature_key(cfg, part, weights)}.pt"
        state = kit.load_tensors(path) if use_cache else None
        if state is None:
            t0 = time.perf_counter()
            feats = extract_features(encoder, world, cfg.split, split_indices(cfg, part), cfg.event_config(),
                                     video=cfg.video, grid=cfg.grid, bands=cfg.bands)
            spent += time.perf_counter() - t0
            feats.save(path)  # a unique temporary name, renamed over the path: two writers never collide
        else:
            feats = EventFeatures.from_state(state)
        out[part] = feats.select(cfg.modalities)
    return Splits(out["train"], out["val"], out["test"], spent)


def standardise(splits: Splits) -> Splits:
    """Each modality's features centred and scaled by the train sequences' mean and std per dimension
    (the frozen encoders' scales differ by orders of magnitude; test statistics are never used)."""
    stats = {m: (x.flatten(0, 1).mean(0), x.flatten(0, 1).std(0).clamp_min(1e-6))
             for m, x in splits.train.features.items()}

    def norm(f: EventFeatures) -> EventFeatures:
        feats = {m: (x - stats[m][0]) / stats[m][1] for m, x in f.features.items()}
        return EventFeatures(feats, f.step_labels, f.labels, f.present, f.classes, f.index, dict(f.info))

    return Splits(norm(splits.train), norm(splits.val), norm(splits.test), splits.seconds)
