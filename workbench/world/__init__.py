"""The synthetic world: shapes on contexts, with ground truth masks, captions, clips, sounds."""
from .captions import COLOR_NAMES, DIRECTIONS, ZERO_SHOT_TEMPLATES, zero_shot_templates
from .contexts import CONTEXT_NAMES, SEEN_CONTEXTS, UNSEEN_CONTEXTS, texture_bank
from .events import EventBatch, EventConfig, events
from .shapes import ALL_CLASSES, NOVEL_CLASSES, PRETRAIN_CLASSES
from .world import EVAL_SPLITS, SPLITS, ClipBatch, SceneBatch, SplitName, SplitSpec, World, WorldConfig

__all__ = [
    "ALL_CLASSES", "CONTEXT_NAMES", "COLOR_NAMES", "DIRECTIONS", "EVAL_SPLITS", "NOVEL_CLASSES",
    "PRETRAIN_CLASSES", "SEEN_CONTEXTS", "SPLITS", "SplitName", "UNSEEN_CONTEXTS", "ZERO_SHOT_TEMPLATES",
    "ClipBatch", "EventBatch", "EventConfig", "SceneBatch", "SplitSpec", "World", "WorldConfig", "texture_bank",
    "events", "zero_shot_templates",
]
