"""A modular multimodal model (mPLUG-2, ICML 2023) at workbench scale, built around a dual encoder's towers.

Modules (one per file): the vision encoder shared by images and frames with local temporal modules
(`vision`, `temporal`), universal layers = the text encoder's last k blocks shared with vision through
latent queries (`universal`), the text encoder (`text`), fusion layers and a text decoder (`fusion`,
`decoder`), heads (`heads`), token-level routing (`routing`), module selection (`tasks`), the model
(`model`) and the cost of a path (`flops`).

    model = ModularModel.from_backend(load_model(TINY_NAME), ModularConfig(shared_layers=2))
    out = model.run("video_retrieval", {"clips": clips, "text": model.tokenize(captions)})
    valid_paths("captioning")   # [('vision', 'temporal', 'universal', 'decoder'), ...]
"""
from .config import ROUTINGS, ModularConfig
from .decoder import TextDecoder
from .flops import count_flops, module_flops
from .fusion import FusionLayers
from .heads import ClassifierHead, ContrastiveHead, QAHead
from .model import BATCH_KEYS, ModularModel, TaskOutput, VisualTokens, module_seed
from .routing import MODALITIES, Multiway
from .tasks import HEADS, MODULES, TASKS, TaskSpec, check_path, check_task, valid_paths
from .temporal import TemporalModule
from .text import TextEncoder, TextStates
from .universal import UniversalLayers
from .vision import VisionEncoder

__all__ = [
    "BATCH_KEYS", "HEADS", "MODALITIES", "MODULES", "ROUTINGS", "TASKS", "ClassifierHead", "ContrastiveHead",
    "FusionLayers", "ModularConfig", "ModularModel", "Multiway", "QAHead", "TaskOutput", "TaskSpec",
    "TemporalModule", "TextDecoder", "TextEncoder", "TextStates", "UniversalLayers", "VisionEncoder", "VisualTokens",
    "check_path", "check_task", "count_flops", "module_flops", "module_seed", "valid_paths",
]
