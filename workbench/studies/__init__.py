"""One module per notebook: a frozen `Config`, `run(cfg) -> Result`, results JSON + figures."""
