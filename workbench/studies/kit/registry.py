"""A study's methods: id -> how to build, train and measure it. No if/elif on names.

    methods = Registry("cp_rank_ablation")

    @methods.register("bitfit", "BitFit (biases)", sweep="fixed")
    def bitfit(ctx, cell):
        ...                                   # returns the cell's metrics

    methods.check(cfg.methods)                # ValueError naming the unknown ids and the accepted ones
    methods["bitfit"].run(ctx, cell)

Method ids are one vocabulary across studies: `zero_shot`, `linear_probe`, `full_ft`, ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping


@dataclass(frozen=True)
class Method:
    """One entry: its id, a label for tables, the function that runs a cell, and study-specific facts."""

    id: str
    label: str
    run: Callable[..., Any]
    needs: tuple[str, ...] = ()  # ids of methods whose cells (same seed) must run first
    info: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:  # study-specific facts read as attributes: spec.sweep
        info = object.__getattribute__(self, "info")
        if name in info:
            return info[name]
        raise AttributeError(f"method {self.id!r} has no {name!r}")


class Registry(Mapping[str, Method]):
    """An ordered mapping id -> Method, filled with `@registry.register(id, label, ...)`."""

    def __init__(self, study: str):
        self.study = study
        self._methods: dict[str, Method] = {}

    def register(self, id: str, label: str, *, needs: Iterable[str] = (), **info: Any):
        """Decorator: register the decorated function as method `id` (ids are unique)."""
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if id in self._methods:
                raise ValueError(f"{self.study}: method {id!r} is registered twice")
            unknown = [n for n in needs if n not in self._methods]
            if unknown:
                raise ValueError(f"{self.study}: method {id!r} needs {unknown}, which are not registered before it")
            self._methods[id] = Method(id, label, fn, tuple(needs), dict(info))
            return fn
        return add

    def __getitem__(self, id: str) -> Method:
        if id not in self._methods:
            raise KeyError(f"{self.study} has no method {id!r}; accepted: {', '.join(self._methods)}")
        return self._methods[id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)

    def check(self, ids: Iterable[str], name: str = "methods") -> tuple[str, ...]:
        """`ids` as a tuple, or a ValueError naming the unknown ones and every accepted id."""
        if isinstance(ids, str):
            raise ValueError(f"{name}={ids!r} must be a sequence of method ids, e.g. ({ids!r},)")
        ids = tuple(ids)
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
