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
# # 04 · A modular model: shared layers, module selection per task, and the modality gap
#
# **Question.** mPLUG-2 ("A Modularized Multi-modal Foundation Model", ICML 2023) builds one model
# from modules -- a vision encoder shared by images and video frames (with local temporal modules
# for clips), *universal* layers (the text encoder's last k layers, used by text and, through
# learnable latent queries, by vision), fusion layers and a text decoder -- and recombines them per
# task: retrieval = vision -> universal + text with a contrastive head; captioning = vision ->
# universal -> decoder; question answering = vision -> universal -> text -> fusion -> decoder. It
# claims the shared universal layers help across tasks and shrink the modality gap. Liang et al.
# ("Mind the Gap", NeurIPS 2022) say the gap is set by the contrastive temperature (a lower temperature,
# a larger gap) and that the contrastive loss is lowest at the learned gap, at the model's own
# temperature: moving the modalities towards each other does not lower it. Do these hold here?
#
# **Setup.** The modular model (`workbench.methods.modular`) is built from tiny-world-clip's towers
# and trained on the world's five tasks (`workbench.data.modular_tasks`), one task per step, captioning
# and QA four steps in every eleven (`task_weights`, chosen on the validation slice): image-text and
# video-text retrieval (clip captions name the direction of motion), captioning of clips (object,
# colour, context, direction), questions about colour, shape and direction, and classification.
# Every shared depth k is trained the same steps on the same batches per seed and measured on the
# same test items: each task's score, retrieval R@1, the learned logit scale (1 / temperature) and the
# modality gap (`workbench.eval.modality_gap`: L2M = distance between modality centroids of normalised
# embeddings, L2I = mean distance within pairs, RMG = relative modality gap, uniformity, paired cosine).
# Beside each k > 0 runs a capacity-matched control: the same k universal layers as unshared copies of
# the text blocks (the same parameters added on the vision side, latents and projections included, but
# not shared with text), so a change from k = 0 that sharing makes can be told from one that capacity
# makes. Every new module starts from its own random stream forked from the seed, so the models at
# different k start with the same fusion, decoder and heads. The set metrics (L2M, L2I, RMG,
# uniformity, R@1) carry per-pair values (jackknife pseudo-values; R@1: each pair's hits), so their
# paired intervals hold the test items' spread as well as the seeds'. With the temporal modules on and
# off: direction of motion, tested on every clip and on the same clip played backwards (a frame-mean
# encoder cannot tell them apart). At the paper's k = 2: every task along every valid path, with
# its FLOPs (`torch.utils.flop_counter`) and time. "Mind the Gap": tiny-world-clip fine-tuned at
# fixed temperatures, and the embedding shift on tiny-world-clip and the modular model, its loss at
# each model's own learned temperature (CLIP's 1/100 as a second, labelled curve).
# Options (`Config`): `qa_scoring` ("decoder_rank", the default: the decoder trained to write the answer
# and the candidates ranked by its log-likelihood, as mPLUG-2's authors score answers; "head": an answer
# classifier on the decoder's first state), `frame_tokens` (every frame's tokens for the
# universal layers, decoder and QA, as mPLUG-2) and `temporal_cls` (False: temporal modules on patch
# tokens only, as mPLUG-2); the defaults and the measurements behind them are in the study's EVIDENCE.md.
# Training uses `novel_train`, the test items are the first `n_eval` of `novel_test`.

# %% tags=["parameters"]
output_dir = None
quick = False
model = "tiny-world-clip"
pretrained = None
shared_layers = None  # None: (0, 2); the whole sweep: (0, 1, 2, "all"); quick mode: (0, 2)
default_k = None  # None: 2 (the paper's universal layers): the temporal, path and shift cells
unshared_layers = None  # None: default_k; the k of the capacity control (unshared copies), e.g. (1, 2, "all")
seeds = None  # None: every method on (0, 1); quick mode: the quick preset's seeds
claim_seeds = None  # None: (2, 3) more for the cells the headline claims compare (4 in all, 8 where a claim asks); quick: ()
steps = None  # multi-task steps (one task per step, cycled by task_weights); quick mode: 5
batch_size = None
n_eval = None  # test items per task
temperatures = None  # None: (1.0, 0.1, 0.03, 0.01)
qa_scoring = None  # None: "decoder_rank" (QA answers ranked by the decoder); "head": an answer classifier
methods = None  # None: every default method; add "no_temporal", "alone" (optional) by listing them

# %%
from IPython.display import Markdown, display

from workbench import viz
from workbench.studies import module_selection as study
from workbench.studies.kit import save_figure
from workbench.viz import module_selection as mviz

