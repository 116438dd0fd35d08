"""Aurora's claims (NeurIPS 2023) as the kit judges them: ids from the design notes' inventory.

Retrieval R@1 (`r1`: image->text and text->image averaged) is the paper's retrieval claim. Mode
approximation's rank is the one chosen on the validation curves (never the test slice); LoRA is the
rank whose trainable count is nearest to it: on the attention modules (AU-2, the default run's headline),
or on exactly the modules mode approximation adapts (AU-2.sites, when `lora_same_sites` runs). "Matches
LoRA" is an equivalence claim, tested with two one-sided tests against a margin of 3 R@1 points: about
a tenth of what adaptation wins on this task (zero-shot 0.268 -> about 0.5 after 120 steps), and below
the 5-point steps the paper's tables move by.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import kit
from .findings import chosen_rank

AURORA = "Wang et al., Aurora, NeurIPS 2023"
R1 = "r1"
MATCH_MARGIN = 0.03  # R@1, as a fraction


def _chosen(rows: Sequence[dict], cfg: Any) -> int:
    r = chosen_rank(rows, cfg.seeds)
    if r is None:
        raise KeyError("no mode_approx validation curve to choose a rank from")
    return r


def _matched(method: str):
    """(rows, cfg) -> the rank of `method` (a LoRA) whose trainable count is nearest to mode approximation's at the
    chosen rank."""
    def rank(rows: Sequence[dict], cfg: Any) -> int:
        R = _chosen(rows, cfg)
        ma = next((r for r in rows if r["method"] == "mode_approx" and r["setting"] == R), None)
        lora = {r["setting"]: r["trainable"] for r in rows if r["method"] == method}
        if ma is None or not lora:
            raise KeyError(f"no {method} rows to match mode_approx's parameter count")
        return min(lora, key=lambda k: (abs(lora[k] - ma["trainable"]), k))
    return rank


_matched_lora = _matched("lora")


CHOSEN = ("mode_approx", kit.Ref("chosen R", _chosen))


def _ablation(cid: str, better: str, worse: str, words: str) -> kit.Claim:
    at = kit.Ref("ablation rank", lambda rows, cfg: cfg.ablation_ranks[0])
    return kit.Claim(cid, AURORA, words, a=(better, at), b=(worse, at), metric=R1, direction=">",
                     paper_value="ablation rows (numbers not read)", paper_table="§4.3 ablation")


CLAIMS = (
    kit.Claim("AU-1", AURORA, "mode approximation trains only 0.04% of the pretrained model's parameters",
              out_of_scope="a parameter count at BLIP scale: the study's real-scale table computes it, not a "
                           "comparison of cells"),
    kit.Claim("AU-2", AURORA, "mode approximation matches state-of-the-art PETL (LoRA) with fewer parameters",
              a=CHOSEN, b=("lora", kit.Ref("matched LoRA rank", _matched_lora)), metric=R1, direction="=",
              margin=MATCH_MARGIN, headline=True, paper_value="matches or beats LoRA and UniAdapter (numbers not read)",
              paper_table="§4.2 retrieval tables",
              note="LoRA on the attention modules (its usual place); mode approximation also adapts the MLP: "
                   "AU-2.sites is the like-for-like comparison"),
    # The same claim against LoRA on exactly mode approximation's modules. Not run by default: its cells (and 8
    # seeds of them, were it a headline claim) would take the default run from ~6.5 to ~8 CPU minutes (measured
    # 475 s with it as AU-2's side); methods=(..., "lora_same_sites") runs it, judged on cfg.seeds.
    kit.Claim("AU-2.sites", AURORA, "mode approximation matches state-of-the-art PETL (LoRA) with fewer parameters",
              a=CHOSEN, b=("lora_same_sites", kit.Ref("matched LoRA rank", _matched("lora_same_sites"))),
              metric=R1, direction="=", margin=MATCH_MARGIN, paper_table="§4.2 retrieval tables",
              paper_value="matches or beats LoRA and UniAdapter (numbers not read)",
              note="LoRA on the same modules as mode approximation (cfg.placement), rank nearest the same budget"),
    kit.Claim("AU-3", AURORA, "Aurora even outperforms full fine-tuning", a=CHOSEN, b="full_ft", metric=R1,
              direction=">", paper_value="above full FT on some tasks", paper_table="§4.2"),
    kit.Claim("AU-4", AURORA, "a larger CP rank helps, with small ranks sufficing",
              a=("mode_approx", kit.Ref("largest R", lambda rows, cfg: max(cfg.ranks))),
              b=("mode_approx", kit.Ref("smallest R", lambda rows, cfg: min(cfg.ranks))), metric=R1, direction=">",
              paper_value="the section title only; wording not recovered", paper_table="§4.3"),
    _ablation("AU-5", "mode_approx_context", "mode_approx", "informative context enhancement improves the scores"),
    _ablation("AU-6", "mode_approx_gated", "mode_approx", "the gated query transformation improves the scores"),
    _ablation("AU-7", "mode_approx", "mode_approx_noshare", "sharing factors across layers and towers helps"),
    kit.Claim("AU-8", AURORA, "state of the art on six cross-modal benchmarks and two zero-shot tasks",
              out_of_scope="benchmark claim (VQA, VideoQA, video-text retrieval) beyond workbench scale"),
)
