"""`group`: cluster the cached faces into persons with stable ids, ready for export."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .cache import FaceCache
from .cluster import GroupSettings, cluster_faces
from .errors import EmptyCache
from .export import Grouping, ReportFace, ReportPerson
from .people import People, Person
from .regroup import Changes
from .suggest import suggest_merges


@dataclass(frozen=True)
class GroupResult:
    grouping: Grouping
    faces: int
    assigned: int
    unknown: int
    seconds: float
    changes: Changes = field(default_factory=Changes)
    names: dict[int, str | None] = field(default_factory=dict)  # of the persons in changes
    saved: bool = True  # False for a dry run
    warnings: list[str] = field(default_factory=list)
    xmp_names: dict[str, object] = field(default_factory=dict)  # xmp_names.NamePlan.as_dict

    def summary(self) -> dict[str, object]:
        return {
            "persons": len(self.grouping.persons),
            "faces": self.faces,
            "faces_assigned": self.assigned,
            "unknown": self.unknown,
            "model": self.grouping.model,
            **self.grouping.params,
            "seconds": round(self.seconds, 3),
            "saved": self.saved,
            "changes": self.changes.as_dict(self.names),
            "warnings": self.warnings,
            "xmp_names": self.xmp_names,
        }


def group_faces(
    cache: FaceCache,
    encoder_id: int,
    model: str,
    settings: GroupSettings,
    *,
    dry_run: bool = False,
    action: str = "group",
    suggest_within: float | None = None,
) -> GroupResult:
    """Cluster every face of one encoder, carry ids and corrections over (see regroup.py)
    and return the persons, largest first, with each face's distance to its person.

    With ``dry_run`` nothing is stored: the result says what would change, and its
    grouping holds the would-be persons (new ones with negative ids)."""
    start = time.perf_counter()
    faces, vectors = cache.face_vectors(encoder_id)
    if not faces:
        raise EmptyCache("the database has no faces yet: run 'facecluster scan PATH' first")
    labels = cluster_faces(vectors, settings)
    people = People(cache, encoder_id)
    names = {p.id: p.name for p in people.persons(include_empty=True)}
    ids = np.array([f.id for f in faces], dtype=np.int64)
    planned, changes = people.plan_regroup(ids, labels, vectors)
    fids = ids.tolist()
    if dry_run:
        assigned = planned
        extra = [
            Person(pid, None, 0, 0, False) for pid in sorted({p for p in planned.values() if p < 0})
        ]
        named = people.plan_xmp_names(fids, planned)
    else:
        assigned = people.regroup(ids, labels, vectors, action=action)
        extra = []
        named = people.name_from_xmp(fids, assigned)
        if named.changes:
            grouped = set(fids)
            assigned = {f: p for f, p in people.assignments().items() if f in grouped}
    grouping = build_grouping(
        cache, encoder_id, model, settings.as_dict(), faces, vectors, assigned, extra
    )
    if suggest_within is not None and not dry_run:
        owners = np.array([assigned.get(f.id, -1) for f in faces], dtype=np.int64)
        persons = {p.id: (p.name, len(p.faces)) for p in grouping.persons}
        found = suggest_merges(vectors, owners, ids, persons, suggest_within)
        grouping = replace(grouping, suggestions=tuple(found))
    return GroupResult(
        grouping=grouping,
        faces=len(faces),
        assigned=len(assigned),
        unknown=len(faces) - len(assigned),
        seconds=time.perf_counter() - start,
        changes=changes,
        names=names,
        saved=not dry_run,
        xmp_names=named.as_dict(),
    )


def build_grouping(
    cache: FaceCache,
    encoder_id: int,
    model: str,
    params: dict[str, object],
    faces: list,
    vectors: np.ndarray,
    assigned: dict[int, int],
    extra: Sequence[Person] = (),
) -> Grouping:
    row = {f.id: i for i, f in enumerate(faces)}
    members: dict[int, list[int]] = {}
    for fid, pid in assigned.items():
        if fid in row:
            members.setdefault(pid, []).append(row[fid])
    persons = []
    for person in sorted(
        [*People(cache, encoder_id).persons(include_empty=True), *extra],
        key=lambda p: (-len(members.get(p.id, ())), p.id),
    ):
        idxs = sorted(members.get(person.id, []))
        if not idxs:
            continue
        centre = vectors[idxs].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        dist = np.clip(2.0 - 2.0 * (vectors[idxs] @ centre), 0.0, 4.0)
        order = np.argsort(dist, kind="stable")  # most typical face first
        persons.append(
            ReportPerson(
                person.id,
                person.name,
                tuple(_report_face(faces[idxs[j]], float(dist[j])) for j in order),
            )
        )
    unknown = tuple(_report_face(f, None) for f in faces if f.id not in assigned)
    return Grouping(tuple(persons), unknown, model, params)


def _report_face(sf, distance: float | None) -> ReportFace:
    box = tuple(float(v) for v in sf.face.box)
    return ReportFace(sf.id, sf.path, box, float(sf.face.prob), distance)  # type: ignore[arg-type]


def threshold_warning(model: str, threshold: float, calibrated: float) -> str | None:
    """Thresholds do not carry across encoders: say so when one is far off this one's."""
    if threshold > 2 * calibrated or threshold < calibrated / 2:
        effect = "people merged" if threshold > calibrated else "people split"
        return (
            f"--threshold {threshold:g} is far from {model}'s calibrated {calibrated:g} "
            f"(squared L2); expect {effect}; omit --threshold to use {calibrated:g}"
        )
    return None
