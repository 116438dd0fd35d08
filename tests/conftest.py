import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch


@pytest.fixture(scope="session")
def world():
    from workbench.world import World

    return World()


@pytest.fixture(scope="session")
def tiny_random():
    """tiny-world-clip's architecture with random weights (seeded)."""
    from workbench.models import build_tiny

    torch.manual_seed(0)
    return build_tiny().eval()


@pytest.fixture(scope="session")
def tiny_hf_config():
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=24, vocab_size=49408),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32,
    )
