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
# # 03 · One codebook for every modality: does a unified discrete code carry across?
#
# **Question.** Uni-Code ("Achieving Cross Modal Generalization with Multimodal Unified
# Representation", CMG, NeurIPS 2023) maps paired sequences of video, audio and text into one
# shared discrete codebook, so that a classifier trained on one modality's codes works on
# another's. Its two ingredients: separate modality-agnostic semantics from modality-specific
# detail (CLUB between semantic and specific features, Cross-CPC predicting the other modality
# ahead in time) and let the modalities teach each other while quantising (MM-EMA, cross
# commitment, dead-code reset). The paper reports, on AVE (V->A / A->V), plain VQ at 4.4 / 5.9
# and the full method at 44.0 / 49.7, and without Cross-CPC back near plain VQ. Does that hold on
# our world, against the quantizers a practitioner would reach for, and what does the codebook
# look like?
#
# **Task.** Paired event sequences from the world (10 steps each): the object of the sequence's
# event class moving across frames, its sound signature over a context noise band, a caption per
# step; the event is on for part of the sequence, and some steps are seen but silent, heard but off
# screen, or background only. Frozen encoders turn each step into features (tiny-world-clip's
# image and text towers, a log-band spectral front end), cached on disk. Each model trains on the
# training sequences; then heads trained on one modality's quantised features of training
# sequences are tested on another modality's features of **held-out** sequences (the authors'
# script scores its training videos; here train and test never overlap), in every direction.
#
# **Methods.** Uni-Code (full), plain shared VQ-EMA, vector-quantize-pytorch's VectorQuantize
# (k-means init, cosine similarity, dead-code expiry, rotation trick), FSQ, residual VQ,
# per-modality codebooks aligned by index, and masked cross-modal InfoNCE in place of CLUB +
# Cross-CPC; the paper's ablations (without CLUB, Cross-CPC, both, MM-EMA, reset, MM-EMA and
# reset); Uni-Code at several codebook sizes. Every finished (method, size, seed) cell is cached.

# %% tags=["parameters"]
output_dir = None
quick = False
model = "tiny-world-clip"
pretrained = None
seeds = None  # None: every method on (0, 1); quick mode: the quick preset's seeds
claim_seeds = None  # None: (2, ..., 7) more for the cells the headline claims compare (8 in all); quick: ()
methods = None  # None: every method but the opt-in diagnostics; e.g. ("unicode", "plain_vq", "no_cpc")
codebook_sizes = None  # None: (16, 64, 1024) besides 400; quick mode: (16,)
codes = None  # None: 400, the paper's
n_train = None
n_test = None
train_steps = None
p_silent = None  # None: 0.15 (seen, not heard)
p_offscreen = None  # None: 0.15 (heard, not seen)
p_background = None  # None: 0.1 (the event pauses)

# %%
from IPython.display import Markdown, display

from workbench import viz
from workbench.studies import codebook as study
from workbench.viz import codebook as cviz

cfg = study.Config.preset(quick, model=model, pretrained=pretrained, seeds=seeds, claim_seeds=claim_seeds, methods=methods,
                          codebook_sizes=codebook_sizes, codes=codes, n_train=n_train, n_test=n_test,
                          train_steps=train_steps, p_silent=p_silent, p_offscreen=p_offscreen,
                          p_background=p_background)
cfg

# %% [markdown]
# ## Run the study
# One call extracts (or reads) the features and trains and evaluates every cell (or reads it from the cache).

# %%
result = study.run(cfg, output_dir=output_dir)
cfg = result.config  # as it ran: methods="all" spelled out
out = result.output_dir
print(f"outputs -> {out}; cells trained now: {len(result.trained)}, read from cache: {len(result.cached)}; "
      f"feature extraction {result.metrics['feature_seconds']:.0f} s")


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
# ## Against the paper
# Held-out sequence classification in %, head trained on video codes and tested on audio codes
# (V->A) and the reverse, beside the paper's AVE numbers: its three-modality Table 3 for the
# three-modality rows (this run's setting), its two-modality Table 2 for the video + audio rows and
# for plain VQ (Table 3 has none); per-step localisation beside it. Chance and the always-background
# step score are in the findings. The model follows the authors' code (L_cmcm, Cross-CPC with one
# predictor per source, disjoint reset windows, clipping at 0.5); before it did, two findings of this
# study were artefacts of the departures ("no per-step alignment", "removing Cross-CPC costs
# nothing"): `workbench/studies/codebook/EVIDENCE.md#fidelity` has the numbers before and after.

# %%
display(Markdown(viz.markdown_table(result.tables["paper"])))

# %% [markdown]
# ## Every method, mean ± std over seeds (%)
# `seq_xy` / `step_xy`: sequence classification / per-step localisation, head trained on x, tested
# on y (v video, a audio, t text); `seq_cross`: mean over every cross-modal direction; `r1_xy`:
# recall@1 of finding a sequence's pair through its codes alone; `dead`: codes unused over the
# test pass; `shared_two`: fraction of used codes used by at least two modalities.

# %%
display(Markdown(viz.markdown_table(study.display_rows(result.table))))

# %% [markdown]
# ## Every direction
# The full model's and plain VQ's transfer matrix (sequence classification, %): the diagonal is
# the same-modality upper bound.

# %%
for name in ("transfer_unicode", "transfer_plain_vq"):
    if result.tables.get(name):
        display(Markdown(f"**{name.removeprefix('transfer_')}**\n\n" + viz.markdown_table(result.tables[name], digits=1)))

