"""What a value may be: one mechanism for every Config field and every public entry point.

Config fields declare what they accept in their annotation; `check_fields` (called by the
Config's `__post_init__`) checks every field against it:

    @dataclass(frozen=True)
    class TrainConfig:
        lr: Annotated[float, Check(gt=0)] = 1e-3
        grad_clip: Annotated[float | None, Check(gt=0, note="None disables clipping")] = 1.0
        ranks: Annotated[tuple[int, ...], Check(ge=1, unique=True, nonempty=True)] = (2, 4)

        def __post_init__(self):
            check_fields(self)

The type decides the kind of value: `int` (a bool is not an int), `float` (an int is a float; NaN
and infinities are refused unless `Check(finite=False)`), `bool` (only True and False: the string
"False" is refused), `str`, `Literal[...]` (one of the choices, compared with its type), `X | None`,
unions, and tuples of any of these (a list is turned into a tuple; a string is not a tuple of
strings). `Check` adds bounds (on a number, or on each number of a tuple), `unique` and
`nonempty` (on a tuple). Fields of other types (modules, tensors, dicts) are not checked here.

A refusal names `Class.field=value` and what is accepted: `BadValue` (a ValueError) for a value
out of range, `BadType` (a TypeError that is also a ValueError, so `except ValueError` catches
every refusal) for a value of the wrong type. `check_value(Config, name, value)` checks one value
against one field without building the Config (what a command line does with `-p name value`).

Plain functions for the entry points that are not Configs: `check_number`, `check_finite`
(tensors), `check_same_length`, `check_device`, `check_template`; `safe_torch_load` reads a file
with `torch.load(weights_only=True)` and replaces torch's refusal of a crafted file (which
advises turning the safe load off) with one of our own; `atomic_path` gives a unique temporary
file beside a target and renames it over the target when the block succeeds (a full disk or a
file-size limit: `WriteError` naming the target, and no partial file); `check_writable_dir` refuses
a folder that cannot be written (a file, a symlink loop, a read-only disk) before anything is written.
"""
from __future__ import annotations

import dataclasses
import errno
import math
import numbers
import os
import stat
import types
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union, get_args, get_origin, get_type_hints

import torch


class BadValue(ValueError):
    """A value out of the accepted range (or a repeat, an empty tuple, an unknown choice)."""


class BadType(TypeError, ValueError):
    """A value of the wrong type; also a ValueError, so one `except ValueError` catches every refusal."""


