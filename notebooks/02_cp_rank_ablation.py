# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
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
# (length R) per adapted matrix. It claims to match or beat LoRA-style tuning and full
# fine-tuning on image-text retrieval with about 0.1M trainable parameters (0.04% of BLIP-base).
# Does that hold on our dual encoder, and how do the numbers move with the rank R?
#
# **Task: a domain shift in words the model knows.** The world's `heldout` photos (the 10
# pretraining classes, balanced over all contexts) with their backdrops at full contrast
# (`backdrop_contrast = 1.0`; pretraining saw 0.35). Every word of the captions (class, colour,
# size, context) is in the pretraining vocabulary, and the captions are the pretraining ones
# (1 in 8 names colour, size and context together). Zero-shot is weak there: on the validation
# slice, accuracy 0.655 and retrieval R@1 0.268, against 0.975 / 0.515 at the pretraining
# contrast (sketches, `ood_style`, were the other candidate: zero-shot 0.62 / 0.27, but 160
# steps of mode approximation or full fine-tuning moved validation R@1 by at most +0.01 / -0.04,
# so that task could not separate methods). Every method tunes the pretrained `tiny-world-clip`
# on the task's training samples with CLIP's contrastive loss (the linear probe: cross-entropy
# on labels) through the same training loop, and is measured on a test slice of the same
# domain: retrieval recall@1/@5 both ways (a duplicated caption counts as a hit; `r1` is R@1
# averaged over both directions, the headline metric) and zero-shot-head accuracy, plus
# accuracy on heldout photos at the pretraining contrast (what adapting costs there). Test
# (indices 0..), validation (1,000,000..) and training (2,000,000..) never overlap; every
# setting was picked on validation.
#
# **Methods.** Mode approximation in the authors' code form (Tucker core, shared factors) at
# several R; peft LoRA on the attention modules at the rank whose parameter count is nearest each
# R's budget (LoRA cannot go below rank 1 = 5,376 parameters, so at small R it is larger); full
# fine-tuning and a linear probe. The paper's ablations (pure CP core, sharing off, the gated
# query transformation, context enhancement) and the other adapters (LoHa, LoKr, VeRA, BitFit)
# are registered and left out of the default sweep for CPU time: `methods=(...)` runs them.
# Every finished (method,
# rank, seed) cell is cached: rerunning the notebook trains only what is missing.
#
# **Where the adapters sit (`placement`).** By default (`placement="all"`) mode approximation
# updates every attention matrix (q, k, v, out) and both MLP matrices of *both* towers. The
# authors' code (WillDreamer/Aurora) updates the image tower's attention and MLP but only the
# text encoder's q, k, v (in BLIP those include its image cross-attention, which a dual encoder
# has not): `placement="paper"`. "all" stays the default: the other settings were chosen with it,
# and on the validation slice the paper's placement scored within a point of it at every R (2
# seeds, whose own spread is up to 4 points; `EVIDENCE.md#placement`).
#
# **LoRA like for like.** LoRA on the attention modules adapts fewer kinds of matrix than mode
# approximation (no MLP), so the claim AU-2 ("matches LoRA") compares unlike placements.
# `lora_same_sites` puts peft LoRA on exactly the modules mode approximation adapts at
# `placement` (peft updates a fused attention's q, k, v together through `in_proj`; with the
# paper's placement the text attention's output projection keeps its weights), at the rank nearest
# each R's budget on those modules, and the claim AU-2.sites compares against it. It is opt-in
# (`methods=(..., "lora_same_sites")`): with it the default run would take about 7.7 to 7.9 CPU
# minutes instead of about 6.6 (`EVIDENCE.md#methods`), so by default AU-2.sites reads "not run".
# `lora_dropout` is the same LoRA at mode approximation's dropout (`dropout`, 0.1; peft drops only
# on its nn.Linear sites, the MLP here).
#
# **Secondary result: new words.** The study's first task (learning 4 classes whose names
# pretraining never used) measured vocabulary learning, which attention/MLP adapters cannot do:
# the section "Why not the novel-word task" shows the token-embedding evidence.
# %% tags=["parameters"]
output_dir = None
quick = False
model = "tiny-world-clip"
pretrained = None
ranks = None  # None: the study's default (2, 8, 32); quick mode: (2, 8)
seeds = None  # None: every method on (0, 1); quick mode: the quick preset's seeds
claim_seeds = None  # None: (2, ..., 7) more for the cells the headline claims compare (8 in all); quick: ()
ablation_ranks = None  # None: (8,)
steps = None  # None: the study's default; quick mode: 4
batch_size = None
lr = None
n_eval = None  # None: 1000 test pairs; quick mode: 48
gallery = None  # None: retrieval ranks within galleries of 250 test pairs (the task's difficulty)
eval_every = None  # steps between validation looks (the convergence curves)
backdrop_contrast = None  # the task domain; None: 1.0
methods = None  # None: the default sweep; e.g. ("mode_approx", "lora", "lora_same_sites", "zero_shot")
placement = None  # where mode approximation adapts; None: "all" (attention + MLP, both towers); "paper"

