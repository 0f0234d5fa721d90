"""The vector store: one Chroma collection of SOP chunks.

Embedded default: a Chroma ``PersistentClient`` in ``<var_dir>/chroma``. At scale: a Chroma server
(``HttpClient``) when a URL is given. The caller passes the locations (``agent.settings`` reads
``COPILOT_VAR_DIR`` and ``CHROMA_URL``); nothing here reads the environment. The embedding function
is always explicit, so Chroma never falls back to its default model (which would try to download
it), and telemetry is off.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import EmbeddingFunction
from chromadb.config import Settings as ChromaSettings

__all__ = ["COLLECTION", "make_client", "open_collection"]

COLLECTION = "sops"


def make_client(*, var_dir: Path | str = "var", chroma_url: str = "") -> ClientAPI:
    """A Chroma client: the server at ``chroma_url`` (http[s]://host[:port]) if given, else a local folder."""
    settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url.strip():
        url = urlparse(chroma_url.strip())
        if url.scheme not in {"http", "https"} or not url.hostname:
            raise ValueError(f"CHROMA_URL must look like http://host:8000, got {chroma_url!r}")
        ssl = url.scheme == "https"
        return chromadb.HttpClient(
            host=url.hostname, port=url.port or (443 if ssl else 8000), ssl=ssl, settings=settings
        )
    path = Path(var_dir) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def open_collection(
    embedding_function: EmbeddingFunction,
    *,
    var_dir: Path | str = "var",
    chroma_url: str = "",
    client: ClientAPI | None = None,
    name: str = COLLECTION,
) -> Collection:
    """The SOP collection (created on first use), cosine distance, with ``embedding_function``.

    Chroma records the embedding function's name with the collection and refuses to reopen it with
    a different one, so an index built with the fake embedding is never queried with the real one.
    """
    client = client or make_client(var_dir=var_dir, chroma_url=chroma_url)
    return client.get_or_create_collection(
        name=name,
        embedding_function=embedding_function,
        configuration={"hnsw": {"space": "cosine"}},
    )
