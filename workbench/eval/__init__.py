"""Evaluation: accuracy per split, retrieval, localisation against ground truth."""
from .classification import accuracy, predict, zero_shot_accuracy
from .localization import CENTRE_PRIOR, centre_prior, localization_scores, localization_table

__all__ = ["CENTRE_PRIOR", "accuracy", "centre_prior", "localization_scores", "localization_table", "predict",
           "zero_shot_accuracy"]
