"""Uni-Code (CMG, NeurIPS 2023): a discrete codebook shared across modalities, its baselines and its evaluation.

`features` (frozen-encoder feature extraction) is written by study 3's data side and imported from there.
"""
from .baselines import LibraryQuantizer, build_quantizer
from .club import CLUB
from .cmcm import cmcm_loss, soft_codes
from .config import MODALITIES, QUANTIZERS, RESET_RULES, VARIANTS, CodebookConfig
from .cpc import CrossCPC
from .diagnostics import grad_norms, loss_grad_norms
from .infonce import masked_infonce
from .model import Losses, UniCode, features_of
from .quantizer import EMACodebook, QuantOut, ema_step, nearest
from .train import TrainHistory, restore, train_unicode
from .transfer import (
    HeadConfig,
    RetrievalResult,
    TransferResult,
    code_retrieval,
    toc_dimensions,
    toc_scores,
    transfer_matrix,
)
from .usage import (
    FeatureAlignment,
    SharedFraction,
    code_usage,
    dead_codes,
    feature_alignment,
    perplexity,
    purity,
    shared_fraction,
)

__all__ = [
    "CLUB", "MODALITIES", "QUANTIZERS", "RESET_RULES", "VARIANTS", "CodebookConfig", "CrossCPC", "EMACodebook",
    "FeatureAlignment", "HeadConfig", "LibraryQuantizer", "Losses", "QuantOut", "RetrievalResult", "SharedFraction",
    "TrainHistory", "TransferResult", "UniCode", "build_quantizer", "cmcm_loss", "code_retrieval", "code_usage",
    "dead_codes", "ema_step", "feature_alignment", "features_of", "grad_norms", "loss_grad_norms", "masked_infonce",
    "nearest", "perplexity", "purity", "restore", "shared_fraction", "soft_codes", "toc_dimensions", "toc_scores",
    "train_unicode", "transfer_matrix",
]
