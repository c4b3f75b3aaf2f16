"""What a dataset job is: the verb, the model (as a spec workers can load), the verb's options,
the seeds, and the job file (TOML) that describes all of it.

Seeds: item ``i`` of a job seeded with ``s`` gets ``item_seed(s, i)`` (two rounds of
SplitMix64), whatever worker runs it and in whatever order, so a job gives the same results in
this process, on one Ray worker or on many.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.inputs import not_a_regular_file

#: Verbs a job can run.
VERBS = ("walk", "trace", "preimage")
#: Arguments of the verbs that the job runner sets itself.
RESERVED = (
    "model",
    "x0",
    "batched",
    "progress",
    "stop",
    "checkpoint",
    "checkpoint_every",
    "resume",
)
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def item_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` of a job seeded with ``seed`` (63-bit).

    Parameters
    ----------
    seed : int
        The job's seed.
    index : int
        The item's index in the dataset.

    Returns
    -------
    int
        A seed in ``[0, 2**63)``, independent of which worker runs the item.
    """
    return _splitmix64(_splitmix64(int(seed) & _MASK64) ^ int(index)) & ((1 << 63) - 1)


def verb_function(verb: str) -> Callable[..., Any]:
    """The function of a verb (``fiberscope.walk``, ``trace`` or ``preimage``)."""
    if verb == "walk":
        from ..algorithms.walk import walk

        return walk
    if verb == "trace":
        from ..algorithms.trace import trace

        return trace
    if verb == "preimage":
        from ..algorithms.preimage import preimage

        return preimage
    raise InputError(f"unknown verb {verb!r} for a job; use one of {', '.join(VERBS)}")


def _plain(value: Any, name: str) -> Any:
    """``value`` as JSON data (numbers, strings, lists, dicts), or an InputError."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value  # a non-finite value is the verb's to refuse, with its own message
    if hasattr(value, "tolist") and not callable(value):  # numpy and torch values
        return _plain(value.tolist(), name)
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, name) for k, v in value.items()}
    raise InputError(
        f"option {name} of a job must be plain data (numbers, strings, lists) so that it can be "
        f"recorded in the store and sent to workers, got a {type(value).__name__}"
    )


def check_options(verb: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check the verb's options of a job by name and turn them into plain data.

    Parameters
    ----------
    verb : str
        The verb.
    options : dict
        Keyword arguments for it.

    Returns
    -------
    dict
        The options as JSON-ready data.

    Raises
    ------
    InputError
        An option the verb does not take, one the job runner sets itself, or one that is not
        plain data.
    """
    fn = verb_function(verb)
    params = inspect.signature(fn).parameters
    allowed = [p for p in params if p not in RESERVED and p not in ("seed", "interval")]
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name == "seed" and verb == "walk":
            raise InputError("seed is the job's own option (each item's seed derives from it)")
        if name in RESERVED:
            raise InputError(f"{name} is set by the job runner; remove it from the options")
        if name not in params or name == "seed":
            raise InputError(
                f"{verb} has no option {name!r}; its options are: {', '.join(sorted(allowed))}"
            )
        out[name] = _plain(value, name)
    return out


