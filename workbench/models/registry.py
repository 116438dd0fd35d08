"""`load_model`: one entry point for every backend.

    load_model("tiny-world-clip")                      # the embedded default, from data/
    load_model("ViT-B-32", pretrained=None)            # open_clip architecture, random init
    load_model("ViT-B-32", pretrained="laion2b_s34b_b79k")   # an open_clip tag (needs the hub)
    load_model("ViT-B-32", pretrained="/weights/vitb32.pt")  # a local weight file
    load_model("local-dir:/weights/my-clip")           # a folder with open_clip_config.json
    load_model("hf:openai/clip-vit-base-patch32")      # transformers CLIPModel: hub name or folder
    load_model(CLIPConfig(...))                        # transformers CLIPModel, random init
"""
from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch

from workbench.checks import BadType, BadValue, check_device, check_finite, load_error

from .base import ClipBackend, check_mean_std
from .hf_clip import HFClipModel
from .open_clip_backend import OpenClipModel

TINY_NAME = "tiny-world-clip"
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
TINY_DIR = DATA_DIR / TINY_NAME


def list_models() -> list[str]:
    return [TINY_NAME, *open_clip.list_models(), "hf:<name or folder>", "local-dir:<folder>"]


def load_model(name, pretrained: str | None = None, device: str | torch.device = "cpu") -> ClipBackend:
    """Build a model by name; see the module docstring for what `name` accepts."""
    device = check_device(device)  # before minutes of loading: "gpu", "cuda:0" without CUDA, ...
    if not isinstance(name, str):
        from transformers import CLIPConfig

        if isinstance(name, CLIPConfig):
            return HFClipModel.from_config(name).to(device)
        raise TypeError(f"model must be a name (str) or a transformers CLIPConfig, got {type(name).__name__}")
    check_model(name, pretrained)
    if name == TINY_NAME:
        if pretrained is not None and Path(pretrained).is_file():  # a weights file for the tiny architecture
            model = load_open_clip_dir(TINY_DIR, name=TINY_NAME, weights=Path(pretrained))
        else:
            model = load_open_clip_dir(TINY_DIR if pretrained is None else Path(pretrained), name=TINY_NAME)
    elif name.startswith("hf:"):
        model = _load_hf(name[3:])
    elif name.startswith("local-dir:"):
        model = load_open_clip_dir(Path(name[len("local-dir:"):]), name=name)
    else:
        model = _load_open_clip(name, pretrained)
    return model.to(device).eval()


def check_model(name: str, pretrained: str | Path | None = None) -> None:
    """What `load_model(name, pretrained)` accepts, checked without loading anything (a study's Config calls it,
    so a bad name stops a run before it starts): BadType / BadValue naming the value, FileNotFoundError for a
    folder or weights file that is not there. Hub names (hf:, open_clip tags) are checked by form only."""
    if not isinstance(name, str):
        raise BadType(f"model={name!r} is a {type(name).__name__}; accepted: a model name (str): {ACCEPTED_NAMES}")
    if pretrained is not None and not isinstance(pretrained, (str, Path)):
        raise BadType(f"pretrained={pretrained!r} is a {type(pretrained).__name__}; accepted: None, a tag (str) or "
                      "the path of a weights file or folder (str or Path)")
    if isinstance(pretrained, str) and not pretrained.strip():
        raise BadValue(f"pretrained={pretrained!r} is blank; accepted: None (the shipped weights / random init), a "
                       "tag or the path of a weights file or folder")
    for prefix, what in (("hf:", "a hub name or a folder"), ("local-dir:", "a folder")):
        if name.startswith(prefix):
            if not name[len(prefix):].strip():
                raise BadValue(f"model {name!r} names nothing after {prefix!r}; accepted: '{prefix}<{what}>'")
            if pretrained is not None:
                raise BadValue(f"pretrained={str(pretrained)!r} with model {name!r}, which brings its own weights "
                               f"(pretrained would be ignored); accepted: pretrained=None with {prefix!r} models")
            if prefix == "local-dir:" and not Path(name[len(prefix):]).is_dir():
                raise FileNotFoundError(f"model folder {name[len(prefix):]} does not exist (or is not a folder); "
                                        "expected a folder with open_clip_config.json and one *.safetensors file")
            return
    if name == TINY_NAME:
        if pretrained is not None and not Path(pretrained).exists():
            raise FileNotFoundError(f"pretrained={str(pretrained)!r} does not exist; accepted for {TINY_NAME}: None "
                                    "(the shipped weights), a safetensors file or a model folder")
        return
    known = open_clip.list_models()
    if name not in known:
        close = [m for m in known if name.lower().replace("/", "-") in m.lower()][:8] if name.strip() else []
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; accepted: {ACCEPTED_NAMES}")
    if pretrained is not None and Path(pretrained).is_dir():
        raise BadValue(f"pretrained={str(pretrained)!r} is a folder; accepted for {name}: a weights file or one of its "
                       "tags (a model folder goes in model='local-dir:<folder>')")
    if pretrained is not None and not Path(pretrained).exists():
        tags = [t for m, t in open_clip.list_pretrained() if m == name]
        if pretrained not in tags:
            raise ValueError(
                f"pretrained={str(pretrained)!r} is neither a file nor a tag of {name}; tags: "
                f"{', '.join(tags) or 'none'} (tags need the model hub; offline, pass a local file)")


