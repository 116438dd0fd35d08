"""One interface over every dual-encoder backend the workbench drives.

Convention: images are float pixels in [0, 1], shape (B, 3, S, S) at the model's own
resolution; the backend normalises them. Tokens come from `model.tokenize(texts)`.

A backend also owns what methods need to know about its network, so that no method
branches on the backend's kind: the towers (`tower_of`, `tower_modules`,
`tower_parameters`), the tokenizer, the adaptable layers by role (`adaptable_layers`,
`lora_targets`, `linear_targets`, `matrix_kinds`), the parts of a transformer block
(`block_attention`, `block_attention_input`), the projection heads, copies that share the
read-only tokenizer (`copy`), and zero-shot heads (`zero_shot_head`). Module and parameter
names are relative to `self.model`, the wrapped network. Adding a backend means a subclass
here in `workbench.models` and nothing elsewhere.
"""
from __future__ import annotations

import copy as _copy
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import transforms as T

from workbench.engine import inputs_trusted

from .zero_shot import ZeroShotHead

TOWERS: tuple[str, ...] = ("vision", "text")
# Roles of adaptable layers, each a set of leaf module names per backend (LAYER_ROLES):
#   attn       the whole attention module of a block (open_clip nn.MultiheadAttention, HF CLIPAttention)
#   attn_proj  the attention's q/k/v/out projections as separate nn.Linear layers a wrapper can replace
#              (none on open_clip: its fused attention forward would bypass a wrapped out_proj)
#   mlp        the block MLP's two nn.Linear layers
ROLES: tuple[str, ...] = ("attn", "attn_proj", "mlp")
# canonical names of the adaptable matrices of a block, in order
MATRICES: tuple[str, ...] = ("q", "k", "v", "out", "fc1", "fc2")


def check_towers(towers: Iterable[str]) -> tuple[str, ...]:
    """`towers` as a tuple, each 'vision' or 'text' (at least one)."""
    towers = (towers,) if isinstance(towers, str) else tuple(towers)
    bad = [t for t in towers if t not in TOWERS]
    if bad or not towers:
        raise ValueError(f"towers={towers!r}: accepted are 'vision' and 'text' (at least one)")
    return towers


def copy_module(module: nn.Module) -> nn.Module:
    """copy.deepcopy, except that the read-only helpers of every backend inside (tokenizers) are shared.

    A CLIP BPE tokenizer holds ~100k-entry Python dicts: copying them costs more than copying
    the weights of a small model, and nothing ever writes to them. Works on a backend or on any
    module holding backends (an ImageClassifier).
    """
    memo = {}
    for m in module.modules():
        if isinstance(m, ClipBackend):
            for obj in m.read_only_state():
                memo[id(obj)] = obj
    return _copy.deepcopy(module, memo)


# slack on the [0, 1] pixel range for float rounding (bicubic resizing is clamped, but sums of fills are not)
PIXEL_TOLERANCE = 1e-6


