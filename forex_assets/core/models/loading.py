"""Load any Chronos family (T5, Bolt, Chronos-2) once per process, offline by default.

A checkpoint reference is one of:

* ``bundled:<name>``: a checkpoint shipped inside this package (``forex_assets/core/models/<name>``);
* a local directory holding ``config.json`` and weights;
* a Hugging Face Hub id such as ``amazon/chronos-bolt-small``, read from the local HF cache only.
  Set ``FOREX_ASSETS_ALLOW_DOWNLOAD=1`` to let a machine with internet fetch it once.

A weights file that is cut short or damaged (safetensors' own error names no file) is reported as a
:class:`ModelLoadError` naming the file and how to restore it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline  # untyped (Any)

MODELS_DIR = Path(__file__).parent
BUNDLED_PREFIX = "bundled:"
ALLOW_DOWNLOAD_ENV = "FOREX_ASSETS_ALLOW_DOWNLOAD"


class ModelLoadError(RuntimeError):
    """A checkpoint could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ResolvedCheckpoint:
    reference: str  # as written in the configuration
    location: str  # local directory or Hub id handed to from_pretrained
    is_local: bool


def resolve_checkpoint(reference: str) -> ResolvedCheckpoint:
    """Turn a configuration's checkpoint reference into something ``from_pretrained`` accepts."""
    if reference.startswith(BUNDLED_PREFIX):
        name = reference[len(BUNDLED_PREFIX) :]
        path = MODELS_DIR / name
        if not (path / "config.json").is_file():
            available = sorted(p.name for p in MODELS_DIR.iterdir() if (p / "config.json").is_file())
            raise ModelLoadError(
                f"bundled checkpoint {name!r} not found in {MODELS_DIR}; bundled checkpoints: {available}"
            )
        return ResolvedCheckpoint(reference, str(path), True)
    path = Path(reference).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"checkpoint directory {path} has no config.json: not a Chronos checkpoint")
        return ResolvedCheckpoint(reference, str(path.resolve()), True)
    if reference.startswith((".", "/", "~")) or reference.count("/") != 1:
        raise ModelLoadError(
            f"checkpoint {reference!r} is neither an existing directory, a 'bundled:<name>' reference, "
            "nor a Hugging Face Hub id of the form 'owner/name'"
        )
    return ResolvedCheckpoint(reference, reference, False)


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes"}


_load_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _load(location: str, is_local: bool, allow_download: bool) -> BaseChronosPipeline:
    import torch
    from chronos import BaseChronosPipeline
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated in transformers

    local_only = is_local or not allow_download
    try:
        return BaseChronosPipeline.from_pretrained(
            location, device_map="cpu", dtype=torch.float32, local_files_only=local_only
        )
    except OSError as error:
        if is_local:
            raise ModelLoadError(f"could not load the checkpoint in {location}: {error}") from error
        raise ModelLoadError(
            f"Hub checkpoint {location!r} is not in the local Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and downloads are off. Make it available "
            f"with `huggingface-cli download {location}` on a machine with internet (then copy the cache, or "
            f"point the configuration's checkpoint at the downloaded directory), or set "
            f"{ALLOW_DOWNLOAD_ENV}=1 to let this process fetch it."
        ) from error
    except ValueError as error:  # chronos: "Not a Chronos config file"
        raise ModelLoadError(f"{location} is not a Chronos checkpoint: {error}") from error


def load_pipeline(reference: str) -> BaseChronosPipeline:
    """The Chronos pipeline for ``reference``: float32, CPU, loaded once per process."""
    resolved = resolve_checkpoint(reference)
    with _load_lock:
        try:
            return _load(resolved.location, resolved.is_local, downloads_allowed())
        except Exception as error:
            from safetensors import SafetensorError

            if isinstance(error, SafetensorError):  # its message names no file
                raise damaged_weights_error(resolved, error) from None
            raise


def _weight_files(resolved: ResolvedCheckpoint) -> list[Path]:
    if resolved.is_local:
        return sorted(Path(resolved.location).glob("*.safetensors"))
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(resolved.location, "model.safetensors")
    return [Path(cached)] if isinstance(cached, str) else []


def _unreadable(file: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt"):
            return False
    except Exception:
        return True


def damaged_weights_error(resolved: ResolvedCheckpoint, error: BaseException) -> ModelLoadError:
    """The weights file that cannot be read, what is wrong with it and how to get a good copy back."""
    files = _weight_files(resolved)
    damaged = [f for f in files if _unreadable(f)] or files
    where = ", ".join(str(f) for f in damaged) if damaged else f"the weights of {resolved.location}"
    problem = f"{where}: checkpoint {resolved.reference!r} has a truncated or corrupt weights file ({error})"
    location = Path(resolved.location)
    if resolved.reference.startswith(BUNDLED_PREFIX):
        package_path = Path(*__name__.split(".")[:-1], location.name)  # forex_assets/core/models/<name>
        advice = (
            "The bundled checkpoint ships inside the forex_assets package: restore it with "
            f"`git checkout -- {package_path.as_posix()}` in a source checkout (an editable install reads it "
            "from there), or reinstall the package (`pip install --force-reinstall --no-deps forex_assets`)."
        )
    elif resolved.is_local:
        advice = f"Copy the checkpoint directory {location} again from where it came from."
    else:
        advice = (
            f"Delete it from the Hugging Face cache (`huggingface-cli delete-cache`) and download it again "
            f"(`huggingface-cli download {resolved.location}`, or {ALLOW_DOWNLOAD_ENV}=1)."
        )
    return ModelLoadError(f"{problem}. {advice}")


def checkpoint_identity(reference: str) -> str:
    """A stable id of the weights behind ``reference``: content hash for local ones, revision for Hub."""
    resolved = resolve_checkpoint(reference)
    if resolved.is_local:
        digest = hashlib.sha256()
        root = Path(resolved.location)
        for file in sorted(root.iterdir()):
            if file.suffix in {".json", ".safetensors", ".bin"} and file.name != "evaluation.json":
                if file.name == "training.json":
                    continue
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
        return f"{resolved.reference}@sha256:{digest.hexdigest()[:16]}"
    from huggingface_hub import scan_cache_dir

    for repo in scan_cache_dir().repos:
        if repo.repo_id == resolved.location:
            revisions = sorted(repo.revisions, key=lambda r: r.last_modified)
            if revisions:
                return f"{resolved.location}@{revisions[-1].commit_hash}"
    return f"{resolved.location}@unknown-revision"
