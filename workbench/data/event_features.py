"""Per-step features of paired event sequences, and a loader for the paper's pre-extracted layout.

    feats = EventFeatures(features={"video": v, "audio": a, "text": t}, step_labels=y, labels=ys,
                          present={...}, classes=names)          # what the codebook model trains on
    train, test = feats.subset(range(800)), feats.subset(range(800, 1000))
    feats = load_paper_features(video="visual_feature.npy", audio="audio_feature.npy",
                                labels="labels.npy")             # the AVE layout of CMG / Uni-Code

Every modality's features are (N, T, *shape) float32: video (N, T, h, w, c) like the paper's
10 x 7 x 7 x 512 grid, or (N, T, D) pooled; audio (N, T, D); text (N, T, D). Step labels are in
[0, C] where C = len(classes) means background.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from workbench.checks import atomic_path, check_device, check_finite, safe_torch_load

MODALITIES = ("video", "audio", "text")
PAPER_SHAPES = {"video": (7, 7, 512), "audio": (128,), "text": (768,)}  # per step (text: per token)
FEATURE_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".h5", ".hdf5")


def check_modalities(names: Iterable[str], what: str = "modality") -> tuple[str, ...]:
    """`names` as a tuple, or a ValueError naming the unknown one and the accepted set."""
    names = tuple(names)
    for m in names:
        if m not in MODALITIES:
            raise ValueError(f"unknown {what} {m!r}; accepted: {', '.join(MODALITIES)}")
    return names


@dataclass
class EventFeatures:
    """N sequences of T steps in several modalities, with per-step and per-sequence labels."""

    features: dict[str, torch.Tensor]  # modality -> (N, T, *shape) float32
    step_labels: torch.Tensor  # (N, T) long in [0, C]; C = background
    labels: torch.Tensor  # (N,) long: the sequence's event class (C when no step has an event)
    present: dict[str, torch.Tensor]  # modality -> (N, T) bool: the event is perceptible there
    classes: tuple[str, ...]  # event class names, length C
    index: torch.Tensor | None = None  # (N,) where the sequences came from (world indices), if known
    info: dict = field(default_factory=dict)  # provenance: split, world seed, encoder, ...

    def __post_init__(self):
        self.classes = tuple(self.classes)
        check_modalities(self.features)
        if not self.features:
            raise ValueError(f"features is empty; give at least one of {', '.join(MODALITIES)}")
        if self.step_labels.ndim != 2:
            raise ValueError(f"step_labels must be (N, T), got shape {tuple(self.step_labels.shape)}")
        N, T = self.step_labels.shape
        for name, y in (("step_labels", self.step_labels), ("labels", self.labels)):
            if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                raise TypeError(f"{name} have dtype {getattr(y, 'dtype', type(y).__name__)}; accepted: integer class "
                                "indices (a float label would be truncated)")
        self.step_labels, self.labels = self.step_labels.long(), self.labels.long()
        if tuple(self.labels.shape) != (N,):
            raise ValueError(f"labels have shape {tuple(self.labels.shape)} but step_labels {(N, T)}: "
                             f"accepted labels of shape ({N},)")
        C = len(self.classes)
        for name, y in (("step_labels", self.step_labels), ("labels", self.labels)):
            if y.numel() and (int(y.min()) < 0 or int(y.max()) > C):
                raise ValueError(f"{name} hold values in [{int(y.min())}, {int(y.max())}]; accepted: [0, {C}] "
                                 f"({C} classes, {C} = background)")
        for m, x in self.features.items():
            if x.ndim < 3 or tuple(x.shape[:2]) != (N, T):
                raise ValueError(f"{m} features have shape {tuple(x.shape)}; accepted (N, T, ...) = "
                                 f"({N}, {T}, ...) as the step labels")
        self.features = {m: x.float() for m, x in self.features.items()}
        for m, x in self.features.items():  # NaN features train to NaN losses; one min/max pass, no copy
            check_finite(x, f"{m} features")
        if len(set(self.classes)) != len(self.classes) or not all(isinstance(c, str) for c in self.classes):
            raise ValueError(f"classes={self.classes!r}; accepted: distinct class names (strings)")
        check_modalities(self.present, "modality in present")
        missing = [m for m in self.features if m not in self.present]
        if missing:
            raise ValueError(f"present has no mask for {missing}; give one (N, T) bool per modality")
        for m, p in self.present.items():
            if tuple(p.shape) != (N, T):
                raise ValueError(f"present[{m!r}] has shape {tuple(p.shape)}; accepted ({N}, {T})")
        self.present = {m: p.bool() for m, p in self.present.items() if m in self.features}
        if self.index is not None and tuple(self.index.shape) != (N,):
            raise ValueError(f"index has shape {tuple(self.index.shape)}; accepted ({N},)")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities present, in MODALITIES order."""
        return tuple(m for m in MODALITIES if m in self.features)

    @property
    def steps(self) -> int:
        return self.step_labels.shape[1]

    @property
    def background(self) -> int:
        """The label of a background step (C)."""
        return len(self.classes)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Modality -> per-step feature shape (what UniCode's `input_shapes` takes)."""
        return {m: tuple(self.features[m].shape[2:]) for m in self.modalities}

    def subset(self, idx) -> EventFeatures:
        """The sequences at `idx` (indices, a range, a slice or a bool mask)."""
        if isinstance(idx, range):
            idx = torch.arange(idx.start, idx.stop, idx.step)
        elif not isinstance(idx, slice):
            idx = torch.as_tensor(idx)
            if idx.dtype == torch.bool and len(idx) != len(self):
                raise ValueError(f"a bool mask of length {len(idx)} for {len(self)} sequences")
        return EventFeatures(
            features={m: x[idx] for m, x in self.features.items()}, step_labels=self.step_labels[idx],
            labels=self.labels[idx], present={m: p[idx] for m, p in self.present.items()}, classes=self.classes,
            index=None if self.index is None else self.index[idx], info=dict(self.info))

    def select(self, modalities: Iterable[str]) -> EventFeatures:
        """The same sequences with only `modalities`."""
        mods = check_modalities(modalities)
        missing = [m for m in mods if m not in self.features]
        if missing:
            raise ValueError(f"no {missing} features here; these have {', '.join(self.modalities)}")
        return EventFeatures({m: self.features[m] for m in mods}, self.step_labels, self.labels,
                             {m: self.present[m] for m in mods}, self.classes, self.index, dict(self.info))

    def to(self, device: str | torch.device) -> EventFeatures:
        device = check_device(device)
        move = lambda d: {m: x.to(device) for m, x in d.items()}
        return EventFeatures(move(self.features), self.step_labels.to(device), self.labels.to(device),
                             move(self.present), self.classes,
                             None if self.index is None else self.index.to(device), dict(self.info))

    def state(self) -> dict:
        """Plain tensors, lists and strings: what `torch.save` writes and `torch.load(weights_only=True)` reads."""
        return {"features": self.features, "step_labels": self.step_labels, "labels": self.labels,
                "present": self.present, "classes": list(self.classes), "index": self.index,
                "info": {k: v for k, v in self.info.items() if isinstance(v, (str, int, float, bool))}}

    def save(self, path: str | Path) -> Path:
        """`state()` to `path` with torch.save, through a unique temporary file in the same folder renamed over
        `path`: two writers never share a temporary file, an interruption never leaves a half-written one."""
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> EventFeatures:
        """What `save` wrote (tensors and plain values only; anything else is refused, never unpickled)."""
        state = safe_torch_load(path, "event-feature file")
        needed = {"features", "step_labels", "labels", "present", "classes"}
        if not isinstance(state, Mapping) or not needed <= set(state):
            raise ValueError(f"event-feature file {path} does not hold EventFeatures.state() (keys: "
                             f"{', '.join(map(str, state)) if isinstance(state, Mapping) else type(state).__name__})")
        return cls.from_state(state)

    @classmethod
    def from_state(cls, state: Mapping) -> EventFeatures:
        return cls(dict(state["features"]), state["step_labels"], state["labels"], dict(state["present"]),
                   tuple(state["classes"]), state.get("index"), dict(state.get("info", {})))


def sequence_labels(step_labels: torch.Tensor, background: int) -> torch.Tensor:
    """Each sequence's event class (N,): its most frequent non-background step label, `background`
    when every step is background. (N, T) -> (N,)."""
    counts = torch.nn.functional.one_hot(step_labels.long(), background + 1)[..., :background].sum(1)  # (N, C)
    return torch.where(counts.sum(1) > 0, counts.argmax(1), torch.tensor(background))


# ---------------------------------------------------------------------------------------------- loading
def _read_array(path: str | Path, what: str, key: str | None = None) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} feature file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        try:
            if suffix == ".npy":
                return np.load(path, allow_pickle=False)
            with np.load(path, allow_pickle=False) as z:
                return _pick(dict(z), key, path)
        except (ValueError, OSError, EOFError) as e:
            if str(e).startswith(str(path)):  # _pick's own message
                raise
            why = ("it holds Python objects, which are never unpickled (a crafted file could run code)"
                   if "allow_pickle" in str(e) else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r}")
            raise ValueError(f"{what} feature file {str(path)!r} is corrupt or not a numeric array file ({why})"
                             ) from None
    if suffix in (".pt", ".pth"):
        obj = safe_torch_load(path, f"{what} feature file")
        obj = _pick(obj, key, path) if isinstance(obj, dict) else obj
        return obj.numpy() if isinstance(obj, torch.Tensor) else np.asarray(obj)
    if suffix in (".h5", ".hdf5"):
        try:
            import h5py
        except ImportError as err:
            raise ImportError(f"{path} is an HDF5 file, which needs h5py (pip install h5py); or convert "
                              "it to .npy") from err
        with h5py.File(path, "r") as f:
            return np.asarray(_pick({k: f[k] for k in f.keys()}, key, path))
    raise ValueError(f"{what} feature file {str(path)!r} has suffix {suffix!r}; accepted: "
                     f"{', '.join(FEATURE_SUFFIXES)}")


