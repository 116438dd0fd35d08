"""Class activation maps on CLIP image towers, and the counterfactual images they choose.

    cam = compute_cam(classifier, images, labels, method="gradcam")    # (B, g, g) in [0, 1]
    cf = counterfactual(classifier, images, labels, kind="object", fill="single",
                        threshold=0.3, generator=torch.Generator().manual_seed(0))
    cf.images, cf.mask, cf.cam

Methods: `gradcam` (last block, tokens), `rollout` (attention relevance over all blocks, the
counterfactual-masking paper's code), and the pytorch-grad-cam gallery by class name.
`CamFrames` computes what the CAM explorer (`workbench.viz.cam`) draws; `real_photo` masks real
photos on EfficientNet-Lite0's Grad-CAM (`photo_counterfactuals`).
Everything is torch-native and batched, runs on the input's device, and leaves the
classifier as it found it (training flags, `requires_grad`, `.grad`, hooks).
"""
from ._common import eval_mode, normalize_max, resolve_targets, target_score, untouched_parameters
from .attention import recorded_attention
from .compute import ALL_CAM_METHODS, CAM_METHODS, check_method, compute_cam
from .explore import CamFrames
from .gradcam import capture_output, gradcam, gradcam_from_tokens, token_layer
from .library import LIBRARY_CAMS, library_cam, tokens_to_maps
from .masks import FILLS, MASK_KINDS, Counterfactual, apply_fill, counterfactual, make_mask, predict_probs
from .real_photo import PhotoMasking, photo_cam, photo_counterfactuals
from .rollout import relevance_rollout, rollout_from_attention

__all__ = [
    "ALL_CAM_METHODS", "CAM_METHODS", "FILLS", "LIBRARY_CAMS", "MASK_KINDS", "CamFrames", "Counterfactual",
    "PhotoMasking", "apply_fill", "capture_output", "check_method", "compute_cam", "counterfactual", "eval_mode",
    "gradcam", "gradcam_from_tokens", "library_cam", "make_mask", "normalize_max", "photo_cam",
    "photo_counterfactuals", "predict_probs", "recorded_attention", "relevance_rollout", "resolve_targets",
    "rollout_from_attention", "target_score", "token_layer", "tokens_to_maps", "untouched_parameters",
]