# %%
from IPython.display import Markdown, display

from workbench import viz
from workbench.studies import cp_rank_ablation as study
from workbench.studies.kit import save_figure
from workbench.viz import mode_approx as mviz

cfg = study.Config.preset(quick, model=model, pretrained=pretrained, ranks=ranks, seeds=seeds, claim_seeds=claim_seeds,
                          ablation_ranks=ablation_ranks, steps=steps, batch_size=batch_size, lr=lr,
                          n_eval=n_eval, gallery=gallery, eval_every=eval_every, backdrop_contrast=backdrop_contrast,
                          methods=methods, placement=placement)
cfg

# %% [markdown]
# ## Run the sweep
# One call trains and evaluates every cell (or reads it from the cache).

# %%
result = study.run(cfg, output_dir=output_dir)
cfg = result.config  # as it ran: methods="all" spelled out
out = result.output_dir
print(f"outputs -> {out}; cells trained now: {len(result.trained)}, read from cache: {len(result.cached)}")


# %% [markdown]
# ## The paper's claims
# Every claim of the paper this study declares (`study.CLAIMS`), judged by the kit on the cells above:
# **supported** / **contradicted** (the paired interval excludes zero, in or against the paper's
# direction, after Holm over the study's claims), **equivalent** (a "matches" claim whose interval
# lies inside its stated margin), **unresolved** (with the seeds that would resolve it at the observed
# spread), **not run** or **out of scope**. The second table says which cells got how many seeds and
# why: the cells a headline claim compares also run on `claim_seeds`; the others on `seeds` only.

# %%
display(Markdown(viz.claims_markdown(result.claims, result.claims_family)))
display(Markdown(viz.seeds_markdown(result.claims_family)))

# %% [markdown]
# ## Headline

# %%
display(Markdown(result.headline))

# %% [markdown]
# ## Results: every method, mean ± std over seeds
# `trainable` is the exact count of parameters that received gradients; every trained method
# ran the same steps of the same batches per seed. LoRA rows say which mode-approx R they are
# compared with (the nearest parameter count LoRA can reach, on its own modules: the attention
# modules for `lora`, mode approximation's for `lora_same_sites`). LoRA is scaled rank-stabilised
# (alpha/sqrt(r)), so one learning rate serves every rank. The linear probe changes neither
# encoder, so its retrieval is the zero-shot one (n/a here). `acc_heldout` is measured at the
# pretraining contrast.

# %%
display(Markdown(viz.markdown_table(study.display_rows(result.table))))

# %% [markdown]
# ## Convergence: validation score against steps
# Every method's validation score (mean of accuracy and R@1 on the validation slice; the probe:
# accuracy), averaged over seeds, looked at every `eval_every` steps. The default step count was
# chosen on these curves so that the best adapter is flat before the end.

# %%
fig = mviz.convergence(result.curves)
save_figure(fig, out, "convergence", caption="Validation score (mean of accuracy and retrieval R@1) against "
            "training steps, mean over seeds: where a line is flat the method has converged.", main=True)

# %% [markdown]
# ## Metric against trainable parameters (log scale)
# Lines join the ranks of the two swept methods; the dashed line is zero-shot.

# %%
fig = mviz.metric_vs_params(result.table)
save_figure(fig, out, "metric_vs_params", caption="Test metrics (mean ± std over seeds) against the number of "
            "trainable parameters, every method; dashed: zero-shot.", main=True)

