"""Pictures and explorers: matplotlib figures and ipywidgets; numpy lives here, not in methods."""
