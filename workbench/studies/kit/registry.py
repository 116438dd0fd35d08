"""A study's methods: id -> how one cell of it runs. No if/elif on names.

Every method has one shape: `run(ctx, cell) -> metrics` (the study's shared context, one `Cell`), and
names the setting it sweeps by the Config field it iterates, so the kit plans every study's cells:

    methods = Registry("cp_rank_ablation")

    @methods.register("mode_approx", "mode approx", sweep="ranks")      # one cell per cfg.ranks value and seed
    def mode_approx(ctx, cell) -> dict: ...

    @methods.register("zero_shot", "zero-shot", seeded=False)           # one cell for all seeds
    @methods.register("wise_ft", "WiSE-FT", needs=("full_ft",), derived=True)   # computed from full_ft's rows
    @methods.register("loha", "LoHa", sweep="loha_rank", optional=True) # a scalar field: one setting; opt-in

    methods.check(cfg.methods)                # ValueError naming the unknown ids and the accepted ones
    methods.defaults()                        # what Config.methods = "all" runs: every non-optional id

Method ids are one vocabulary across studies: `zero_shot`, `linear_probe`, `full_ft`, ...
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

from .cells import Cell


class CellRun(Protocol):
    def __call__(self, ctx: Any, cell: Cell, /) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Method:
    """One entry: its id, a label for tables, `run(ctx, cell) -> metrics`, how its cells are planned, and
    study-specific facts (`info`, read as attributes: `spec.group`)."""

    id: str
    label: str
    run: CellRun
    needs: tuple[str, ...] = ()  # ids of methods whose cells (same seed) must run first
    sweep: str | None = None  # the Config field (or context attribute) whose values are its settings
    seeded: bool = True  # False: deterministic, one cell for every seed (seed None)
    derived: bool = False  # computed from the rows of what it needs, never run as a cell
    optional: bool = False  # left out of Config.methods = "all" (opt-in by id)
    info: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:  # study-specific facts read as attributes: spec.sweep
        info = object.__getattribute__(self, "info")
        if name in info:
            return info[name]
        raise AttributeError(f"method {self.id!r} has no {name!r}")


_REGISTRIES: dict[str, Registry] = {}  # study name -> its registry, so a Config can check ids without importing it


def check_methods(study: str, ids: Any, name: str = "methods") -> Any:
    """`ids` checked against `study`'s registry (a Config's __post_init__ calls this, naming the study instead of
    importing its registry, which imports the study's cells, which import the Config)."""
    registry = _REGISTRIES.get(study)
    return ids if registry is None else registry.check(ids, name)


class Registry(Mapping[str, Method]):
    """An ordered mapping id -> Method, filled with `@registry.register(id, label, ...)`."""

    def __init__(self, study: str):
        self.study = study
        self._methods: dict[str, Method] = {}
        _REGISTRIES[study] = self

    def register(self, id: str, label: str, *, needs: Iterable[str] = (), sweep: str | None = None,
                 seeded: bool = True, derived: bool = False, optional: bool = False, **info: Any):
        """Decorator: register `run(ctx, cell) -> metrics` as method `id` (ids are unique)."""
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if id in self._methods:
                raise ValueError(f"{self.study}: method {id!r} is registered twice")
            unknown = [n for n in needs if n not in self._methods]
            if unknown:
                raise ValueError(f"{self.study}: method {id!r} needs {unknown}, which are not registered before it")
            _check_shape(self.study, id, fn)
            self._methods[id] = Method(id, label, fn, tuple(needs), sweep, seeded, derived, optional, dict(info))
            return fn
        return add

    def defaults(self) -> tuple[str, ...]:
        """Every registered id not marked optional, in registry order (Config.methods = "all")."""
        return tuple(m for m, spec in self._methods.items() if not spec.optional)

    def __getitem__(self, id: str) -> Method:
        if id not in self._methods:
            raise KeyError(f"{self.study} has no method {id!r}; accepted: {', '.join(self._methods)}")
        return self._methods[id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)

    def check(self, ids: Iterable[str], name: str = "methods") -> tuple[str, ...]:
        """`ids` as a tuple ("all": the defaults), or a ValueError naming the unknown ones and every accepted id."""
        if ids == "all":
            return self.defaults()
        if isinstance(ids, str):
            raise ValueError(f"{name}={ids!r} must be a sequence of method ids, e.g. ({ids!r},)")
        ids = tuple(ids)
        dupes = sorted({m for m in ids if ids.count(m) > 1})
        if dupes:
            raise ValueError(f"{name}={ids!r}: {', '.join(map(repr, dupes))} given twice; each method runs once")
        unknown = [m for m in ids if m not in self._methods]
        if unknown:
            raise ValueError(f"{name}={ids!r}: unknown {', '.join(map(repr, unknown))}; accepted: "
                             f"{', '.join(self._methods)}")
        return ids

    def with_needs(self, ids: Iterable[str]) -> tuple[str, ...]:
        """`ids` plus what they need, each after its needs, in registry order."""
        want: set[str] = set()
        stack = list(ids)
        while stack:
            m = stack.pop()
            if m not in want:
                want.add(m)
                stack.extend(self[m].needs)
        return tuple(m for m in self._methods if m in want)

    def labels(self) -> dict[str, str]:
        return {m.id: m.label for m in self._methods.values()}


def _check_shape(study: str, id: str, fn: Callable[..., Any]) -> None:
    """A method runs as fn(ctx, cell): refuse a function that cannot be called so, at registration."""
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError as err:
        raise TypeError(f"{study}: method {id!r}: {getattr(fn, '__name__', fn)!r} must take (ctx, cell) and return "
                        f"the cell's metrics ({err})") from None
    except ValueError:  # builtins without a signature: nothing to check
        pass
