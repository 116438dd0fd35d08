"""ImageFolder datasets (ImageNet and its OOD variants on the scale path) as a classification source.

    data = ImageFolderSplits("imagenet/train", {"id_test": "imagenet/val", "sketch": "imagenet-sketch"},
                             preprocess=model.preprocess)

Class names come from the training folder's sub-folder names (underscores -> spaces) unless given;
`templates` are the zero-shot prompts (default: the world's).
A test folder may hold a subset of the training classes (ImageNet-R has 200 of the 1000); its labels
are mapped to the training classes by folder name.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import torch
from torchvision import transforms as T
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from workbench.checks import check_number, check_template
from workbench.world import zero_shot_templates

from .base import ClassificationData

IMAGE_EXTENSIONS = IMG_EXTENSIONS  # what ImageFolder reads: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp
_EVAL_SEED = 0  # every model and every training seed is scored on the same test images


def folder_classnames(folders: Sequence[str]) -> tuple[str, ...]:
    """Class names from folder names: "golden_retriever" -> "golden retriever"."""
    return tuple(f.replace("_", " ") for f in folders)


def _check_dir(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"{what} {str(path)!r} is not a folder (expected <folder>/<class>/<image>)")
    return p


def _image_folder(path: Path, what: str) -> ImageFolder:
    try:
        return ImageFolder(str(path))
    except (FileNotFoundError, RuntimeError) as e:
        raise ValueError(f"{what} {str(path)!r} holds no class folders with images "
                         f"({', '.join(IMAGE_EXTENSIONS)}); expected <folder>/<class>/<image> ({e})") from None


def default_preprocess(image_size: int) -> Callable:
    """PIL image -> (3, S, S) in [0, 1]: resize the short side, centre-crop (as ClipBackend.preprocess)."""
    return T.Compose([T.Resize(image_size, interpolation=T.InterpolationMode.BICUBIC),
                      T.CenterCrop(image_size), T.Lambda(lambda im: im.convert("RGB")), T.ToTensor()])


class ImageFolderSplits(ClassificationData):
    """A training folder and named test folders (the first, or "id_test", is in-distribution)."""

    def __init__(self, train_dir: str | Path, test_dirs: Mapping[str, str | Path],
                 classnames: Sequence[str] | None = None, *, preprocess: Callable | None = None,
                 image_size: int | None = None, batch_size: int = 32, seed: int = 0,
                 id_split: str | None = None, num_workers: int = 4,
                 templates: Sequence[Callable | str] | None = None):
        for name, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0), ("num_workers", num_workers, 0)):
            check_number(value, name, integer=True, ge=low)
        if image_size is not None:
            check_number(image_size, "image_size", integer=True, ge=1)
        if not isinstance(test_dirs, Mapping) or not test_dirs:
            raise ValueError(f"test_dirs must be a non-empty dict name -> folder, got {test_dirs!r}")
        self.train_dir = _check_dir(train_dir, "train_dir")
        self.test_dirs = {str(k): _check_dir(v, f"test folder {k!r}") for k, v in test_dirs.items()}
        self.id_split = id_split or ("id_test" if "id_test" in self.test_dirs else next(iter(self.test_dirs)))
        if self.id_split not in self.test_dirs:
            raise ValueError(f"id_split={self.id_split!r} is not among test_dirs: {', '.join(self.test_dirs)}")
        self.ood_splits = tuple(k for k in self.test_dirs if k != self.id_split)
        # zero-shot prompts; by default the world's (what heads on this data were always built from);
        # for ImageNet, e.g. open_clip.OPENAI_IMAGENET_TEMPLATES
        self.templates = tuple(templates) if templates is not None else zero_shot_templates()
        if isinstance(templates, str) or not self.templates:
            raise ValueError(f"templates={templates!r}; accepted: a non-empty sequence of prompts (callables "
                             "name -> prompt or strings with one {})")
        for i, t in enumerate(self.templates):
            check_template(t, f"templates[{i}]")
        if preprocess is None:
            preprocess = default_preprocess(image_size or 224)
        self.preprocess = preprocess
        self.train_set = _image_folder(self.train_dir, "train_dir")
        self.train_set.transform = preprocess
        folders = self.train_set.classes
        if classnames is None:
            self.classnames = folder_classnames(folders)
        else:
            if isinstance(classnames, str) or len(classnames) != len(folders):
                raise ValueError(f"classnames has {len(classnames)} names but {self.train_dir} has "
                                 f"{len(folders)} class folders: {', '.join(folders[:10])}; accepted: one name per "
                                 "class folder, in their order, or None (the folder names)")
            self.classnames = tuple(classnames)
            twice = [c for i, c in enumerate(self.classnames) if c in self.classnames[:i]]
            if twice:
                raise ValueError(f"classnames={self.classnames!r}: {twice[0]!r} repeats; accepted: distinct names")
        self.test_sets = {k: self._test_set(k, p, folders) for k, p in self.test_dirs.items()}
        self.batch_size, self.seed, self.num_workers = int(batch_size), int(seed), int(num_workers)
        probe = self.train_set[0][0]
        self.image_size = int(probe.shape[-1])
        if image_size is not None and self.image_size != image_size:
            raise ValueError(f"preprocess makes {self.image_size}px images but image_size={image_size}")
        self._train_targets = torch.tensor(self.train_set.targets, dtype=torch.long)

    def _test_set(self, name: str, path: Path, folders: list[str]) -> tuple[ImageFolder, torch.Tensor]:
        ds = _image_folder(path, f"test folder {name!r}")
        unknown = sorted(set(ds.classes) - set(folders))
        if unknown:
            raise ValueError(f"test folder {name!r} ({path}) has classes the training folder lacks: "
                             f"{', '.join(unknown[:10])}")
        ds.transform = self.preprocess
        to_train = torch.tensor([folders.index(c) for c in ds.classes], dtype=torch.long)
        return ds, to_train[torch.tensor(ds.targets, dtype=torch.long)]  # labels in training classes

    @property
    def train_size(self) -> int:
        return len(self.train_set)

    def _load(self, dataset: ImageFolder, indices: list[int]) -> torch.Tensor:
        get = lambda i: dataset[i][0]
        if self.num_workers > 1 and len(indices) > 1:
            with ThreadPoolExecutor(self.num_workers) as pool:
                return torch.stack(list(pool.map(get, indices)))
        return torch.stack([get(i) for i in indices])

    def train_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._load(self.train_set, idx.tolist()), self._train_targets[idx]

    def train_labels(self, indices: torch.Tensor) -> torch.Tensor:
        return self._train_targets[torch.as_tensor(indices, dtype=torch.long)]

    def _eval_batches(self, split: str, n: int | None, batch_size: int
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ds, labels = self.test_sets[split]
        order = torch.arange(len(ds))
        if n is not None and n < len(ds):  # a seeded sample: the folder order is sorted by class
            order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(_EVAL_SEED))[:n]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield self._load(ds, idx.tolist()), labels[idx]

    def fingerprint(self) -> dict:
        files = "\n".join(str(Path(p).relative_to(self.train_dir)) for p, _ in self.train_set.samples)
        return {**super().fingerprint(), "train_dir": str(self.train_dir.resolve()),
                "files": hashlib.sha256(files.encode()).hexdigest()[:16]}
