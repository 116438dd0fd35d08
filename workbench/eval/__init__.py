"""Evaluation: accuracy per split, retrieval, localisation against ground truth.

Every accuracy goes through `classification.predictions` (one loop, eval mode) and `top1`
(hits / total).
"""
from .classification import (
                             accuracy,
                             classify_features,
                             evaluate,
                             predict,
                             predictions,
                             split_accuracy,
                             top1,
                             zero_shot_accuracy,
)
from .localization import CENTRE_PRIOR, centre_prior, localization_scores, localization_table

__all__ = ["CENTRE_PRIOR", "accuracy", "centre_prior", "classify_features", "evaluate", "localization_scores",
           "localization_table", "predict", "predictions", "split_accuracy", "top1", "zero_shot_accuracy"]
