"""Shaping a run's outputs into the per-image rows the store keeps."""

from __future__ import annotations

import numpy as np


def image_rows(names: list[str], outputs, latencies: list[float], k: int) -> list[dict]:
    """Per image: its name, top-``k`` classes and their scores, the latency and the full
    output vector (float32)."""
    from ...artifact import top_k

    rows = []
    for name, vector, latency in zip(names, np.asarray(outputs), latencies):
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        classes = top_k(vec, k)
        rows.append({"image": name, "classes": classes,
                     "scores": [float(vec[c]) for c in classes],
                     "latency_ms": float(latency), "vector": vec})
    return rows