# %% [markdown]
# ## The rank curve
# Mode approximation by R (error bars: std over seeds); LoRA beside each R it is compared with,
# labelled with its own rank and parameter count; the ablations next to their R. Tick labels
# give R and the adapter's parameter count.

# %%
fig = mviz.rank_curve(result.table)
save_figure(fig, out, "rank_curve", caption="Mode approximation by rank R (mean ± std over seeds), LoRA at the "
            "nearest parameter count it can reach (its rank and count in the legend), ablations at their R.")

# %% [markdown]
# ## Paired comparisons
# Every comparison the findings make: the paired difference a - b over seeds (and test items),
# its 95% interval, the verdict and, for a difference within noise, the smallest difference
# this run could have detected (80% power).

# %%
display(Markdown(viz.markdown_table(study.comparison_rows(result.comparisons))))

# %% [markdown]
# ## Why not the novel-word task (secondary result)
# The study's first task asked the adapters to learn 4 classes whose names pretraining never
# used. Their token-embedding rows are still at initialisation (small norm, like any unused
# word), against the trained class names. Full fine-tuning rewrites those rows and a linear
# probe bypasses text; adapters on attention and MLP matrices cannot change an embedding row,
# so on that task they measured vocabulary learning rather than parameter efficiency (run it
# with `train_split="novel_train", test_split="novel_test", backdrop_contrast=0.35`).

# %%
display(Markdown(viz.markdown_table(result.token_norms)))
fig = mviz.token_norms(result.token_norms)
save_figure(fig, out, "token_norms", caption="Token-embedding row norm of every class name: the 4 names pretraining "
            "never used stay at their initial size.")

# %% [markdown]
# ## What the adapter learned
# The shared factors of the kept adapter (R = `cfg.keep_rank`, first seed): `U` and `V`
# (V starts at zero, so everything in it was learned) and slices of the core; then the mode
# vector of every adapted matrix block (rows: V = vision, T = text; block index, matrix; MLP
# matrices have 4 blocks each), and how far each moved from its initialisation.

# %%
if result.factors is not None:
    fig = mviz.factor_heatmaps(result.factors)
    save_figure(fig, out, "factors", caption="Learned shared factors U, V and core slices of the kept adapter.")
    fig = mviz.mode_vector_heatmap(result.factors)
    save_figure(fig, out, "mode_vectors", caption="Mode vector of every adapted matrix block, and its change from "
                "initialisation.")
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
# Written from the numbers of this run (whatever they show).

# %%
display(Markdown(result.findings))

# %% [markdown]
# ## Checks that make a headless run fail loudly

# %%
result.write()  # rewrite result.json so that it lists the figures saved above
figures = ["convergence", "metric_vs_params", "rank_curve", "token_norms"] + (
    ["factors", "mode_vectors"] if result.factors else [])
assert all((out / "figures" / f"{name}.png").is_file() for name in figures), figures
assert (out / "result.json").is_file()
planned = study.plan_cells(cfg, study.load_base(cfg))
ran = [(r["method"], r["setting"], r["seed"]) for r in result.rows]
assert ran[:len(planned)] == [(c.method, c.setting, c.seed) for c in planned]  # the plan, in order
assert all(seed in cfg.claim_seeds or seed not in cfg.seeds for _, _, seed in ran[len(planned):])  # then claim seeds
for row in result.table:
    for m in study.METRICS:
        assert row[m] is None or 0.0 <= row[m] <= 1.0, (row["method"], m, row[m])
    assert row["method"] == "zero_shot" or row["trainable"] > 0, row
for curve in result.curves:
    assert curve.steps[0] == 0 and curve.steps[-1] == cfg.steps, curve
if "mode_approx" in cfg.methods:
    assert sorted(r["rank"] for r in result.of("mode_approx")) == sorted(cfg.ranks)
    assert result.factors is not None or cfg.keep_rank not in cfg.ranks
for lora in ("lora", "lora_same_sites", "lora_dropout"):
    if lora in cfg.methods and "mode_approx" in cfg.methods:
        assert {R for r in result.of(lora) for R in r["matches_R"]} == set(cfg.ranks), lora
print("all checks passed")