cfg = study.Config.preset(quick, model=model, pretrained=pretrained, shared_layers=shared_layers,
                          default_k=default_k, unshared_layers=unshared_layers, seeds=seeds,
                          claim_seeds=claim_seeds, steps=steps, batch_size=batch_size, n_eval=n_eval,
                          temperatures=temperatures, qa_scoring=qa_scoring, methods=methods)
cfg

# %% [markdown]
# ## Run the study
# One call trains and measures every cell (or reads it from the cache).

# %%
result = study.run(cfg, output_dir=output_dir)
cfg = result.config  # as it ran: methods="all" spelled out
out = result.output_dir
print(f"outputs -> {out}; cells trained now: {result.metrics['cells_trained']}, "
      f"read from cache: {result.metrics['cells_cached']}; {result.timings['total']:.0f} s")


# %% [markdown]
# ## The papers' claims
# Every claim this study declares (`study.CLAIMS`): mPLUG-2's (MP-*, with a capacity control `.cap`
# beside the gap claim MP-4 and the gain claim MP-2: shared universal layers against the same k of
# unshared copies) and Mind the Gap's (MG-1: the loss minimum at the learned gap, at the model's own
# temperature; MG-2: a lower temperature, a larger gap), judged by the kit on the cells above:
# **supported** / **contradicted** (the paired interval excludes zero, in or against the paper's
# direction, after Holm over the study's claims), **equivalent** (a "matches" claim whose interval
# lies inside its stated margin), **unresolved** (with the seeds that would resolve it at the observed
# spread), **not run** or **out of scope**. The second table says which cells got how many seeds and
# why: the cells a headline claim compares also run on `claim_seeds`; the others on `seeds` only. MG-2's
# temperature cells are cheap (about 3 s a seed), so that claim asks for 8 seeds (`Claim(seeds=8)`), where
# the multi-task cells (about 75 s a seed) and MP-6's direction cells (about 18 s) get 4 in the 10 minutes.

# %%
display(Markdown(viz.claims_markdown(result.claims, result.claims_family)))
display(Markdown(viz.seeds_markdown(result.claims_family)))

# %% [markdown]
# ## Has the model learned its tasks?
# A module-selection study says nothing about a task the model has not learned. Each task's score of the
# multi-task model (k = default_k, temporal on) against what the task scores without looking at the
# media (`trivial`: the majority answer per question kind, one caption of the most frequent value of
# each slot, the majority class, chance retrieval), paired by seed and test item. `alone` (where the
# optional `alone` cells ran, `-p methods` with "alone"): the task trained alone for the same steps.

# %%
display(Markdown(viz.markdown_table(result.table("learned"))))

# %% [markdown]
# ## The modules each task uses
# Every module is a box; the task's path, its arrows and its head are lit. The dashed line marks that
# the universal layers are the text encoder's own top layers (one set of weights).

# %%
fig = mviz.module_graphs([t for t in study.TASKS if t in cfg.tasks])
save_figure(fig, out, "module_graphs", caption="The module graph per task, its default path lit.")

# %% [markdown]
# ## Shared layers k: the modality gap and the task scores
# Mean ± std over seeds. `image_*` are image-text pairs, `video_*` clip-text pairs. `universal`: the
# shared layers, or at the same k their unshared copies (the capacity control); `logit_scale`: the
# learned 1 / temperature after training. The figures draw the shared layers.

# %%
display(Markdown(viz.markdown_table(study.k_table(result))))
fig = mviz.gap_vs_k(result.table("k_sweep"))
save_figure(fig, out, "gap_vs_k", caption="Modality gap (L2M, L2I, RMG) of image-text and video-text pairs against "
            "the number k of shared text layers, mean ± std over seeds.", main=True)
fig = mviz.scores_vs_k(result.table("k_sweep"))
save_figure(fig, out, "r1_vs_k", caption="Retrieval R@1 (left) and the other tasks' scores (right) against k, "
            "mean ± std over seeds.")

# %% [markdown]
# ## Where the embeddings lie
# Matched (paired) against unmatched cross-modal cosine similarities, and a 2-D PCA projection of
# image, video and text embeddings (first seed), for tiny-world-clip and the modular model at each k.

# %%
fig = mviz.cosine_histograms(study.kept_by_name(result))
save_figure(fig, out, "cosine_distributions", caption="Cosine similarity of matched and unmatched image-text and "
            "video-text pairs, per model (first seed).")
fig = mviz.embedding_map(study.kept_by_name(result))
save_figure(fig, out, "embedding_map", caption="2-D PCA projection of image, video and text embeddings coloured by "
            "modality, per model (first seed).")

# %% [markdown]
# ## The temporal modules: direction of motion and cost
# `dir_acc`: 4-way direction from the clip's scores against its caption with each direction (chance
# 0.25) over the clips and their time reversals; `sign_acc`: left vs right / up vs down among those
# whose axis is right (chance 0.5). A frame mean gives a clip and its reversal the same embedding.
# `probe_dir_acc`: direction from a linear probe fit on train-split clip embeddings (what the video
# side carries, whatever the text can say); `reverse_cos`: a clip's embedding against its reversal's.
# The last two rows train a 4-way direction head on tiny-world-clip's frozen vision encoder, with
# temporal modules (trained with the head) and without: what the modules can represent when the signal
# is direct; their `dir_acc` is their head's.

