# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Mode approximation: how small can an adapter be, and what does the rank buy?
#
# **Question.** Aurora ("Parameter-efficient Tuning of Large-scale Multimodal Foundation Model",
# NeurIPS 2023) adapts a multimodal model by approximating the updates of *all* its attention and
# MLP matrices together: one low-rank set of factors `U` (d -> R), `V` (R -> d, zero at start) and
# a core `C` (R x R x R), shared by every layer of both towers, plus one mode vector `lambda`
# (length R) per adapted matrix. It claims to match or beat LoRA-style tuning with about 0.1M
# trainable parameters (0.04% of BLIP-base). Does that hold on our dual encoder, and how do the
# numbers move with the rank R?
#
# **Task.** Zero-shot is weak where the model never saw the words: `novel_train` / `novel_test`
# hold all 14 classes, 4 of them (pentagon, diamond, semicircle, chevron) never shown in
# pretraining. Every method tunes the pretrained `tiny-world-clip` on `novel_train` captions with
# CLIP's contrastive loss (the linear probe: cross-entropy on labels), through the same training
# loop, and is measured on `novel_test`: image->text and text->image recall@1/@5 (a duplicated
# caption counts as a hit) and zero-shot classification accuracy (all classes; the novel classes
# alone), plus accuracy on `heldout` (the pretraining classes), i.e. what adapting costs there.
#
# **Methods.** Mode approximation in the authors' code form (Tucker core, shared factors) at
# R = 1 ... 64; the paper's ablations (pure CP core, sharing off, gated query transformation,
# context enhancement); peft LoRA on the attention modules with its rank chosen to match the
# mode-approx parameter count at each R; LoHa, LoKr, VeRA (peft, MLP linears), BitFit, full
# fine-tuning and a linear probe. Every finished (method, rank, seed) cell is cached: rerunning
# the notebook trains only what is missing.

# %% tags=["parameters"]
output_dir = None
quick = False
model = "tiny-world-clip"
pretrained = None
ranks = None  # None: the study's default (1, 2, 4, 8, 16, 32, 64); quick mode: (2, 8)
seeds = None  # None: (0, 1); quick mode: (0,)
ablation_ranks = None  # None: (8,)
steps = None  # None: the study's default; quick mode: 4
batch_size = None
lr = None
n_eval = None
methods = None  # None: every method; e.g. ("mode_approx", "lora", "zero_shot")

# %%
from IPython.display import Markdown, display

from workbench import viz
from workbench.studies import cp_rank_ablation as study
from workbench.studies.kit import save_figure
from workbench.viz import mode_approx as mviz

cfg = study.Config.preset(quick, model=model, pretrained=pretrained, ranks=ranks, seeds=seeds,
                          ablation_ranks=ablation_ranks, steps=steps, batch_size=batch_size, lr=lr,
                          n_eval=n_eval, methods=methods)
cfg

# %% [markdown]
# ## Run the sweep
# One call trains and evaluates every cell (or reads it from the cache).

# %%
result = study.run(cfg, output_dir=output_dir)
out = result.output_dir
print(f"outputs -> {out}; cells trained now: {len(result.trained)}, read from cache: {len(result.cached)}")

# %% [markdown]
# ## Results: every method, mean ± std over seeds
# `trainable` is the exact count of parameters that received gradients. LoRA rows say which
# mode-approx R they are matched to; LoRA cannot go below rank 1, so at small R it holds more
# parameters than the adapter it is compared with. LoRA is scaled rank-stabilised (alpha/sqrt(r)),
# so one learning rate serves every rank. The linear probe changes neither encoder, so its
# retrieval is the zero-shot one (n/a here). `acc_novel` is the accuracy on the images of the 4
# classes pretraining never saw: where adaptation has to happen.

# %%
display(Markdown(viz.markdown_table(study.display_rows(result.table))))

# %% [markdown]
# ## Metric against trainable parameters (log scale)
# Lines join the ranks of the two swept methods; the dashed line is zero-shot.

# %%
fig = mviz.metric_vs_params(result.table)
save_figure(fig, out, "metric_vs_params")

# %% [markdown]
# ## The rank curve
# Mode approximation by R (error bars: std over seeds), LoRA at the same parameter budget, and
# the ablations next to their R. Tick labels give R and the adapter's parameter count.

# %%
fig = mviz.rank_curve(result.table)
save_figure(fig, out, "rank_curve")

# %% [markdown]
# ## What the adapter learned
# The shared factors of the kept adapter (R = `cfg.keep_rank`, first seed): `U` and `V`
# (V starts at zero, so everything in it was learned) and slices of the core; then the mode
# vector of every adapted matrix block (rows: V = vision, T = text; block index, matrix; MLP
# matrices have 4 blocks each), and how far each moved from its initialisation.

# %%
if result.factors is not None:
    fig = mviz.factor_heatmaps(result.factors)
    save_figure(fig, out, "factors")
    fig = mviz.mode_vector_heatmap(result.factors)
    save_figure(fig, out, "mode_vectors")
else:
    print(f"no kept adapter: mode_approx at R={cfg.keep_rank} is not part of this sweep")

# %% [markdown]
# ## At real scale
# The same parameter arithmetic on real architectures (formula and counted on the built model),
# next to the paper's "about 0.1M / 0.04%" at R = 32 (the architectures are built without
# weights, shapes only). Quick mode keeps only the formula rows for BLIP-base.

# %%
if result.real_scale:
    display(Markdown(viz.markdown_table(result.real_scale, digits=4)))

# %% [markdown]
# ## Findings
# Written from the numbers of this run (whatever the rank curve shows).

# %%
display(Markdown(result.findings))

# %% [markdown]
# ## Checks that make a headless run fail loudly

# %%
result.write()  # rewrite result.json so that it lists the figures saved above
figures = ["metric_vs_params", "rank_curve"] + (["factors", "mode_vectors"] if result.factors else [])
assert all((out / "figures" / f"{name}.png").is_file() for name in figures), figures
assert (out / "result.json").is_file()
planned = study.plan_cells(cfg, study.load_base(cfg))
assert [(r["method"], r["setting"], r["seed"]) for r in result.rows] == [(c.method, c.setting, c.seed) for c in planned]
for row in result.table:
    for m in study.METRICS:
        assert row[m] is None or 0.0 <= row[m] <= 1.0, (row["method"], m, row[m])
    assert row["method"] == "zero_shot" or row["trainable"] > 0, row
if "mode_approx" in cfg.methods:
    assert sorted(r["rank"] for r in result.of("mode_approx")) == sorted(cfg.ranks)
    assert result.factors is not None or cfg.keep_rank not in cfg.ranks
if "lora" in cfg.methods and "mode_approx" in cfg.methods:
    assert {R for r in result.of("lora") for R in r["matches_R"]} == set(cfg.ranks)
print("all checks passed")
