"""Pictures of a discrete codebook shared by modalities (study 3), and an interactive explorer.

Everything starts from one usage tensor: counts (codes K, modalities M, C + 1) accumulated over an
evaluation pass (class axis = the step's event class, last index = background), as
`workbench.methods.codebook.usage.code_usage` returns it, plus the code indices of a few sequences.

    fig = usage_histograms(usage, modalities)                 # per modality, codes sorted by total use
    fig = codebook_over_training(checkpoint_usages, steps)    # perplexity, dead codes, shared codes
    fig = purity_figure(usage, classes)                       # class entropy per code
    fig = code_timeline(codes_of_one_sequence, step_labels, classes)   # mismatches marked
    fig = code_map(code_vectors, usage, classes)              # t-SNE (or UMAP) sized by usage
    fig = code_exemplars(code, codes, exemplars)              # frames, waveforms, captions of a code
    codebook_explorer(CodebookView(...))                      # ipywidgets: checkpoint, code, sequence

One module per concept: `base` (colours, input checks, `NotebookFigure`), `stats` (the numbers
printed), `usage` (histograms, purity), `training` (the codebook over training), `timeline`
(one sequence's codes), `geometry` (the map of code vectors), `exemplars` (the one exemplar
drawer, `draw_exemplars`), `view` + `explorer` (the ipywidgets explorer).

Figures are pyplot-free `matplotlib.figure.Figure`s (`NotebookFigure`: nothing leaks into a
notebook's output; a cell ending with one shows it as a PNG, `save_figure` saves it). Nothing
here trains or quantises: the caller passes plain tensors and lists, so the pictures do not
depend on how the model is built.
"""
from .base import BACKGROUND_COLOR, MATCH_COLOR, MISMATCH_COLOR, MODALITY_COLORS, OTHER_COLORS, NotebookFigure
from .exemplars import code_exemplars, draw_exemplars, exemplar_kind, exemplar_rows, exemplar_steps
from .explorer import CodebookExplorer, codebook_explorer
from .geometry import COLOR_BY, EMBEDDINGS, code_map, embed_codes
from .stats import CodebookStats, codebook_stats
from .timeline import code_timeline, draw_timeline
from .training import SERIES_KEYS, UsageSeries, codebook_over_training, loss_grad_norms, usage_series
from .usage import draw_code_usage, draw_ranked_usage, purity_figure, usage_histograms
from .view import CodebookView

__all__ = [
    "BACKGROUND_COLOR", "MATCH_COLOR", "MISMATCH_COLOR", "MODALITY_COLORS", "OTHER_COLORS", "NotebookFigure",
    "CodebookStats", "codebook_stats", "SERIES_KEYS", "UsageSeries", "usage_series",
    "usage_histograms", "purity_figure", "draw_code_usage", "draw_ranked_usage", "codebook_over_training",
    "loss_grad_norms",
    "code_timeline", "draw_timeline", "COLOR_BY", "EMBEDDINGS", "code_map", "embed_codes",
    "code_exemplars", "draw_exemplars", "exemplar_kind", "exemplar_rows", "exemplar_steps",
    "CodebookView", "CodebookExplorer", "codebook_explorer",
]
