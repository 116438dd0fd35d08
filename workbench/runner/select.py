"""Which notebooks run, and with which parameters (`-p NAME VALUE`): checked before anything runs."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
RESERVED = {"output_dir": "set by the runner to each notebook's folder",
            "quick": "use --quick (run_notebooks(quick=True))"}

def available_notebooks(notebooks_dir: Path | str = NOTEBOOKS_DIR) -> list[Path]:
    """The study notebooks (NN_*.ipynb) in `notebooks_dir`, in number order."""
    return sorted(p.resolve() for p in Path(notebooks_dir).glob(NOTEBOOK_GLOB))


def resolve_notebooks(names: Sequence[str] | None, notebooks_dir: Path | str = NOTEBOOKS_DIR) -> list[Path]:
    """Turn stems ("00_world_and_model"), numbers ("00") or paths into notebook files.

    No names -> every NN_*.ipynb in order. Unknown names raise one FileNotFoundError naming all of
    them and listing the available notebooks; a number matching two notebooks raises ValueError.
    """
    available = available_notebooks(notebooks_dir)
    if not names:
        if not available:
            raise FileNotFoundError(f"no notebooks to run: {notebooks_dir} holds no NN_*.ipynb")
        return available
    found: list[Path] = []
    unknown: list[str] = []
    for name in names:
        path = _match_notebook(str(name), available)
        if path is None:
            unknown.append(str(name))
        elif path not in found:
            found.append(path)
    if unknown:
        listing = ", ".join(p.stem for p in available) or f"none ({notebooks_dir} holds no NN_*.ipynb)"
        raise FileNotFoundError(
            f"no such notebook: {', '.join(map(repr, unknown))}; available: {listing} "
            f"(give a stem, its number, or a path to an .ipynb)")
    stems = [p.stem for p in found]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ValueError(f"two selected notebooks share the name {', '.join(clash)}: their output folders "
                         f"would collide; run them separately")
    return found


def _match_notebook(name: str, available: list[Path]) -> Path | None:
    path = Path(name)
    if path.suffix in (".ipynb", ".py") and path.exists():
        ipynb = path.with_suffix(".ipynb")  # a py:percent file runs through its paired ipynb
        if not ipynb.exists():
            raise FileNotFoundError(f"{name} has no paired {ipynb.name}; make it with "
                                    f"`jupytext --to ipynb {name}`")
        return ipynb.resolve()
    stem = path.name.removesuffix(".ipynb").removesuffix(".py")
    for p in available:
        if p.stem == stem:
            return p
    if stem.isdigit():
        hits = [p for p in available if int(p.stem.split("_", 1)[0]) == int(stem)]
        if len(hits) > 1:
            raise ValueError(f"notebook number {name!r} is ambiguous: {', '.join(p.stem for p in hits)}")
        return hits[0] if hits else None
    return None


PLAIN = (str, int, float, bool, type(None))  # what a -p value (or an element of one) may be


def parse_value(text: str, name: str = "VALUE") -> Any:
    """A -p VALUE: a Python literal if it parses as one ("3", "0.5", "True", "(8, 32)"), else the string.

    Text that opens like a literal container or a quoted string but does not parse ("[1, 2") is an
    error naming the parameter, not a string passed on. Only str, int, float, bool and None, and
    tuples, lists, sets and dicts of them, are accepted: a bytes or complex literal is refused (papermill
    writes values into the notebook's code, and only these kinds round-trip safely).
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        if text.strip()[:1] in ("(", "[", "{", "'", '"'):
            raise ValueError(f"-p {name} {text!r} is not a valid Python literal ({type(e).__name__}: {e}); "
                             "write e.g. \"(1, 2)\", \"[1, 2]\", \"{'a': 1}\" or \"'text'\"") from None
        return text
    bad = _unplain(value)
    if bad is not None:
        raise ValueError(f"-p {name} {text!r}: a {type(bad).__name__} value ({bad!r}) is not accepted; "
                         "accepted: str, int, float, bool, None and tuples, lists, sets or dicts of them")
    return value


def _unplain(value: Any) -> Any:
    """The first element of `value` (itself included) that is not a plain value or container, else None."""
    if isinstance(value, PLAIN):
        return None
    if isinstance(value, (tuple, list, set, frozenset)):
        return next((b for b in map(_unplain, value) if b is not None), None)
    if isinstance(value, dict):
        return next((b for b in map(_unplain, [*value.keys(), *value.values()]) if b is not None), None)
    return value


def _kind(value: Any) -> str:
    """The kind a parameter's value is checked as: bool, int, float, str, sequence, dict, none, other."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    for kind, types in (("int", int), ("float", float), ("str", str), ("sequence", (list, tuple, set, frozenset)),
                        ("dict", dict)):
        if isinstance(value, types):
            return kind
    return "other"


ACCEPTS = {"bool": {"bool"}, "int": {"int"}, "float": {"float", "int"}, "str": {"str"},
           "sequence": {"sequence"}, "dict": {"dict"}}


def check_parameter(notebook: str, name: str, value: Any, default_source: str) -> None:
    """A ValueError naming the parameter, the value and the expected type when `value` cannot stand
    where the parameters cell has `default_source`; a default of None takes any value."""
    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError):
        return  # not a literal default: nothing to check against
    want = _kind(default)
    if want in ("none", "other") or value is None or _kind(value) in ACCEPTS[want]:
        return
    raise ValueError(f"-p {name} {value!r}: {notebook} expects {want.replace('sequence', 'a tuple or list')} "
                     f"(its parameters cell has {name} = {default_source}), got {type(value).__name__}")


def notebook_parameters(path: Path) -> dict[str, dict]:
    """The names declared in a notebook's `parameters` cell -> papermill's {default, inferred_type_name, ...}."""
    import papermill

    try:
        return papermill.inspect_notebook(str(path))
    except Exception as e:  # a notebook without kernelspec metadata cannot be inspected by name
        raise ValueError(f"cannot read the parameters cell of {path}: {type(e).__name__}: {e}") from None


def plan_parameters(notebooks: Sequence[Path], params: dict | None, quick: bool = False) -> dict[Path, dict]:
    """Which overrides go to which notebook; a name no selected notebook declares is an error, and so is a value
    its study's Config refuses (type, range, duplicates: the Config is built here, before any notebook runs)."""
    params = dict(params or {})
    for name in params:
        if name in RESERVED:
            raise ValueError(f"parameter {name!r} cannot be overridden: {RESERVED[name]}")
    declared = {nb: notebook_parameters(nb) for nb in notebooks} if params else {nb: {} for nb in notebooks}
    for name in params:
        if not any(name in d for d in declared.values()):
            accepted = "; ".join(f"{nb.stem}: {', '.join(k for k in d if k not in RESERVED) or '(none)'}"
                                 for nb, d in declared.items())
            raise ValueError(f"unknown parameter {name!r}: no selected notebook declares it in its parameters "
                             f"cell. Accepted parameters -> {accepted}")
    for nb, d in declared.items():
        for name, value in params.items():
            if name in d:
                check_parameter(nb.stem, name, value, str(d[name].get("default")))
    plan = {nb: {k: v for k, v in params.items() if k in declared[nb]} for nb in notebooks}
    for nb, given in plan.items():
        if given:
            check_config(nb, given, quick)
    return plan


STUDY_IMPORT = re.compile(r"from workbench\.studies import (\w+) as study")


def study_of(notebook: Path) -> Any:
    """The study module a notebook runs (`from workbench.studies import X as study` in its code), or None."""
    py = notebook.with_suffix(".py")
    text = py.read_text() if py.exists() else notebook.read_text()
    match = STUDY_IMPORT.search(text)
    if match is None:
        return None
    import importlib

    return importlib.import_module(f"workbench.studies.{match.group(1)}")


def check_config(notebook: Path, params: dict, quick: bool) -> None:
    """Build the notebook's study Config from the -p values that name its fields, as the notebook does
    (`Config.preset(quick, **params)`): a value it refuses is a ValueError naming the notebook, now."""
    study = study_of(notebook)
    own = getattr(study, "NOTEBOOK_PARAMETERS", {})  # the notebook's parameters that are no Config field
    if own:
        from workbench.checks import check_typed

        for name, value in params.items():
            if name in own:
                try:
                    check_typed(value, own[name], name)
                except ValueError as e:
                    raise ValueError(f"{notebook.stem}: {e}") from None
    config = getattr(study, "Config", None)
    if config is None:
        return
    fields = {f.name for f in dataclasses.fields(config)}
    given = {k: v for k, v in params.items() if k in fields}
    try:
        config.preset(quick, **given)
    except (ValueError, TypeError, FileNotFoundError) as e:  # FileNotFoundError: weights that are not there
        raise ValueError(f"{notebook.stem}: {e}") from None


def stale_pair(ipynb: Path) -> bool:
    """True when the paired py:percent file exists and its cells differ from the ipynb's."""
    py = ipynb.with_suffix(".py")
    if not py.exists():
        return False
    import jupytext

    def cells(path: Path) -> list[tuple[str, str]]:
        nb = jupytext.read(path)
        return [(c.cell_type, c.source.strip()) for c in nb.cells if c.cell_type in ("code", "markdown")]

    return cells(ipynb) != cells(py)
