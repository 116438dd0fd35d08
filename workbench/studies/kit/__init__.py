"""The study kit: what every study shares, written once.

A study declares three things and the kit does the rest:

* its `Config` -- a frozen dataclass with a `quick` preset (`kit.preset`);
* its methods -- a `Registry` of id -> how to build, train and measure it (`@methods.register`);
* its grid -- the `Cell`s it runs (method x setting x seed).

The kit owns the cell cache (`CellCache`: key = hash of the whole resolved config minus the study's
declared skip list, the weight fingerprint, the data fingerprint and a cache version; `checkpoint()`:
where a cell being computed checkpoints its training, so that a requeued job resumes it), device
placement (`device`), output folders (`output_dir`), progress over cells (`run_cells`), the
`Result` contract (rows of method, setting, seed and metrics; findings; figures; timings;
environment) and the statistics (`stats`: mean, std and 95% intervals over seeds; paired
differences between two methods with their interval and the words "beyond noise" / "within
noise").

    from workbench.studies import kit
    methods = kit.Registry("my_study")

    @methods.register("zero_shot", "zero-shot")
    def _(ctx, cell): return evaluate(ctx.model)
"""
from .cache import (
    CACHE_ROOT_ENV,
    CHECKPOINT_ENV,
    CellCache,
    Checkpoint,
    cache_dir,
    cache_root,
    checkpoint,
    checkpoint_every,
    config_key,
    hash_of,
    load_tensors,
    weights_fingerprint,
)
from .cells import Cell, headless, run_cells
from .claims import Claim, Ref, Verdict, judge
from .registry import Method, Registry, check_methods
from .result import (
                     REPO_ROOT,
                     Result,
                     check_config,
                     check_device_field,
                     check_seeds,
                     device,
                     environment,
                     output_dir,
                     preset,
                     save_figure,
                     to_jsonable,
                     tuple_fields,
                     write_json_atomic,
)
from .stats import Comparisons, Paired, Summary, fmt, paired, paired_values, summarise, summary
from .study import Report, Study

__all__ = [
    "check_config", "check_device_field", "check_seeds", "fmt", "Claim", "Ref", "Report", "Study", "Verdict",
    "check_methods", "judge",
    "tuple_fields",
    "Comparisons",
    "CHECKPOINT_ENV", "Checkpoint", "checkpoint", "checkpoint_every",
    "CACHE_ROOT_ENV", "Cell", "CellCache", "Method", "Paired", "REPO_ROOT", "Registry", "Result", "Summary",
    "cache_dir", "cache_root", "config_key", "device", "environment", "hash_of", "headless", "load_tensors",
    "output_dir", "paired",
    "paired_values", "preset", "run_cells", "save_figure", "summarise", "summary", "to_jsonable",
    "weights_fingerprint", "write_json_atomic",
]