def check_pixels(images, name: str = "images") -> None:
    """Raise TypeError unless `images` is a floating-point tensor, ValueError unless its values are in [0, 1].

    Pixels are floats in [0, 1] everywhere in the workbench: uint8 or 0-255 floats would give NaN
    logits or silently different predictions after normalisation. Costs one min/max reduction, and on
    a GPU a host-device sync: inside `workbench.engine.trusted_inputs()` (the engine's training loop
    after its first step) the range is not read again; the type check always runs.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of float pixels in [0, 1], got {type(images).__name__}")
    if not images.dtype.is_floating_point:
        hint = " (uint8 pixels: use images.float() / 255)" if images.dtype == torch.uint8 else ""
        raise TypeError(f"{name} have dtype {images.dtype}; accepted: floating point pixels in [0, 1]{hint}")
    if images.numel() == 0 or inputs_trusted():  # the engine's hot loop, after its first step was checked
        return
    with torch.no_grad():
        lo, hi = torch.aminmax(images.detach())
        lo, hi = float(lo), float(hi)
    if not (lo >= -PIXEL_TOLERANCE and hi <= 1 + PIXEL_TOLERANCE):  # NaN fails too
        hint = " (0-255 pixels? divide them by 255)" if 2 < hi <= 255 else ""
        raise ValueError(f"{name} have values in [{lo:.6g}, {hi:.6g}]; accepted: pixels in [0, 1]{hint}")


def check_mean_std(mean, std, where: str = "") -> None:
    """ValueError naming the values unless `mean` and `std` are 3 finite numbers each and every std > 0
    (a zero std divides the pixels by zero, a negative one flips them: both load silently otherwise)."""
    import math
    import numbers

    for name, values in (("mean", mean), ("std", std)):
        ok = (isinstance(values, (list, tuple)) and len(values) == 3
              and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values))
        if not ok:
            raise ValueError(f"{where}{name}={values!r}; accepted: 3 finite numbers (one per RGB channel)")
    if not all(v > 0 for v in std):
        raise ValueError(f"{where}std={std!r}; accepted: 3 finite numbers > 0 (pixels are divided by them)")


class ClipBackend(nn.Module):
    """Base class: a CLIP-like model with an image tower and a text tower."""

    name: str
    kind: str  # "open_clip" | "hf_clip": a label for people; methods never branch on it
    image_size: int
    patch_size: int
    embed_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model: nn.Module  # the wrapped network; names below are relative to it

    # role -> leaf module names (see ROLES); which roles LoRA / nn.Linear-only tuners target by default
    LAYER_ROLES: dict[str, tuple[str, ...]] = {}
    LORA_ROLES: tuple[str, ...] = ()
    LINEAR_ROLES: tuple[str, ...] = ()
    # leaf name of an adaptable nn.Linear -> its canonical matrix (MATRICES); fused attention is `attn`
    MATRIX_KINDS: dict[str, str] = {}
    # names of the projection heads (parameters or modules) of both towers
    PROJECTIONS: tuple[str, ...] = ()
    # attribute names of a transformer block's attention and of the LayerNorm that feeds it
    BLOCK_ATTENTION: str = ""
    BLOCK_ATTENTION_INPUT: str = ""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        check_mean_std(tuple(mean), tuple(std), f"{type(self).__name__}: pixel ")
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    # -- to implement --------------------------------------------------------------
    def _encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, S, S) -> projected image features (B, D)."""
        raise NotImplementedError

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def tokenizer(self):
        """The object that turns texts into tokens (read-only: copies of the backend share it)."""
        raise NotImplementedError

    @property
    def vision_blocks(self) -> nn.ModuleList:
        """The residual blocks of the image tower, in order; tokens are (B, 1 + N, width)."""
        raise NotImplementedError

    @property
    def text_blocks(self) -> nn.ModuleList:
        raise NotImplementedError

    @property
    def logit_scale(self) -> torch.Tensor:
        raise NotImplementedError

    def attention_modules(self) -> dict[str, nn.Module]:
        """Qualified name -> attention module, over both towers."""
        raise NotImplementedError

    def tower_of(self, name: str) -> str:
        """'vision', 'text' or 'other' (the logit scale) for a module/parameter name of `self.model`."""
        raise NotImplementedError

    def tower_modules(self, tower: str) -> list[nn.Module]:
        """The modules that make up a tower (with its projection where that is a module)."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------
    def read_only_state(self) -> tuple:
        """Objects a copy may share with the original because nothing writes to them (tokenizers)."""
        return ()

    def copy(self) -> ClipBackend:
        """A deep copy of the weights and buffers that shares the read-only tokenizer."""
        return copy_module(self)

    def tower_parameters(self, tower: str) -> list[nn.Parameter]:
        """Every parameter of a tower, including open_clip's loose ones (positional embedding,
        projections); the logit scale belongs to neither tower."""
        (tower,) = check_towers([tower])
        return [p for n, p in self.model.named_parameters() if self.tower_of(n) == tower]

    def adaptable_layers(self, role: str, towers: Sequence[str] = TOWERS) -> dict[str, nn.Module]:
        """Name (inside `self.model`) -> module, for the layers of `role` (see ROLES) in `towers`."""
        if role not in ROLES:
            raise ValueError(f"unknown layer role {role!r}; accepted: {', '.join(ROLES)}")
        return self.layers_named(self.LAYER_ROLES.get(role, ()), towers)

    def layers_named(self, leaf_names: Sequence[str], towers: Sequence[str] = TOWERS) -> dict[str, nn.Module]:
        """Name (inside `self.model`) -> module, for modules whose last name is in `leaf_names`."""
        towers = check_towers(towers)
        leaves = (leaf_names,) if isinstance(leaf_names, str) else tuple(leaf_names)
        return {n: m for n, m in self.model.named_modules()
                if n.rsplit(".", 1)[-1] in leaves and self.tower_of(n) in towers}

    def _role_leaves(self, roles: Sequence[str]) -> tuple[str, ...]:
        return tuple(leaf for r in roles for leaf in self.LAYER_ROLES.get(r, ()))

    @property
    def lora_targets(self) -> tuple[str, ...]:
        """Leaf names LoRA targets by default (attention: fused modules or their projections)."""
        return self._role_leaves(self.LORA_ROLES)

    @property
    def linear_targets(self) -> tuple[str, ...]:
        """Leaf names of the nn.Linear layers a Linear-only tuner (LoHa, LoKr, VeRA) can wrap with effect."""
        return self._role_leaves(self.LINEAR_ROLES)

    @property
    def matrix_kinds(self) -> dict[str, str]:
        """Leaf name of an adaptable nn.Linear -> canonical matrix ("q", ..., "fc2")."""
        return dict(self.MATRIX_KINDS)

    @property
    def projection_names(self) -> tuple[str, ...]:
        """Names (inside `self.model`) of the two towers' projection heads."""
        return self.PROJECTIONS

    def block_attention(self, block: nn.Module) -> nn.Module:
        """The attention module of one transformer block."""
        return self._block_part(block, self.BLOCK_ATTENTION, "attention")

    def block_attention_input(self, block: nn.Module) -> nn.Module:
        """The module whose output feeds a block's attention (its first LayerNorm)."""
        return self._block_part(block, self.BLOCK_ATTENTION_INPUT, "first LayerNorm")

    def _block_part(self, block: nn.Module, attr: str, what: str) -> nn.Module:
        part = getattr(block, attr, None) if attr else None
        if part is None:
            raise NotImplementedError(f"no {what} {attr or '(unknown)'!r} in the block ({type(block).__name__}) "
                                      f"of {self.name}")
        return part

    @property
    def vision_attention(self) -> list[nn.Module]:
        """The attention module of every vision block, in order."""
        return [self.block_attention(b) for b in self.vision_blocks]

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @staticmethod
    def check_tokens(tokens: Any) -> None:
        """Raise unless `tokens` is an integer tensor (B, L) of token ids (what `tokenize` returns); reads only the
        tensor's dtype and shape, never its values (no host-device sync)."""
        accepted = "accepted: an integer tensor (B, L) of token ids, as model.tokenize(texts) returns"
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"tokens are a {type(tokens).__name__}; {accepted}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise TypeError(f"tokens have dtype {tokens.dtype}; {accepted}")
        if tokens.ndim != 2:
            raise ValueError(f"tokens have shape {tuple(tokens.shape)}; {accepted}")

    @staticmethod
    def check_texts(texts: Any) -> list[str]:
        """`texts` (one string or a sequence of them) as a list of strings, or TypeError naming the odd one."""
        if isinstance(texts, str):
            return [texts]
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts={texts!r} is a {type(texts).__name__}; accepted: a string or a list of strings")
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts hold {bad[0]!r} ({type(bad[0]).__name__}); accepted: strings")
        return list(texts)

    def check_images(self, images: torch.Tensor) -> None:
        """Raise unless `images` is a float tensor (B, 3, S, S) at this model's size with values in [0, 1].

        The range check is one min/max reduction and changes nothing: valid input passes untouched.
        """
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor (B, 3, S, S) of float pixels in [0, 1], "
                            f"got {type(images).__name__}")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
        if images.shape[0] == 0:
            raise ValueError(f"images hold no image (shape {tuple(images.shape)}); accepted: a batch of at least one")
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"images are {images.shape[-2]}x{images.shape[-1]} but {self.name} takes "
                f"{self.image_size}x{self.image_size}; resize them with model.resize(images)"
            )
        check_pixels(images)
        weight = next(self.model.parameters(), None)
        if weight is not None:
            if images.dtype != weight.dtype and not torch.is_autocast_enabled(images.device.type):
                raise TypeError(f"images have dtype {images.dtype} but the weights of {self.name} are {weight.dtype}; "
                                f"accepted: {weight.dtype} pixels in [0, 1] (images.to({weight.dtype}))")
            if images.device != weight.device:
                raise ValueError(f"images are on {images.device} but {self.name} is on {weight.device}; "
                                 f"move them with images.to({str(weight.device)!r})")

    def normalize_pixels(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Pixels in [0, 1] (B, 3, S, S) -> image features (B, D), L2-normalised if asked."""
        self.check_images(images)
        feats = self._encode_pixels(self.normalize_pixels(images))
        return F.normalize(feats, dim=-1) if normalize else feats

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """Resize pixel images (B, 3, H, W) to the model's resolution (bicubic, antialiased)."""
        if tuple(images.shape[-2:]) == (self.image_size, self.image_size):
            return images
        out = F.interpolate(images, size=(self.image_size,) * 2, mode="bicubic", antialias=True,
                            align_corners=False)
        return out.clamp(0, 1)

    @property
    def preprocess(self) -> Callable:
        """PIL image -> pixel tensor (3, S, S) in [0, 1] (no normalisation: encode_image does it)."""
        return T.Compose([
            T.Resize(self.image_size, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(self.image_size),
            T.Lambda(lambda im: im.convert("RGB")),
            T.ToTensor(),
        ])

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """Normalised image and text features and the logit scale, as CLIP's loss wants them."""
        return (self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True),
                self.logit_scale.exp())

    def zero_shot_head(self, classnames: Sequence[str], templates: Sequence[Callable | str]) -> ZeroShotHead:
        """A head from the mean text embedding of each class over `templates` (callables
        `name -> prompt` or format strings with one `{}`), e.g. `workbench.world.zero_shot_templates()`."""
        return ZeroShotHead.from_text(self, classnames, templates)

    def __repr__(self) -> str:  # the wrapped model's repr is pages long
        n = sum(p.numel() for p in self.parameters())
        return f"{type(self).__name__}(name={self.name!r}, image_size={self.image_size}, params={n:,})"
