"""Where a face sits among the faces of its photo, in words ("left of 3, largest"), so
that one of several faces in a photo can be told apart without opening it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in the photo's pixels


@dataclass(frozen=True)
class PlacedFace:
    """A face of a person, with its box and its place among the faces of its photo."""

    face_id: int
    photo: str
    box: Box
    where: str  # "only face", "left of 2, largest", "2nd from left of 5"...
    faces_in_photo: int


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def describe(i: int, boxes: Sequence[Box]) -> str:
    """Where ``boxes[i]`` is among ``boxes`` (every face of one photo): its place from
    left to right (by the box centre), and whether it is the largest or smallest."""
    n = len(boxes)
    if n == 1:
        return "only face"
    order = sorted(range(n), key=lambda j: ((boxes[j][0] + boxes[j][2]) / 2, boxes[j][1], j))
    rank = order.index(i)  # 0 = leftmost
    if n == 2:
        place = ("left", "right")[rank]
    elif n == 3:
        place = ("left", "middle", "right")[rank]
    elif rank == 0:
        place = "leftmost"
    elif rank == n - 1:
        place = "rightmost"
    elif rank == n - 1 - rank:
        place = "middle"
    elif rank < n - 1 - rank:
        place = f"{_ordinal(rank + 1)} from left"
    else:
        place = f"{_ordinal(n - rank)} from right"
    areas = [_area(b) for b in boxes]
    size = ""
    if areas[i] == max(areas) and areas.count(max(areas)) == 1:
        size = ", largest"
    elif n > 2 and areas[i] == min(areas) and areas.count(min(areas)) == 1:
        size = ", smallest"
    return f"{place} of {n}{size}"


def place_faces(
    rows: Sequence[tuple[int, int, str, Box]], mine: set[int]
) -> list[PlacedFace]:
    """``rows``: (face id, photo id, path, box) of every face in some photos; the faces in
    ``mine`` described among the faces of their photo, in the order of ``rows``."""
    by_photo: dict[int, list[tuple[int, Box]]] = {}
    for fid, pid, _, box in rows:
        by_photo.setdefault(pid, []).append((fid, box))
    out = []
    for fid, pid, path, box in rows:
        if fid not in mine:
            continue
        faces = by_photo[pid]
        i = [f for f, _ in faces].index(fid)
        where = describe(i, [b for _, b in faces])
        out.append(PlacedFace(fid, path, box, where, len(faces)))
    return out
