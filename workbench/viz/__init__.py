"""Pictures and explorers: matplotlib figures and ipywidgets; numpy lives here, not in methods.

One module per study (`workbench.viz.world` for notebook 00, ...); each function returns a
matplotlib Figure or an ipywidgets box and draws only what the world or a study returns.
"""
from .claims import claims_markdown, seeds_markdown
from .codebook import (
                       CodebookExplorer,
                       CodebookView,
                       code_exemplars,
                       code_map,
                       code_timeline,
                       codebook_explorer,
                       codebook_over_training,
                       purity_figure,
                       usage_histograms,
)
from .modular import lit_graph, path_figure
from .module_selection import ModuleSelectionExplorer, module_graphs, score_vs_cost
from .module_selection import explorer as module_selection_explorer
from .world import (
                       accuracy_bars,
                       browser,
                       class_and_context_gallery,
                       clip_strip,
                       confusion_figure,
                       markdown_table,
                       per_class_bars,
                       sample_grid,
                       scene_png,
                       show_scene,
                       sounds_figure,
)

__all__ = [
    "accuracy_bars", "browser", "class_and_context_gallery", "clip_strip", "confusion_figure",
    "markdown_table", "per_class_bars", "sample_grid", "scene_png", "show_scene", "sounds_figure",
    "CodebookExplorer", "CodebookView", "code_exemplars", "code_map", "code_timeline", "codebook_explorer",
    "codebook_over_training", "purity_figure", "usage_histograms",
    "lit_graph", "path_figure", "claims_markdown", "seeds_markdown",
    "ModuleSelectionExplorer", "module_graphs", "module_selection_explorer", "score_vs_cost",
]
