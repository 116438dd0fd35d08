"""Mode approximation (Aurora, NeurIPS 2023): shared-factor adapters on both towers of a CLIP.

    from workbench.methods.mode_approx import ModeApproxConfig, inject_mode_approx, merge
    report = inject_mode_approx(model, ModeApproxConfig(rank=8))   # model: a ClipBackend
    print(report)

config.py holds the knobs, layer.py the factors and wrapped layers, model.py injection /
merging / saving / the context-enhanced objective, counting.py the parameter arithmetic.
"""
from .config import FORMS, KINDS, PAPER_TARGETS, PLACEMENTS, PREFIX, TOWERS, ModeApproxConfig, placement_targets
from .counting import (
                       STAND_IN,
                       FormulaCount,
                       ScaleRow,
                       TowerDims,
                       blip_base_stand_in,
                       format_table,
                       formula_breakdown,
                       formula_from_dims,
                       formula_param_count,
                       open_clip_architecture,
                       real_scale_table,
                       tower_dims,
)
from .layer import ModeApproxLinear, ModeApproxMultiheadAttention, ModeFactors, OutputGate
from .model import (
                       ContextContrastiveObjective,
                       InjectionReport,
                       ParamCount,
                       adapted_modules,
                       adapter_state_dict,
                       block_sites,
                       count_adapter_params,
                       count_trainable,
                       describe_sites,
                       inject_mode_approx,
                       is_merged,
                       load_adapter_state_dict,
                       merge,
                       objective_for,
                       print_trainable_parameters,
                       unload,
                       unmerge,
)

__all__ = [
    "FORMS", "KINDS", "PAPER_TARGETS", "PLACEMENTS", "PREFIX", "STAND_IN", "TOWERS",
    "ContextContrastiveObjective", "FormulaCount", "InjectionReport", "ModeApproxConfig", "ModeApproxLinear",
    "ModeApproxMultiheadAttention", "ModeFactors", "OutputGate", "ParamCount", "ScaleRow", "TowerDims",
    "adapted_modules", "adapter_state_dict", "blip_base_stand_in", "block_sites", "count_adapter_params",
    "count_trainable", "describe_sites", "format_table", "formula_breakdown", "formula_from_dims",
    "formula_param_count", "inject_mode_approx", "is_merged", "load_adapter_state_dict", "merge", "objective_for",
    "open_clip_architecture", "placement_targets", "print_trainable_parameters", "real_scale_table", "tower_dims",
    "unload", "unmerge",
]