def canonical(value: Any) -> Any:
    """JSON data with whole floats as integers (``1`` and ``1.0`` are the same option)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    return str(value)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """A model given by name, so that every worker can load it itself.

    Attributes
    ----------
    spec : str
        A bundled network name, a model file (ONNX, ``.pt2``, TorchScript, safetensors,
        paper CSV), or ``package.module:attr`` / ``file.py:attr``.
    format : str or None
        Force a model format (as :func:`fiberscope.load_model`).
    arch : str or None
        Architecture of a weights file: ``package.module:Factory`` or ``file.py:Factory``.
    """

    spec: str
    format: str | None = None
    arch: str | None = None

    def _files(self) -> dict[str, Path]:
        from ..models.python_spec import is_python_spec
        from ..models.registry import bundled_networks

        out: dict[str, Path] = {}
        path = Path(self.spec).expanduser()
        if path.is_file():
            out["model"] = path.resolve()
        elif is_python_spec(self.spec) and self.spec not in bundled_networks():
            code = Path(self.spec.rpartition(":")[0]).expanduser()
            if code.suffix == ".py" and code.is_file():
                out["model"] = code.resolve()
        if self.arch and ":" in self.arch:
            code = Path(self.arch.rpartition(":")[0]).expanduser()
            if code.suffix == ".py" and code.is_file():
                out["arch"] = code.resolve()
        return out

    def identity(self) -> dict[str, Any]:
        """Spec, format, architecture and the SHA-256 of every file they name."""
        ident: dict[str, Any] = {"spec": self.spec, "format": self.format, "arch": self.arch}
        for role, path in self._files().items():
            ident[f"{role}_sha256"] = _sha256(path)
        return ident

    def payload(self) -> dict[str, Any]:
        """The spec plus the bytes of the files it names (sent once to every worker).

        Workers on other machines then load the same model without a shared file system.
        """
        files = {}
        for role, path in self._files().items():
            files[role] = (path.name, path.read_bytes())
        # the model file is the model itself, or the code of a file.py:attr spec
        code = "model" in files and not Path(self.spec).expanduser().is_file()
        return {
            "spec": self.spec,
            "format": self.format,
            "arch": self.arch,
            "files": files,
            "model_is_code": code,
        }

    def load(self) -> Any:
        """Load the model here (see :func:`fiberscope.load_model`)."""
        from ..models.registry import load_model

        return load_model(self.spec, format=self.format, arch=self.arch)


def load_payload(payload: dict[str, Any]) -> Any:
    """Load the model of :meth:`ModelSpec.payload` on a worker.

    The files travel with the payload and are written into a private temporary folder under
    their own names (their suffix chooses the format), then loaded with the same safe loaders
    as everywhere else (pickles are refused).

    Parameters
    ----------
    payload : dict
        From :meth:`ModelSpec.payload`.

    Returns
    -------
    callable
        The model.
    """
    from ..models.registry import load_model

    spec, arch = payload["spec"], payload["arch"]
    files = payload.get("files") or {}
    if files:
        folder = Path(tempfile.mkdtemp(prefix="fiberscope-model-"))
        written = {}
        for role, (name, data) in files.items():
            sub = folder / role
            sub.mkdir()
            (sub / name).write_bytes(data)
            written[role] = sub / name
        if "model" in written:
            if payload.get("model_is_code"):
                spec = f"{written['model']}:{spec.rpartition(':')[2]}"
            else:
                spec = str(written["model"])
        if "arch" in written and arch:
            arch = f"{written['arch']}:{arch.rpartition(':')[2]}"
        try:
            return load_model(spec, format=payload["format"], arch=arch)
        finally:  # loaded into memory: the copies are not needed any more
            shutil.rmtree(folder, ignore_errors=True)
    return load_model(spec, format=payload["format"], arch=arch)


def object_identity(model: Any) -> dict[str, Any]:
    """What identifies a model object given in Python (its type and a hash of its weights)."""
    ident: dict[str, Any] = {
        "object": f"{type(model).__module__}.{type(model).__qualname__}",
    }
    if hasattr(model, "state_dict"):
        digest = hashlib.sha256()
        try:
            for key, value in sorted(model.state_dict().items()):
                digest.update(key.encode())
                digest.update(value.detach().cpu().contiguous().numpy().tobytes())
            ident["weights_sha256"] = digest.hexdigest()
        except Exception:  # an exotic module: its type has to do
            pass
    elif hasattr(model, "__qualname__"):
        ident["object"] = f"{getattr(model, '__module__', '?')}.{model.__qualname__}"
    return ident


def _intervals(verb: str, value: Any) -> list[Any] | None:
    if value is None:
        return None
    if verb != "preimage":
        raise InputError("intervals= goes with the preimage verb (a grid of output intervals)")
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError("intervals must be a non-empty list of [a, b] pairs")
    out = []
    for pair in value:
        plain = _plain(pair, "intervals")
        if not isinstance(plain, list) or len(plain) != 2:
            raise InputError(f"every entry of intervals must be a pair [a, b], got {pair!r}")
        out.append(plain)
    return out


@dataclass
class Job:
    """A dataset job: a verb on every item (every input, times every interval for preimage).

    Attributes
    ----------
    verb : str
        ``"walk"``, ``"trace"`` or ``"preimage"``.
    model : ModelSpec or callable
        A spec (any backend), or a model object (this process only).
    inputs : InputSet
        The inputs.
    options : dict
        The verb's options (plain data).
    seed : int
        The job's seed.
    intervals : list or None
        Preimage: the grid of intervals (items are inputs x intervals).
    """

    verb: str
    model: Any
    inputs: Any
    options: dict[str, Any]
    seed: int
    intervals: list[Any] | None = None
    _fingerprint: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def per_input(self) -> int:
        """Items per input (the number of intervals, or 1)."""
        return len(self.intervals) if self.intervals else 1

    def __len__(self) -> int:
        return len(self.inputs) * self.per_input

    def input_index(self, index: int) -> int:
        """The input of item ``index``."""
        return index // self.per_input

    def key(self, index: int) -> str:
        """The item's name in messages: the file name (and interval)."""
        key = self.inputs.items[self.input_index(index)].key
        if self.intervals:
            key += f" interval {index % self.per_input}"
        return key

    def seed_of(self, index: int) -> int:
        """The item's seed."""
        return item_seed(self.seed, index)

    def call_options(self, index: int) -> dict[str, Any]:
        """The verb's keyword arguments for item ``index`` (without model and start)."""
        opts = dict(self.options)
        if self.verb == "walk":
            opts["seed"] = self.seed_of(index)
        if self.intervals:
            opts["interval"] = self.intervals[index % self.per_input]
        return opts

    def model_identity(self) -> dict[str, Any]:
        """The model's identity (spec and file hashes, or the object's type and weights)."""
        if isinstance(self.model, ModelSpec):
            return self.model.identity()
        return object_identity(self.model)

    def fingerprint(self) -> dict[str, Any]:
        """Everything that decides the results (a store may only be continued with the same)."""
        if self._fingerprint is None:
            self._fingerprint = {
                "verb": self.verb,
                "model": self.model_identity(),
                "options": self.options,
                "intervals": self.intervals,
                "seed": self.seed,
                "inputs": self.inputs.identity(),
            }
        return self._fingerprint

    def fingerprint_sha256(self) -> str:
        """A hash of :meth:`fingerprint` (stamped into every item file)."""
        text = json.dumps(canonical(self.fingerprint()), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _absolute(spec: str) -> str:
    """A spec naming a file (or ``file.py:attr``) with the file's absolute path, so that one job
    is one job whatever folder it is started from."""
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    if ":" in spec:
        left, _, right = spec.rpartition(":")
        code = Path(left).expanduser()
        if left.endswith(".py") and code.is_file():
            return f"{code.resolve()}:{right}"
    return spec


def check_seed(seed: Any) -> int:
    """A job seed: an integer in ``[0, 2**63)``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed < 2**63:
        raise InputError(f"seed must be between 0 and 2**63 - 1, got {seed}")
    return seed


def random_seed() -> int:
    """A fresh job seed (recorded in the store)."""
    return int.from_bytes(os.urandom(7), "little")


def build_job(
    model: Any,
    inputs: Any,
    verb: str,
    options: dict[str, Any],
    *,
    seed: int,
    shape: Any = None,
    format: str | None = None,
    arch: str | None = None,
) -> Job:
    """Check a job's parts and put them together (nothing is loaded or run).

    Parameters
    ----------
    model : str, pathlib.Path or callable
        A model spec (see :class:`ModelSpec`) or a model object.
    inputs : path or array
        See :func:`fiberscope.jobs.inputs.open_inputs`.
    verb : str
        ``"walk"``, ``"trace"`` or ``"preimage"``.
    options : dict
        The verb's options (``intervals=`` for a preimage grid).
    seed : int
        The job's seed.
    shape : sequence of int, optional
        The shape of every item.
    format, arch : str, optional
        Model format and architecture (with a spec).

    Returns
    -------
    Job
        The job.
    """
    from .inputs import open_inputs

    if verb not in VERBS:
        raise InputError(f"unknown verb {verb!r} for a job; use one of {', '.join(VERBS)}")
    options = dict(options)
    intervals = _intervals(verb, options.pop("intervals", None))
    if verb == "preimage" and intervals is None:
        if "interval" not in options:
            raise InputError(
                "a preimage job needs interval=[a, b] (one for every input) or intervals=[[a, "
                "b], ...] (a grid: every input times every interval)"
            )
        intervals = _intervals(verb, [options.pop("interval")])
    elif "interval" in options:
        raise InputError("give either interval= or intervals=, not both")
    opts = check_options(verb, options)
    if isinstance(model, (str, Path)):
        spec: Any = ModelSpec(
            _absolute(str(model)), format, None if arch is None else _absolute(arch)
        )
    elif callable(model):
        if format is not None or arch is not None:
            raise InputError("format= and arch= go with a model spec (a name or a file)")
        spec = model
    else:
        raise InputError(
            f"model must be a spec (bundled name, file, module:attr) or a model, got "
            f"{type(model).__name__}"
        )
    return Job(verb, spec, open_inputs(inputs, shape=shape), opts, check_seed(seed), intervals)


# ---------------------------------------------------------------- job files
#: Keys of a job file's top level (besides the [options] table).
JOB_KEYS = (
    "verb",
    "model",
    "format",
    "arch",
    "inputs",
    "shape",
    "store",
    "seed",
    "workers",
    "ray_address",
    "cpus_per_worker",
    "gpus_per_worker",
    "device",
    "threads",
    "retries",
)
_PATH_KEYS = ("inputs", "store")


def _resolve_spec(value: str, base: Path) -> str:
    """A model or arch spec with a relative file name resolved against the job's folder."""
    candidate = base / Path(value).expanduser()
    if not Path(value).is_absolute() and candidate.exists():
        return str(candidate)
    if ":" in value:
        left, _, right = value.rpartition(":")
        code = base / left
        if left.endswith(".py") and not Path(left).is_absolute() and code.is_file():
            return f"{code}:{right}"
    return value


def load_job_file(path: str | Path) -> dict[str, Any]:
    """Read a job file (TOML) into keyword arguments of :func:`fiberscope.run_many`.

    Relative paths (inputs, store, model and architecture files) are taken from the job file's
    folder.

    Parameters
    ----------
    path : str or pathlib.Path
        The job file.

    Returns
    -------
    dict
        ``model``, ``inputs``, ``verb``, ``store`` and the other keys, with the verb's options
        from the ``[options]`` table merged in.

    Raises
    ------
    InputError
        Missing or unreadable file, invalid TOML, unknown keys, wrong types.
    """
    import tomllib

    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"the job file {p} does not exist")
    if p.is_dir():
        raise InputError(f"the job file {p} is a folder; give a .toml file")
    if not_a_regular_file(p) is not None:  # opening a named pipe would block
        raise InputError(
            f"the job file {p} is not a regular file (a pipe, socket or device); give a .toml file"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read the job file {p}: {why or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"the job file {p.name} is not valid TOML: {exc}") from None
    options = data.pop("options", {})
    if not isinstance(options, dict):
        raise InputError(f"[options] of {p.name} must be a table of the verb's options")
    unknown = sorted(k for k in data if k not in JOB_KEYS)
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r} in {p.name}; the keys are {', '.join(JOB_KEYS)} and "
            "the table [options] (the verb's options)"
        )
    for key in ("verb", "model", "inputs", "store"):
        if key not in data:
            raise InputError(f"the job file {p.name} has no {key} = ...; add it")
    for key in ("verb", "model", "inputs", "store", "format", "arch", "ray_address", "device"):
        if key in data and not isinstance(data[key], str):
            raise InputError(f"{key} in {p.name} must be a string, got {data[key]!r}")
    base = p.resolve().parent
    out: dict[str, Any] = dict(data)
    for key in _PATH_KEYS:
        out[key] = str(base / Path(data[key]).expanduser())
    out["model"] = _resolve_spec(data["model"], base)
    if isinstance(data.get("arch"), str):
        out["arch"] = _resolve_spec(data["arch"], base)
    clash = sorted(set(options) & set(JOB_KEYS))
    if clash:
        raise InputError(f"{clash[0]} is a job key; move it out of [options] in {p.name}")
    out.update(options)
    return out


__all__ = [
    "JOB_KEYS",
    "RESERVED",
    "VERBS",
    "Job",
    "ModelSpec",
    "build_job",
    "check_options",
    "check_seed",
    "item_seed",
    "load_job_file",
    "load_payload",
    "object_identity",
    "random_seed",
    "verb_function",
]
