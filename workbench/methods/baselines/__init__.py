"""Baselines for parameter-efficient tuning, on the same task and the same engine as mode-approx.

    from workbench.methods.baselines import apply_lora, lora_rank_for_budget
    match = lora_rank_for_budget(model, n_params=count_of_the_mode_approx_adapter)
    report = apply_lora(model, r=match.rank)    # TuningReport: exact trainable count, targets
    print(report)                               # "lora: trainable params: ... || trainable%: ..."

| method        | what trains                                  | function                |
|---------------|----------------------------------------------|-------------------------|
| linear probe  | a class head on frozen image features        | `apply_linear_probe`    |
| full FT       | every parameter of both towers               | `apply_full_finetune`   |
| BitFit        | every bias                                   | `apply_bitfit`          |
| LoRA (peft)   | low-rank q/k/v/out updates in attention (or  | `apply_lora`            |
|               | on given modules: `sites=`)                  |                         |
| LoHa (peft)   | Hadamard low-rank updates of nn.Linear       | `apply_loha`            |
| LoKr (peft)   | Kronecker updates of nn.Linear               | `apply_lokr`            |
| VeRA (peft)   | scaling vectors on frozen random projections | `apply_vera`            |
"""
from .peft_tuners import (
                          RankMatch,
                          apply_loha,
                          apply_lokr,
                          apply_lora,
                          apply_vera,
                          lora_param_count,
                          lora_rank_for_budget,
                          lora_sites,
                          target_modules,
)
from .report import TuningReport, count_all, count_trainable, freeze, make_report, tower_of
from .simple import LinearProbe, LinearProbeObjective, apply_bitfit, apply_full_finetune, apply_linear_probe

APPLY = {
    "lora": apply_lora, "loha": apply_loha, "lokr": apply_lokr, "vera": apply_vera,
    "bitfit": apply_bitfit, "full_ft": apply_full_finetune, "linear_probe": apply_linear_probe,
}

__all__ = [
    "APPLY", "LinearProbe", "LinearProbeObjective", "RankMatch",
    "TuningReport", "apply_bitfit", "apply_full_finetune", "apply_linear_probe", "apply_lokr", "apply_loha",
    "apply_lora", "apply_vera", "count_all", "count_trainable", "freeze", "lora_param_count", "make_report",
    "lora_rank_for_budget", "lora_sites", "target_modules", "tower_of",
]
