"""The world's splits as a classification data source: `finetune` to train, ID and OOD splits to test."""
from __future__ import annotations

from dataclasses import asdict
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from workbench.checks import check_number
from workbench.world import SPLITS, World, WorldConfig, zero_shot_templates

from .base import ClassificationData, EvalSet

OOD_SPLITS = ("ood_flipped", "ood_unseen", "ood_style")


class WorldSplits(ClassificationData):
    """Train on the first `n_train` scenes of `train`; evaluate on `id_test` and the `ood` splits.

    Images are rendered on demand (a scene is a pure function of (world seed, split, index)); the
    evaluation images are rendered once and kept, since every model is scored on the same ones.
    `image_size` resizes the world's images for a model of another resolution (e.g. 224 for ViT-B-32).
    """

    def __init__(self, world: World | None = None, *, train: str = "finetune", id_test: str = "id_test",
                 ood: Sequence[str] = OOD_SPLITS, n_train: int = 2048, batch_size: int = 64,
                 image_size: int | None = None, seed: int = 0):
        self.world = world or World(WorldConfig())
        if isinstance(ood, str):
            raise ValueError(f"ood={ood!r} is one string; accepted: a sequence of splits, e.g. ({ood!r},)")
        ood = tuple(ood)
        if len(set(ood)) != len(ood) or id_test in ood:
            raise ValueError(f"ood={ood!r} (id_test={id_test!r}) repeats a split; accepted: distinct splits")
        check_number(n_train, "n_train", integer=True, ge=1)
        check_number(batch_size, "batch_size", integer=True, ge=1)
        check_number(seed, "seed", integer=True, ge=0)
        if image_size is not None:
            check_number(image_size, "image_size", integer=True, ge=1)
        for name, split in [("train", train), ("id_test", id_test), *[("ood", s) for s in ood]]:
            if split not in SPLITS:
                raise ValueError(f"{name}={split!r} is not a world split; accepted: {', '.join(SPLITS)}")
        if n_train < 1 or batch_size < 1:
            raise ValueError(f"n_train={n_train!r} and batch_size={batch_size!r} must be >= 1")
        self.train_split, self.id_split, self.ood_splits = train, id_test, tuple(ood)
        self.classnames = tuple(self.world.split_classes(train))
        self.templates = zero_shot_templates()  # the world's prompts
        for split in self.eval_splits:
            extra = set(self.world.split_classes(split)) - set(self.classnames)
            if extra:
                raise ValueError(f"split {split!r} shows classes the {train!r} split never does: {sorted(extra)}")
        self._n_train, self.batch_size, self.seed = int(n_train), int(batch_size), int(seed)
        self.image_size = int(image_size or self.world.config.image_size)
        # world label (index into World.classes) -> index into self.classnames
        lut = torch.full((len(World.classes),), -1, dtype=torch.long)
        for i, c in enumerate(self.classnames):
            lut[World.classes.index(c)] = i
        self._label_lut = lut
        self._eval_cache: dict[str, EvalSet] = {}

    @property
    def train_size(self) -> int:
        return self._n_train

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == self.image_size:
            return images
        out = F.interpolate(images, size=(self.image_size,) * 2, mode="bicubic", antialias=True,
                            align_corners=False)
        return out.clamp(0, 1)

    def scenes(self, split: str, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images (B, 3, S, S), labels (B,) into classnames, ground-truth masks (B, H, W) of a split."""
        b = self.world.batch(split, indices)
        return self._resize(b.images), self._label_lut[b.labels], b.masks

    def train_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if len(idx) and (idx.min() < 0 or idx.max() >= self._n_train):
            raise IndexError(f"training indices must be in [0, {self._n_train}), got {idx.min()}..{idx.max()}")
        images, labels, _ = self.scenes(self.train_split, idx.tolist())
        return images, labels

    def train_labels(self, indices: torch.Tensor) -> torch.Tensor:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._label_lut[self.world.latents(self.train_split, idx.tolist()).label]

    def eval_set(self, split: str, n: int) -> EvalSet:
        """The first n images of a split, rendered once and kept."""
        self.check_split(split)
        have = self._eval_cache.get(split)
        if have is None or len(have.labels) < n:
            images, labels, _ = self.scenes(split, range(n))
            have = self._eval_cache[split] = EvalSet(images, labels)
        return EvalSet(have.images[:n], have.labels[:n])

    def _eval_batches(self, split: str, n: int | None, batch_size: int
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if n is None:
            raise ValueError("world splits are endless: pass n, the number of test images")
        data = self.eval_set(split, n)
        for start in range(0, n, batch_size):
            yield data.images[start:start + batch_size], data.labels[start:start + batch_size]

    def fingerprint(self) -> dict:
        world = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.world.config).items()}
        return {**super().fingerprint(), "world": world,
                "train_split": self.train_split}
