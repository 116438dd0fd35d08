"""Evaluation: accuracy per split, retrieval, localisation against ground truth."""
from .classification import accuracy, predict, zero_shot_accuracy

__all__ = ["accuracy", "predict", "zero_shot_accuracy"]