def _pick(arrays: Mapping, key: str | None, path: Path):
    if key is not None:
        if key not in arrays:
            raise KeyError(f"{path} has no array {key!r}; it holds {', '.join(map(str, arrays))}")
        return arrays[key]
    if len(arrays) != 1:
        raise ValueError(f"{path} holds {len(arrays)} arrays ({', '.join(map(str, arrays))}); name one with key=")
    return next(iter(arrays.values()))


def _step_labels(raw: np.ndarray, n: int, steps: int, classes: tuple[str, ...] | None) -> tuple[torch.Tensor, int]:
    """(N, T) indices or (N, T, C + 1) one-hot (background last) -> (N, T) long and C."""
    y = torch.as_tensor(raw)
    if y.ndim == 3:
        C = y.shape[2] - 1
        if classes is not None and len(classes) != C:
            raise ValueError(f"labels are one-hot over {C + 1} columns ({C} classes + background) but "
                             f"{len(classes)} class names were given")
        y = y.argmax(-1)
    elif y.ndim == 2:
        if y.dtype.is_floating_point and not torch.equal(y, y.round()):
            raise ValueError("labels of shape (N, T) must be integer class indices")
        if classes is None:
            raise ValueError("labels given as (N, T) class indices need classes= (the C event class names; "
                             "index C is background); one-hot labels (N, T, C + 1) carry C themselves")
        y, C = y.long(), len(classes)
    else:
        raise ValueError(f"labels have shape {tuple(y.shape)}; accepted: (N, T) indices or (N, T, C + 1) one-hot")
    if tuple(y.shape) != (n, steps):
        raise ValueError(f"labels cover {tuple(y.shape)} (sequences, steps) but the video features cover "
                         f"{(n, steps)}: the files disagree")
    return y.long(), C


