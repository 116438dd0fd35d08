"""Robust fine-tuning of CLIP image classifiers: the baselines and counterfactual masked distillation.

Every method trains through `workbench.engine.train`; the classifier is an ImageClassifier whose
head starts from the zero-shot text embeddings. See `methods.py` for the list (METHODS).
"""
from .cam_cache import TeacherCams, build_teacher_cams
from .classifier import (
                         as_teacher,
                         clone_module,
                         frozen_copy,
                         set_trainable,
                         text_parameters,
                         vision_modules,
                         zero_shot_classifier,
)
from .masking import CAM_SOURCES, MaskDistillObjective, MaskSpec, logits_with_cam, step_generator
from .methods import (
                         METHOD_NAMES,
                         METHODS,
                         FineTuneConfig,
                         FineTuned,
                         MethodInfo,
                         check_methods,
                         fine_tune,
                         pool_features,
                         visited_indices,
                         with_dependencies,
)
from .objectives import CrossEntropyObjective, FeatureDistillObjective, FlypObjective, LinearProbeObjective
from .wise import wise_ft, wise_state

__all__ = [
    "CAM_SOURCES", "METHODS", "METHOD_NAMES", "CrossEntropyObjective", "FeatureDistillObjective", "FineTuneConfig",
    "FineTuned", "FlypObjective", "LinearProbeObjective", "MaskDistillObjective", "MaskSpec", "MethodInfo",
    "TeacherCams", "as_teacher", "build_teacher_cams", "check_methods", "clone_module", "fine_tune", "frozen_copy",
    "logits_with_cam", "pool_features", "set_trainable", "step_generator", "text_parameters", "visited_indices",
    "vision_modules", "wise_ft", "wise_state", "with_dependencies", "zero_shot_classifier",
]
