"""Dataset wrappers: one step-indexed batch source + evaluation interface for world and ImageFolder data.

    data = WorldSplits(World(), n_train=2048, batch_size=64)             # embedded default
    data = ImageFolderSplits("train/", {"id_test": "val/", "sketch": "sketch/"},
                             preprocess=model.preprocess)                # scale path
    batch = data.batches(step)        # {"images", "labels", "index"} for workbench.engine.train
    data.templates                    # the zero-shot prompts of this data's classes
    accs = workbench.eval.evaluate(classifier, data, n=1000)   # {split: accuracy}, ID and OOD splits
"""
from .base import ClassificationData, EvalSet
from .event_features import MODALITIES, EventFeatures, load_paper_features
from .imagefolder import IMAGE_EXTENSIONS, ImageFolderSplits, folder_classnames
from .world import OOD_SPLITS, WorldSplits

__all__ = ["ClassificationData", "EvalSet", "EventFeatures", "IMAGE_EXTENSIONS", "ImageFolderSplits", "MODALITIES",
           "OOD_SPLITS", "WorldSplits", "folder_classnames", "load_paper_features"]