# %%
display(Markdown(viz.markdown_table(study.temporal_table(result))))
fig = mviz.direction_bars(result.table("temporal"))
save_figure(fig, out, "direction", caption="Direction accuracy from text scores (chance 0.25), sign accuracy given "
            "the axis (chance 0.5) and direction from a linear probe on the clip embedding (chance 0.25) for the "
            "frame-mean dual encoder, the modular model with temporal modules off and on, and the vision encoder "
            "trained for direction alone (its head's accuracy) with and without them.")

# %% [markdown]
# ## Module selection: every task along every valid path
# The model trained at k = `default_k` (along the default paths), run along each valid path of each
# task: score (mean ± std over seeds), FLOPs per item and milliseconds per item.

# %%
display(Markdown(viz.markdown_table(study.path_rows(result))))
fig = mviz.score_vs_cost(result.table("paths"))
save_figure(fig, out, "score_vs_cost", caption="Each task's score against FLOPs per item along every valid path "
            "(ringed: the default path; V vision, T temporal, U universal, X text, F fusion, D decoder).", main=True)

# %% [markdown]
# ## Mind the Gap: temperature and the embedding shift
# Left: tiny-world-clip fine-tuned contrastively at each fixed temperature (`temperature_steps` steps):
# the claim MG-2 compares the gap at the lowest and the highest temperature. Right: the embedding shift,
# each model's loss at its own learned temperature (1 / its logit scale; MG-1 and MG-1.k ask whether its
# minimum lies at λ = 0, the learned gap), and labelled "at CLIP's τ=0.01" the same shift scored at
# CLIP's temperature, a second curve only.

# %%
display(Markdown(viz.markdown_table(study.temperature_rows(result))))
fig = mviz.temperature_and_shift(result.table("temperature"), result.shift)
save_figure(fig, out, "mind_the_gap", caption="Left: image-text gap and R@1 after contrastive fine-tuning at each "
            "fixed temperature. Right: contrastive loss (solid) and zero-shot accuracy (dashed) when image and text "
            "embeddings are shifted by λ along their centroid difference (λ = 1 closes the gap), the loss at each "
            "model's own learned temperature, and (curves labelled so) at CLIP's τ = 0.01.")

# %% [markdown]
# ## Explorer
# Pick a task (its path lights up) and a sample; compare the answer along one path, across every
# valid path, or along the default path across k. Controls that do not apply are greyed out.

# %%
mviz.explorer(result)

# %% [markdown]
# ## Paired comparisons

# %%
display(Markdown(viz.markdown_table(result.table("comparisons"))))

# %% [markdown]
# ## Findings
# Written from the numbers of this run (whatever they show).

# %%
display(Markdown(result.findings))

# %% [markdown]
# ## Checks that make a headless run fail loudly

# %%
result.write()  # rewrite result.json so that it lists the figures saved above
figures = ["module_graphs", "gap_vs_k", "r1_vs_k", "cosine_distributions", "embedding_map", "direction",
           "score_vs_cost", "mind_the_gap"]
assert all((out / "figures" / f"{name}.png").is_file() for name in figures), figures
planned = study.plan_cells(cfg)
ran = [(r["method"], r["setting"], r["seed"]) for r in result.rows]
assert ran[:len(planned)] == [(c.method, c.setting, c.seed) for c in planned]  # the plan, in order
assert all(seed in cfg.claim_seeds or seed not in cfg.seeds for _, _, seed in ran[len(planned):])  # then claim seeds
for row in result.rows:
    for m in ("image_r1", "video_r1", "qa_acc", "cls_acc", "caption_slots", "dir_acc"):
        assert row.get(m) is None or 0.0 <= row[m] <= 1.0, (row["method"], m, row[m])
    for m in ("image_l2m", "video_l2m"):
        assert row.get(m) is None or 0.0 <= row[m] <= 2.0, (row["method"], m, row[m])
    if row["method"] in ("dual_encoder", "modular", "modular_unshared", "temperature"):
        assert row["logit_scale"] > 0, row["method"]  # the learned (or fixed) 1 / temperature, per cell
if "dual_encoder" in cfg.methods:  # a frame mean cannot tell a clip from its reversal
    assert result.of("temporal", "dual_encoder")["sign_acc"] <= 0.5 + 1e-9
if "modular" in cfg.methods and cfg.default_k in cfg.shared_layers:
    assert {r["task"] for r in result.table("paths")} == set(cfg.tasks)
print("all checks passed")