def load_paper_features(video: str | Path, audio: str | Path, labels: str | Path, text: str | Path | None = None,
                        *, classes: Iterable[str] | None = None, keys: Mapping[str, str] | None = None,
                        text_mode: str = "mean") -> EventFeatures:
    """The paper's pre-extracted features from files (.npy, .npz, .pt; .h5 with h5py installed).

    video: (N, T, 7, 7, 512) (any (N, T, ...) grid or vector); audio: (N, T, 128); labels:
    (N, T, C + 1) one-hot with background last (AVE's layout) or (N, T) indices in [0, C]; text:
    token features (N, L, 768) of one caption per sequence. `text_mode` "mean" averages the tokens
    and repeats the mean at every step (N, T, 768); "steps" takes text already given per step
    (N, T, 768). `keys`: modality or "labels" -> array name inside a multi-array file. Every
    modality is marked present where the step label is an event (the paper's labels mark steps
    where the event is both seen and heard).
    """
    if text_mode not in ("mean", "steps"):
        raise ValueError(f"text_mode={text_mode!r}; accepted: 'mean', 'steps'")
    keys = dict(keys or {})
    paths = {"video": video, "audio": audio, "text": text}
    arrays = {m: _read_array(p, m, keys.get(m)) for m, p in paths.items() if p is not None}
    N, T = arrays["video"].shape[:2] if arrays["video"].ndim >= 3 else (None, None)
    if N is None:
        raise ValueError(f"video features have shape {arrays['video'].shape}; accepted (N, T, ...), e.g. "
                         "(N, 10, 7, 7, 512)")
    for m in ("audio",) + (("text",) if text is not None else ()):
        x = arrays[m]
        if x.ndim < 3 or x.shape[0] != N:
            raise ValueError(f"{m} features have shape {x.shape} but the video features {arrays['video'].shape}: "
                             f"accepted ({N}, ...) sequences as in the video file")
    if arrays["audio"].shape[1] != T:
        raise ValueError(f"audio features have {arrays['audio'].shape[1]} steps per sequence but the video "
                         f"features {T}: the files disagree (shapes {arrays['audio'].shape} and "
                         f"{arrays['video'].shape})")
    names = None if classes is None else tuple(classes)
    step_labels, C = _step_labels(_read_array(labels, "labels", keys.get("labels")), N, T, names)
    feats = {m: torch.as_tensor(np.ascontiguousarray(arrays[m]), dtype=torch.float32) for m in ("video", "audio")}
    if text is not None:
        tok = torch.as_tensor(np.ascontiguousarray(arrays["text"]), dtype=torch.float32)
        if text_mode == "steps" and tok.shape[1] != T:
            raise ValueError(f"text_mode='steps' needs text features (N, {T}, D), got {tuple(tok.shape)}")
        feats["text"] = tok if text_mode == "steps" else tok.mean(1, keepdim=True).expand(N, T, *tok.shape[2:])
    event = step_labels < C
    return EventFeatures(features=feats, step_labels=step_labels, labels=sequence_labels(step_labels, C),
                         present={m: event for m in feats},
                         classes=names if names is not None else tuple(f"class_{i}" for i in range(C)),
                         info={"source": "paper_layout", "video": str(video)})
