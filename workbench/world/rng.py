"""Counter-based randomness: every sample's numbers depend only on (seed, stream, index).

A sample drawn at index 17 is the same whether it is fetched alone, in a batch of 512,
on rank 3 of 8, or after a resume -- no generator state to carry around.
"""
from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: str) -> np.uint64:
    """One 64-bit key per (seed, named stream); the stream name is hashed stably (crc32)."""
    base = np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    tag = np.array([zlib.crc32(stream.encode())], dtype=np.uint64)
    return _splitmix64(_splitmix64(base) ^ tag)[0]


def uniforms(key: np.uint64, index: np.ndarray, n_fields: int) -> np.ndarray:
    """Uniform numbers in [0, 1), shape (N, n_fields), a pure function of (key, index, field)."""
    idx = np.asarray(index, dtype=np.uint64).reshape(-1, 1)
    fields = np.arange(n_fields, dtype=np.uint64).reshape(1, -1)
    with np.errstate(over="ignore"):
        h = _splitmix64(_splitmix64(idx ^ key) + fields * _GOLDEN)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def sample_seeds(key: np.uint64, index: np.ndarray) -> list[int]:
    """A 63-bit integer seed per index, for torch generators that need many numbers (noise)."""
    idx = np.asarray(index, dtype=np.uint64).reshape(-1)
    with np.errstate(over="ignore"):
        h = _splitmix64(idx ^ _splitmix64(np.array([key], dtype=np.uint64) ^ np.uint64(0xA5A5)))
    return [int(v >> np.uint64(1)) for v in h]