# %% [markdown]
# ## The codebook of the full model
# Built from one usage tensor (code x modality x class) over the whole test pass. Codes are sorted
# by total use, in the same order in every panel, so codes shared by modalities line up.

# %%
kept = result.kept.get("unicode") or next(iter(result.kept.values()), None)
if kept is not None:
    fig = cviz.usage_histograms(kept.usage, cfg.modalities)
    result.save_figure(fig, "usage_histograms")
    display(fig)

# %% [markdown]
# ## The codebook over training
# Perplexity, dead codes and the fraction of codes shared by two or three modalities at each kept
# checkpoint (a whole test pass each); thin lines: the per-batch perplexity seen while training.

# %%
if kept is not None:
    fig = cviz.codebook_over_training(kept.usages, kept.steps, cfg.modalities, train_history=kept.train_history)
    result.save_figure(fig, "codebook_over_training")
    display(fig)

# %% [markdown]
# ## Which loss pulls the semantic features
# The gradient norm each loss term alone puts on the semantic encoders along training (the full model,
# first seed; recorded on the training batches themselves): how hard reconstruction, commitment,
# CLUB, Cross-CPC and L_cmcm pull, so that an ablation's effect can be attributed to a term.

# %%
if kept is not None and kept.history.get("grad_norms"):
    fig = cviz.loss_grad_norms(kept.history["grad_norm_steps"], kept.history["grad_norms"])
    result.save_figure(fig, "loss_grad_norms", caption="Gradient norm of each loss term alone on the semantic "
                       "encoders over training (full Uni-Code, first seed, log scale).")
    display(fig)

# %% [markdown]
# ## Code purity
# Class entropy of the steps mapped to each code (0: one class), against its use.

# %%
if kept is not None:
    fig = cviz.purity_figure(kept.usage, result.splits.test.classes)
    result.save_figure(fig, "purity")
    display(fig)

# %% [markdown]
# ## One sequence, code by code
# The code of each step in each modality under the step's event; steps whose code no other
# modality shares are marked.

# %%
if kept is not None:
    fig = cviz.code_timeline({m: c[0] for m, c in kept.codes[-1].items()}, result.splits.test.step_labels[0],
                             result.splits.test.classes, cfg.modalities, title="test sequence 0")
    result.save_figure(fig, "code_timeline")
    display(fig)

# %% [markdown]
# ## A map of the code vectors
# t-SNE of the codebook (scikit-learn), dot area by use, coloured by each code's dominant class
# and by the modalities' shares of its use.

# %%
if kept is not None:
    xy = cviz.embed_codes(kept.codebook)
    for color_by in ("class", "modality"):
        fig = cviz.code_map(kept.codebook, kept.usage, result.splits.test.classes, cfg.modalities,
                            color_by=color_by, xy=xy)
        result.save_figure(fig, f"code_map_{color_by}")
        display(fig)

# %% [markdown]
# ## What one code stands for
# The steps of the first test sequences assigned to the code most modalities share, per modality.

# %%
if kept is not None:
    shown = study.exemplars(cfg)
    fig = cviz.code_exemplars(kept.shared_code(), kept.codes[-1], shown, k=4, modalities=cfg.modalities)
    result.save_figure(fig, "code_exemplars")
    display(fig)

# %% [markdown]
# ## Plain VQ-EMA's codebook, for contrast

# %%
if "plain_vq" in result.kept:
    fig = cviz.usage_histograms(result.kept["plain_vq"].usage, cfg.modalities)
    result.save_figure(fig, "usage_histograms_plain_vq")
    display(fig)

# %% [markdown]
# ## Explorer
# Pick a code and see what maps to it in each modality; pick a sequence and see its code
# timelines side by side; move the checkpoint slider to watch the codebook form.

# %%
if kept is not None:
    view = cviz.CodebookView(checkpoints=kept.usages, codes=kept.codes,
                             step_labels=result.splits.test.step_labels[:len(kept.codes[0][cfg.modalities[0]])],
                             classes=result.splits.test.classes, modalities=cfg.modalities, steps=kept.steps,
                             exemplars=study.exemplars(cfg))
    display(cviz.codebook_explorer(view))

# %% [markdown]
# ## Findings
# Written from the numbers of this run (whatever they show).

# %%
display(Markdown(result.findings))

# %% [markdown]
# ## Checks that make a headless run fail loudly

# %%
result.write()  # rewrite result.json so that it lists the figures saved above
planned = study.plan_cells(cfg)
ran = [(r["method"], r["setting"], r["seed"]) for r in result.rows]
assert ran[:len(planned)] == [(c.method, c.setting, c.seed) for c in planned]  # the plan, in order
assert all(seed in cfg.claim_seeds or seed not in cfg.seeds for _, _, seed in ran[len(planned):])  # then claim seeds
for row in result.table:
    for m in ("seq_va", "seq_av", "step_va", "step_av", "r1_va", "shared_two"):
        assert row[m] is None or 0.0 <= row[m] <= 1.0, (row["method"], m, row[m])
if kept is not None:
    assert int(kept.usage.sum()) == len(cfg.modalities) * cfg.n_test * cfg.steps  # every test step counted once
    figures = ["usage_histograms", "codebook_over_training", "purity", "code_timeline", "code_map_class",
               "code_map_modality", "code_exemplars"]
    assert all((out / "figures" / f"{name}.png").is_file() for name in figures), figures
assert (out / "result.json").is_file() and result.findings
print("all checks passed")