ACCEPTED_NAMES = (f"{TINY_NAME!r}, any open_clip name (open_clip.list_models()), 'hf:<name or folder>', "
                  "'local-dir:<folder>', or a transformers CLIPConfig")


def _load_hf(name_or_dir: str) -> HFClipModel:
    try:
        model = HFClipModel.from_pretrained(name_or_dir)
    except OSError as e:
        raise OSError(
            f"could not load a transformers CLIPModel from {name_or_dir!r}: pass a local folder with "
            f"config.json and weights, or a hub name when online ({e.__class__.__name__}: {e})"
        ) from None
    check_finite_weights(model.model, f"hf:{name_or_dir}")
    return model


def _load_open_clip(name: str, pretrained: str | None) -> OpenClipModel:
    check_model(name, pretrained)  # a known open_clip name; pretrained a file or one of its tags
    is_file = pretrained is not None and Path(pretrained).is_file()
    try:
        model, _, val = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    except RuntimeError as e:
        if is_file:
            raise ValueError(f"checkpoint {pretrained} does not load into {name}: {e}") from None
        raise RuntimeError(f"could not load {name} with pretrained={pretrained!r}: {e}") from None
    except Exception as e:  # a corrupt file: unpickling, truncated zip or safetensors header, ...
        if not is_file:
            raise
        raise ValueError(f"checkpoint {pretrained} is corrupt or not a {name} weights file ({_why(e)})") from None
    if is_file:
        check_finite_weights(model, f"checkpoint {pretrained}")
    mean, std = _mean_std(val)
    return OpenClipModel(model, name, open_clip.get_tokenizer(name), mean, std)


