"""nearest_photos: exact results, one hit per photo, threshold, nearest first."""

from __future__ import annotations

import numpy as np

from facecluster.search import nearest_photos


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_matches_brute_force_with_one_hit_per_photo():
    x = _unit(5000, 32, 0)
    photos = [f"p{i // 3}" for i in range(len(x))]  # three faces a photo
    q = x[42]
    hits = nearest_photos(q, x, photos, k=15)
    d = np.clip(2 - 2 * (x @ q), 0, 4)
    best: dict[str, float] = {}
    for i in np.argsort(d, kind="stable"):
        best.setdefault(photos[i], float(d[i]))
    expected = sorted(best.items(), key=lambda kv: kv[1])[:15]
    assert [(h.photo, round(h.distance, 5)) for h in hits] == [
        (p, round(v, 5)) for p, v in expected]
    assert hits[0].index == 42 and hits[0].distance < 1e-5


def test_threshold_and_fallback_when_the_nearest_faces_share_photos():
    x = _unit(300, 16, 1)
    photos = ["same"] * 200 + [f"p{i}" for i in range(100)]  # the 64 nearest may be one photo
    x[:200] = x[0]
    hits = nearest_photos(x[0], x, photos, k=5)
    assert len(hits) == 5 and hits[0].photo == "same"
    assert len({h.photo for h in hits}) == 5
    assert nearest_photos(x[0], x, photos, k=5, threshold=1e-4)[0].photo == "same"
    assert len(nearest_photos(x[0], x, photos, k=5, threshold=1e-4)) == 1
    assert nearest_photos(x[0], x[:0], [], k=5) == []
