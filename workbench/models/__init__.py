"""Models behind one interface: open_clip, Hugging Face CLIP, and the embedded tiny-world-clip."""
from .base import MATRICES, PIXEL_TOLERANCE, ROLES, TOWERS, ClipBackend, check_pixels, check_towers, copy_module
from .hf_clip import HFClipModel
from .modes import eval_mode
from .open_clip_backend import OpenClipModel
from .params import count_all, count_trainable, freeze, unique_parameters
from .real_photo import PhotoClassifier, load_efficientnet_lite0, preprocess_photo, real_photos
from .registry import TINY_DIR, TINY_NAME, check_model, list_models, load_model, load_open_clip_dir, load_weights
from .tiny import TINY_MODEL_CFG, build_tiny
from .zero_shot import ImageClassifier, ZeroShotHead

__all__ = [
    "MATRICES", "PIXEL_TOLERANCE", "ROLES", "TOWERS", "ClipBackend", "HFClipModel", "ImageClassifier", "OpenClipModel",
    "PhotoClassifier", "TINY_DIR", "TINY_MODEL_CFG", "TINY_NAME", "ZeroShotHead", "build_tiny", "check_pixels",
    "check_model", "check_towers", "copy_module", "count_all", "count_trainable", "eval_mode", "freeze",
    "list_models", "load_model", "load_open_clip_dir", "load_weights", "load_efficientnet_lite0", "preprocess_photo",
    "real_photos", "unique_parameters",
]