@dataclass(frozen=True)
class Check:
    """What a field accepts beyond its type: bounds on numbers (each number of a tuple), NaN and
    infinities (refused unless finite=False), no repeats and at least one item (tuples), no empty
    or blank string (`nonblank`: a string, or each string of a tuple), a note
    added to the message (what the value means, e.g. "None disables clipping")."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True
    unique: bool = False
    nonempty: bool = False
    nonblank: bool = False  # strings (each string of a tuple): not empty, not only spaces
    note: str = ""

    def bounds(self) -> str:
        lo = f">= {self.ge:g}" if self.ge is not None else f"> {self.gt:g}" if self.gt is not None else ""
        hi = f"<= {self.le:g}" if self.le is not None else f"< {self.lt:g}" if self.lt is not None else ""
        if lo and hi:
            left = "[" if self.ge is not None else "("
            right = "]" if self.le is not None else ")"
            a, b = (self.ge if self.ge is not None else self.gt), (self.le if self.le is not None else self.lt)
            return f"in {left}{a:g}, {b:g}{right}"
        return lo or hi

    def within(self, x: float) -> bool:
        return not ((self.ge is not None and not x >= self.ge) or (self.gt is not None and not x > self.gt)
                    or (self.le is not None and not x <= self.le) or (self.lt is not None and not x < self.lt))


NO_CHECK = Check()


# -- one value against one type ----------------------------------------------------------------
class _Refused(Exception):
    def __init__(self, kind: type[Exception], why: str = ""):
        super().__init__(why)
        self.kind, self.why = kind, why


def _strip(tp: Any) -> tuple[Any, Check]:
    """(the type, its Check) from a possibly Annotated type."""
    if get_origin(tp) is Annotated:
        base, *meta = get_args(tp)
        checks = [m for m in meta if isinstance(m, Check)]
        return base, checks[0] if checks else NO_CHECK
    return tp, NO_CHECK


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def describe(tp: Any, check: Check = NO_CHECK, plural: bool = False) -> str:
    """What a type with its Check accepts, in words ("a finite number > 0", "a tuple of integers >= 1, no
    repeats")."""
    tp, own = _strip(tp)
    check = own if own is not NO_CHECK else check
    bounds = check.bounds()
    s = "s" if plural else ""
    if tp is type(None):
        return "None"
    if _is_union(tp):
        args = get_args(tp)
        parts = [describe(a, check, plural) for a in args if a is not type(None)]
        return " or ".join((["None"] if type(None) in args else []) + parts)
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        shown = ", ".join(str(c) if isinstance(c, str) else repr(c) for c in choices)  # the house style: a, b
        if len(choices) == 1 and not plural:
            return repr(choices[0])
        return ("values from " if plural else "one of ") + shown
    if tp is bool:
        return "True or False"
    if tp is int:
        return (f"integer{s}" if plural else "an integer") + (f" {bounds}" if bounds else "")
    if tp is float:
        word = ("finite " if check.finite else "") + (f"number{s}" if plural else "number")
        return ("" if plural else "a ") + word + (f" {bounds}" if bounds else "")
    if tp is str:
        word = "non-blank string" if check.nonblank else "string"
        return f"{word}{s}" if plural else f"a {word}"
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            inner = describe(args[0], check, plural=True)
            extra = ", ".join(w for w, on in (("at least one", check.nonempty), ("no repeats", check.unique)) if on)
            return f"a tuple of {inner}" + (f" ({extra})" if extra else "")
        if len(set(args)) == 1:
            return f"a tuple of {len(args)} {describe(args[0], check, plural=True)}"
        return f"a tuple of {len(args)}: " + ", ".join(describe(a, check) for a in args)
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, check: Check) -> Any:
    """`value` if it fits `tp` and `check` (numpy scalars become Python ones, lists of a tuple type
    become tuples); raises _Refused."""
    tp, own = _strip(tp)
    check = own if own is not NO_CHECK else check
    if tp is Any or tp is object:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _Refused(BadType)
    if _is_union(tp):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        range_error = None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, check)
            except _Refused as e:
                if e.kind is BadValue:
                    range_error = range_error or e
        raise range_error or _Refused(BadType)
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        if any(type(value) is type(c) and value == c for c in choices):
            return value
        raise _Refused(BadValue if isinstance(value, tuple(type(c) for c in choices)) else BadType)
    if tp is bool:
        if isinstance(value, (bool, _np_bool())):
            return bool(value)
        raise _Refused(BadType)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _Refused(BadType)
        value = int(value)
        if not check.within(value):
            raise _Refused(BadValue)
        return value
    if tp is float:
        if isinstance(value, (bool, _np_bool())) or not isinstance(value, numbers.Real):
            raise _Refused(BadType)
        value = value if isinstance(value, (int, float)) else float(value)  # numpy scalars -> float
        if check.finite and not math.isfinite(value):
            raise _Refused(BadValue, "not finite")
        if not check.within(value):
            raise _Refused(BadValue)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _Refused(BadType)
        if check.nonblank and not value.strip():
            raise _Refused(BadValue, "a blank string")
        return value
    if get_origin(tp) is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
            raise _Refused(BadType, "not a tuple")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(value) != len(args):
            raise _Refused(BadValue, f"{len(value)} item(s), not {len(args)}")
        out = []
        for v, a in zip(value, args):
            try:
                out.append(_coerce(v, a, check))
            except _Refused as e:
                raise _Refused(e.kind, f"item {v!r}" + (f": {e.why}" if e.why else "")) from None
        out = tuple(out)
        if check.nonempty and not out:
            raise _Refused(BadValue, "empty")
        if check.unique:
            seen = [v for i, v in enumerate(out) if v in out[:i]]
            if seen:
                raise _Refused(BadValue, f"{seen[0]!r} repeats")
        return out
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Refused(BadType)
    return value  # a type this module does not know how to check (dict[...], Callable, ...): the Config's own


def _np_bool() -> type:
    try:
        import numpy as np

        return np.bool_
    except ImportError:  # pragma: no cover
        return bool