def load_open_clip_dir(path: Path, name: str, weights: Path | None = None) -> OpenClipModel:
    """A folder holding open_clip_config.json and a weights file (how data/tiny-world-clip ships);
    `weights` names another safetensors file for the folder's architecture."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder {path} does not exist (or is not a folder); expected a folder with "
                                f"open_clip_config.json and one *.safetensors file")
    cfg_path = path / "open_clip_config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(
            f"no open_clip_config.json in {path}; for {TINY_NAME} run `workbench pretrain` to rebuild it")
    weights = [Path(weights)] if weights is not None else sorted(path.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"no *.safetensors weights in {path}")
    cfg, model_cfg = read_open_clip_config(cfg_path)
    pre = cfg.get("preprocess_cfg") or {}
    if not isinstance(pre, dict):
        raise ValueError(f"{cfg_path}: preprocess_cfg is a JSON {type(pre).__name__}; accepted: an object with "
                         "'mean' and 'std' (3 numbers each)")
    mean = pre.get("mean", open_clip.OPENAI_DATASET_MEAN)
    std = pre.get("std", open_clip.OPENAI_DATASET_STD)
    check_mean_std(mean, std, f"{cfg_path}: preprocess_cfg ")  # before building: a bad std costs nothing yet
    try:
        model = open_clip.model.CLIP(**model_cfg)
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as e:
        raise ValueError(f"{cfg_path}: model_cfg does not describe an open_clip CLIP ({type(e).__name__}: {e})"
                         ) from None
    load_weights(model, weights[0])
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=model_cfg["text_cfg"]["context_length"])
    return OpenClipModel(model, name, tok, tuple(mean), tuple(std))


def read_open_clip_config(cfg_path: Path) -> tuple[dict, dict]:
    """The parsed open_clip_config.json and its model_cfg, with errors that name the file and what is wrong."""
    try:
        cfg = json.loads(Path(cfg_path).read_text())
    except UnicodeDecodeError as e:
        raise ValueError(f"{cfg_path} is not a text file ({e}); expected open_clip JSON") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_path} holds a JSON {type(cfg).__name__}; expected an object with 'model_cfg'")
    model_cfg = cfg.get("model_cfg")
    if not isinstance(model_cfg, dict):
        raise ValueError(f"{cfg_path} has no 'model_cfg' object (keys: {', '.join(cfg) or 'none'})")
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in model_cfg]
    if missing:
        raise ValueError(f"{cfg_path}: model_cfg lacks {', '.join(map(repr, missing))} "
                         f"(keys there: {', '.join(model_cfg) or 'none'})")
    if not isinstance(model_cfg["text_cfg"], dict) or "context_length" not in model_cfg["text_cfg"]:
        raise ValueError(f"{cfg_path}: model_cfg.text_cfg lacks 'context_length'")
    sizes = [("embed_dim", model_cfg["embed_dim"])] + [
        (f"{tower}.{k}", model_cfg[tower].get(k)) for tower in ("vision_cfg", "text_cfg") if
        isinstance(model_cfg[tower], dict) for k in SIZE_KEYS if k in model_cfg[tower]]
    size = lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= 1
    for key, value in sizes:
        if not (size(value) or isinstance(value, list) and value and all(map(size, value))):
            raise ValueError(f"{cfg_path}: model_cfg.{key}={value!r}; accepted: a positive integer (a size; an image "
                             "or patch size may be a list of them)")
    return cfg, model_cfg


# sizes in an open_clip config's vision_cfg / text_cfg: positive integers
SIZE_KEYS = ("width", "layers", "heads", "patch_size", "image_size", "context_length", "vocab_size")


def load_weights(model: torch.nn.Module, file: Path) -> None:
    """Load a safetensors state dict with a clear error for a missing or corrupt file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint {file} does not exist")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"checkpoint {file} is corrupt or not a safetensors file ({e})") from None
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {file} does not fit the model: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    shapes = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if shapes:
        k = shapes[0]
        raise ValueError(
            f"checkpoint {file} does not fit the model described in {file.parent}: {len(shapes)} tensors differ in "
            f"shape, the first {k!r} is {tuple(state[k].shape)} in the file but {tuple(own[k].shape)} in the model "
            f"(the config and the weights of {file.parent} come from different models)")
    for k, t in state.items():
        if t.is_floating_point():
            try:
                check_finite(t, f"tensor {k!r}")
            except ValueError as e:
                raise ValueError(f"checkpoint {file} holds non-finite weights: {e} (a diverged training run?); "
                                 "nothing was loaded") from None
    model.load_state_dict(state, strict=True)


def check_finite_weights(model: torch.nn.Module, source: str) -> None:
    """ValueError naming `source` and the first parameter or buffer holding NaN or an infinity."""
    for k, t in model.state_dict().items():
        if t.is_floating_point():
            try:
                check_finite(t, f"tensor {k!r}")
            except ValueError as e:
                raise ValueError(f"{source} holds non-finite weights: {e} (a diverged training run?)") from None


def _why(e: Exception) -> str:
    """An exception in one line for a loader's message, never passing on torch's advice to load unsafely."""
    return load_error(e)


def _mean_std(transform) -> tuple[tuple, tuple]:
    for t in getattr(transform, "transforms", []):
        if t.__class__.__name__ == "Normalize":
            return tuple(t.mean), tuple(t.std)
    return open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
