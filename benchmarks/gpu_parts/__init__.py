"""The parts of `benchmarks/gpu.py`: presets, timing and counting (`common`), then one module per comparison."""
