"""The module graph of the modular model with a task's path lit."""
import pytest
from matplotlib.figure import Figure

from workbench.methods.modular import TASKS, valid_paths
from workbench.viz import lit_graph, path_figure
from workbench.viz.modular import EDGES, NODES


@pytest.mark.parametrize("task", list(TASKS))
def test_every_valid_path_lights_connected_modules(task):
    for path in valid_paths(task):
        nodes, edges = lit_graph(task, path)
        assert set(path) <= nodes and TASKS[task].head in nodes
        assert edges <= set(EDGES) and nodes <= set(NODES)
        for a, b in edges:  # lit arrows join lit boxes, and every lit module is reached by an arrow
            assert a in nodes and b in nodes
        assert {b for _, b in edges} | {"media", "text_in"} >= nodes


def test_paths_light_what_they_use():
    nodes, edges = lit_graph("captioning", ("vision", "universal", "decoder"))
    assert "fusion" not in nodes and "text" not in nodes and ("universal", "decoder") in edges
    nodes, edges = lit_graph("qa", ("vision", "text", "fusion"))
    assert "universal" not in nodes and ("fusion", "qa") in edges and ("vision", "fusion") in edges


def test_path_figure_is_a_pyplot_free_figure_and_names_the_path():
    fig = path_figure("qa")
    assert isinstance(fig, Figure) and " -> ".join(TASKS["qa"].path) in fig.axes[0].get_title()
    fig = path_figure(("vision", "temporal", "universal", "text"))
    assert fig.axes[0].get_title().startswith("video_retrieval")
    lit = [p for p in fig.axes[0].patches if p.get_facecolor()[:3] != (1.0, 1.0, 1.0)
           and hasattr(p, "get_boxstyle")]
    assert len(lit) == len(lit_graph("video_retrieval")[0])
    with pytest.raises(ValueError, match="valid path of no task"):
        path_figure(("decoder", "vision"))
    with pytest.raises(ValueError, match="unknown task"):
        path_figure("nope")
