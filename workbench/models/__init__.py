"""Models behind one interface: open_clip, Hugging Face CLIP, and the embedded tiny-world-clip."""
from .base import ClipBackend
from .hf_clip import HFClipModel
from .open_clip_backend import OpenClipModel
from .real_photo import PhotoClassifier, load_efficientnet_lite0, photo_counterfactuals, real_photos
from .registry import TINY_DIR, TINY_NAME, list_models, load_model, load_open_clip_dir, load_weights
from .tiny import TINY_MODEL_CFG, build_tiny
from .zero_shot import ImageClassifier, ZeroShotHead

__all__ = [
    "ClipBackend", "HFClipModel", "ImageClassifier", "OpenClipModel", "PhotoClassifier", "TINY_DIR", "TINY_MODEL_CFG",
    "TINY_NAME", "ZeroShotHead", "build_tiny", "list_models", "load_model", "load_open_clip_dir",
    "load_weights", "load_efficientnet_lite0", "photo_counterfactuals", "real_photos",
]