# -- Config fields -------------------------------------------------------------------------------
_HINTS: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> annotated type of a dataclass (cached)."""
    if cls not in _HINTS:
        hints = get_type_hints(cls, include_extras=True)
        _HINTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name in hints}
    return _HINTS[cls]


def check_value(cls: type, name: str, value: Any) -> Any:
    """`value` as field `name` of the dataclass `cls` takes it (a list for a tuple field becomes a tuple),
    or BadType / BadValue naming `Class.name=value` and what the field accepts; KeyError for an unknown
    field, naming the fields there are."""
    types_ = field_types(cls)
    if name not in types_:
        raise KeyError(f"{cls.__name__} has no field {name!r}; its fields: {', '.join(types_)}")
    return check_typed(value, types_[name], f"{cls.__name__}.{name}")


def check_field_names(cls: type, names: Any, what: str = "") -> None:
    """BadType (a TypeError, as a dataclass refuses an unknown keyword) naming the names that are no field of the
    dataclass `cls` and the fields there are; `what` says where they were given ("variant('full', ...)")."""
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = [n for n in names if n not in fields]
    if unknown:
        where = f" in {what}" if what else ""
        raise BadType(f"{cls.__name__} has no field(s) {', '.join(map(repr, unknown))}{where}; accepted: "
                      + ", ".join(fields))


def check_fields(obj: Any) -> None:
    """Check every annotated field of the dataclass instance `obj` (see the module docstring); values are
    normalised in place (tuples for lists, Python numbers for numpy ones), frozen dataclasses included."""
    for name in field_types(type(obj)):
        value = getattr(obj, name)
        checked = check_value(type(obj), name, value)
        if checked is not value:
            object.__setattr__(obj, name, checked)


# -- plain functions for entry points that are not Configs -----------------------------------------
def check_typed(value: Any, tp: Any, name: str) -> Any:
    """`value` checked against an annotated type as a Config field would be (`Annotated[int, Check(ge=1)]`), for
    a value that is no Config field (a notebook's own parameter); BadType / BadValue naming `name=value`."""
    try:
        return _coerce(value, tp, NO_CHECK)
    except _Refused as e:
        _, check = _strip(tp)
        why = f" ({e.why})" if e.why else ""
        note = f" ({check.note})" if check.note else ""
        raise e.kind(f"{name}={value!r}{why}; accepted: {describe(tp)}{note}") from None


def check_number(value: Any, name: str, *, integer: bool = False, **bounds: Any) -> Any:
    """A finite number (an integer when `integer`) within `bounds` (Check's ge / gt / le / lt), or
    BadType / BadValue naming `name=value`."""
    tp = Annotated[int if integer else float, Check(**bounds)]
    try:
        return _coerce(value, tp, NO_CHECK)
    except _Refused as e:
        why = f" ({e.why})" if e.why else ""
        raise e.kind(f"{name}={value!r}{why}; accepted: {describe(tp)}") from None


def check_finite(tensor: Any, name: str) -> torch.Tensor:
    """`tensor` if it is a tensor with no NaN and no infinity; else BadType / BadValue naming `name`, how
    many values are bad and where the first one is. One min/max pass (no copy); integer tensors pass."""
    if not isinstance(tensor, torch.Tensor):
        raise BadType(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.numel() == 0 or not (tensor.is_floating_point() or tensor.is_complex()):
        return tensor
    with torch.no_grad():
        lo, hi = torch.aminmax(tensor.detach().real if tensor.is_complex() else tensor.detach())
        if bool(torch.isfinite(lo) & torch.isfinite(hi)):
            return tensor
        bad = ~torch.isfinite(tensor.detach())
        first = tuple(int(i) for i in bad.nonzero()[0])
        value = tensor.detach()[first].item()
    raise BadValue(f"{name} holds {int(bad.sum())} non-finite values of {tensor.numel()} (first: {value} at "
                   f"index {first}, shape {tuple(tensor.shape)}); accepted: finite numbers only")


def check_features(tensor: Any, name: str) -> torch.Tensor:
    """`tensor` if it is a floating-point tensor (embeddings, features): integer or bool features are refused (an
    int64 copy of embeddings rounds every value to -1, 0 or 1); BadType naming `name` and its dtype."""
    if not isinstance(tensor, torch.Tensor):
        raise BadType(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise BadType(f"{name} have dtype {tensor.dtype}; accepted: floating-point features (float32, float16, "
                      "bfloat16, float64)")
    return tensor


def check_same_length(a: Any, b: Any, names: tuple[str, str]) -> int:
    """len(a), after checking that `a` and `b` have the same length (first dimension)."""
    na, nb = len(a), len(b)
    if na != nb:
        raise BadValue(f"{names[0]} has {na} entries but {names[1]} has {nb}; accepted: the same number of "
                       f"each (entry i of {names[1]} belongs to entry i of {names[0]})")
    return na


DEVICE_KINDS = ("cpu", "cuda", "mps", "meta")


def check_device(device: Any, name: str = "device") -> torch.device:
    """`device` (a str or torch.device) as a torch.device this machine has; else BadType / BadValue naming
    the value and what is accepted ("cpu", "cuda", "cuda:<index below the GPU count>", "mps" where it
    exists)."""
    available = ["'cpu'"]
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_cuda:
        available += ["'cuda'", f"'cuda:0' ... 'cuda:{n_cuda - 1}'"]
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if mps:
        available.append("'mps'")
    accepted = f"accepted here: {', '.join(available)} (a str or a torch.device)"
    if not isinstance(device, (str, torch.device)):
        raise BadType(f"{name}={device!r} is a {type(device).__name__}; {accepted}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadValue(f"{name}={device!r} is not a device name; {accepted}") from None
    if dev.type == "cpu" or dev.type == "meta":
        return dev
    if dev.type == "cuda":
        if not n_cuda:
            raise BadValue(f"{name}={device!r} but this machine has no CUDA GPU (or torch was built without "
                           f"CUDA); {accepted}")
        if dev.index is not None and dev.index >= n_cuda:
            raise BadValue(f"{name}={device!r} but this machine has {n_cuda} CUDA GPU(s); {accepted}")
        return dev
    if dev.type == "mps" and mps:
        return dev
    raise BadValue(f"{name}={device!r}: no such device on this machine; {accepted}")


def check_template(template: Any, name: str = "template") -> Any:
    """A prompt template: a callable name -> prompt, or a str with exactly one `{}` (a template without
    one gives every class the same prompt)."""
    if callable(template):
        return template
    if not isinstance(template, str):
        raise BadType(f"{name}={template!r} is a {type(template).__name__}; accepted: a callable name -> prompt "
                      "or a str with one {}")
    import string

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise BadValue(f"{name}={template!r} is not a format string ({e}); accepted: a str with one {{}}, "
                       "e.g. 'a photo of a {}.'") from None
    if fields not in ([""], ["0"]):
        raise BadValue(f"{name}={template!r} has {len(fields)} placeholders {fields}; accepted: a str with "
                       "exactly one {} (where the class name goes), e.g. 'a photo of a {}.'")
    return template


# -- files ------------------------------------------------------------------------------------------
def safe_torch_load(path: str | Path, what: str = "file") -> Any:
    """`torch.load(path, map_location="cpu", weights_only=True)`, or ValueError naming the file when it is
    corrupt, not a torch file, or holds objects other than tensors and plain values (never loaded: a
    crafted file could run code). Unlike torch's own message, ours does not suggest loading it unsafely."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; accepted: a torch file (.pt, .pth)")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a refused object, truncated, foreign, a zip torch cannot read
        if refused_objects(e):
            raise ValueError(f"{what} {path} holds objects other than tensors and plain values; the workbench "
                             "loads only those (a file holding code objects could run that code), so it was not "
                             "loaded: use a file of tensors (a state dict, a safetensors file)") from None
        raise ValueError(f"{what} {path} is corrupt or not a torch file ({load_error(e)})") from None


def refused_objects(error: BaseException) -> bool:
    """Whether `error` is torch.load(weights_only=True) refusing an object (a GLOBAL: a class or function
    it would have to import and call) rather than failing on a corrupt file."""
    text = str(error)
    return "Weights only load failed" in text and "GLOBAL" in text


def load_error(error: BaseException) -> str:
    """A loader's error in one line, without torch's advice to load unsafely (`weights_only=False`), which
    torch attaches to every failure of a safe load, corrupt files included."""
    text = str(error)
    if "Weights only load failed" in text:
        if refused_objects(error):
            return ("it holds objects other than tensors and plain values, which the workbench does not load: a "
                    "file holding code objects could run that code")
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines() if \
            "WeightsUnpickler error:" in text else []
        return "not readable as tensors" + (f": {detail[0].strip()}" if detail and detail[0].strip() else "")
    first = text.splitlines()[0] if text else repr(error)
    return f"{type(error).__name__}: {first}"


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})  # the disk, not the caller


class WriteError(OSError):
    """A file that could not be written: a full disk, a quota or file-size limit, a read-only disk. Its
    message (one line) names the file; no half-written file is left behind."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_error(path: str | Path, error: OSError) -> WriteError:
    """`error` (a failed write of `path`, its temporary file already removed) as a WriteError naming `path`."""
    state = "it keeps its previous content" if Path(path).exists() else "no partial file was left"
    return WriteError(error.errno, f"could not write {path}: {error.strerror or error}; {state}")


def temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A unique temporary name in `path`'s folder (so renaming it over `path` is atomic), ending in `suffix`
    (".ipynb" for papermill, which warns about any other)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{suffix}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A unique temporary path beside `path` (same folder, so the rename is atomic); when the block ends
    without an error it is renamed over `path`, else removed. Two writers never share a temporary file.
    A write that fails for want of room (a full disk, a file-size limit) raises WriteError naming `path`.

        with atomic_path(target) as tmp:
            torch.save(obj, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.errno not in DISK_ERRNOS or isinstance(e, WriteError):
            raise
        raise write_error(path, e) from e
    except RuntimeError as e:  # torch.save's C++ writer: "unexpected pos 704 vs 598", "file write failed"
        code = _disk_errno(tmp, e)
        if code is None:
            raise
        raise write_error(path, OSError(code, os.strerror(code))) from e
    finally:
        tmp.unlink(missing_ok=True)


_WRITER_FAILURES = ("unexpected pos", "file write failed", "iostream error", "basic_ios")


def _disk_errno(tmp: Path, error: RuntimeError) -> int | None:
    """The errno of a disk that ran out of room under a RuntimeError from a C++ writer (torch.save reports a short
    write as "unexpected pos ..."), or None when the error is not a failed write or the disk is not the cause:
    EFBIG when the temporary file reached the file-size limit (RLIMIT_FSIZE), ENOSPC when its disk has no room."""
    texts = [str(e) for e in (error, error.__context__, error.__cause__) if e is not None]
    codes = [e.errno for e in (error.__context__, error.__cause__) if isinstance(e, OSError) and e.errno in DISK_ERRNOS]
    if codes:
        return codes[0]
    if not any(w in t for t in texts for w in _WRITER_FAILURES):
        return None
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and tmp.exists() and tmp.stat().st_size >= soft:
            return errno.EFBIG
    except (ImportError, OSError, ValueError):  # no resource module (Windows), the file already gone
        pass
    try:
        disk = os.statvfs(tmp.parent)
        if disk.f_bavail * disk.f_frsize < 1024 * 1024:  # under 1 MiB left: the write found the disk full
            return errno.ENOSPC
    except (AttributeError, OSError):
        pass
    return None


def check_writable_dir(path: str | Path, what: str, make: bool = True) -> Path:
    """`path` as a folder this process can write: made (parents too) when missing and `make`, then a probe
    file is created and removed in it (permission bits do not stop root; this does). With make=False a
    missing folder is not made: the probe goes to its nearest existing parent, which must let it be made.

    BadValue naming `what` and the path otherwise: an existing file, a file among its parents, a loop of
    symlinks or a symlink to nothing, a folder that cannot be made or written (read-only, /proc)."""
    path = Path(path)
    accepted = "accepted: a folder this user can write, or a path where one can be made"

    def refused(why: str) -> BadValue:
        return BadValue(f"{what} {path} {why}; {accepted}")

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise refused("cannot be a folder: a part of it is a file") from None
    except OSError as e:
        why = "goes round a loop of symlinks" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror})"
        raise refused(why) from None
    if mode is not None and not stat.S_ISDIR(mode):
        raise refused("is a file, not a folder")
    if mode is None and path.is_symlink():
        raise refused(f"is a symlink to {os.readlink(path)}, which does not exist")
    folder = path
    if mode is None and make:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise refused(f"cannot be made ({e.strerror or e})") from None
    elif mode is None:
        folder = next(p for p in path.parents if p.exists())
    probe = folder / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as e:
        where = "" if folder == path else f" in {folder}"
        raise refused(f"cannot be {'written' if folder == path else 'made'}: no file can be made{where} "
                      f"({e.strerror or e})") from None
    return path


__all__ = ["DISK_ERRNOS", "BadType", "BadValue", "Check", "WriteError", "atomic_path", "check_device",
           "check_features", "check_field_names", "check_fields", "check_finite", "check_number", "check_same_length",
           "check_template", "check_typed", "check_value", "check_writable_dir", "describe", "field_types",
           "load_error", "refused_objects", "safe_torch_load", "temp_beside", "write_error"]
