"""How the names found in the photos' XMP (xmp_import.py) name persons after a grouping
(pure functions; people.People.name_from_xmp stores the plan).

A face named in another tool is the user's word, so these names count as corrections:

1. A person whose named faces agree on a name, most of them on one name, gets that name
   (a tie names nobody and is reported). A person the user already named keeps the name.
2. Names never merge persons: when a name is already a person's, or several persons'
   faces carry it, the one with most such faces gets it and the others are reported
   ('facecluster people merge' joins them if they are one person).
3. Faces whose name differs from their person's are reported, never moved.
4. A named face the grouping left unknown joins the person of that name, or a new person
   of that name (never one it was removed from).

Named persons are kept by every later ``group`` (regroup.py), so the names survive.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class NamePlan:
    names: dict[int, str] = field(default_factory=dict)  # person -> the name it gets
    placed: dict[int, int] = field(default_factory=dict)  # unknown face -> its person
    new: dict[str, list[int]] = field(default_factory=dict)  # name -> faces of a new person
    conflicts: list[dict[str, object]] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.names or self.placed or self.new)

    def as_dict(self) -> dict[str, object]:
        return {
            "persons_named": [{"id": p, "name": n} for p, n in sorted(self.names.items())],
            "faces_placed": len(self.placed) + sum(len(f) for f in self.new.values()),
            "persons_created": sorted(self.new),
            "conflicts": self.conflicts,
        }


def plan(
    face_ids: Iterable[int],
    assigned: dict[int, int],
    imported: dict[int, str],
    person_names: dict[int, str | None],
    rejected: set[tuple[int, int]],
) -> NamePlan:
    """What the imported names (face -> name) do to the grouping ``assigned`` (face ->
    person) of the faces ``face_ids``. ``person_names``: every person's current name."""
    out = NamePlan()
    grouped = set(face_ids)
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    unknown: dict[str, list[int]] = defaultdict(list)
    for fid, name in sorted(imported.items()):
        if fid not in grouped:
            continue
        pid = assigned.get(fid)
        if pid is None:
            unknown[name].append(fid)
        else:
            counts[pid][name] += 1
    holders: dict[str, list[int]] = defaultdict(list)
    for pid, held in sorted(person_names.items()):
        if held:
            holders[held].append(pid)
    wanted: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pid, c in sorted(counts.items()):
        if person_names.get(pid):
            continue  # the user's name stays (rule 3 reports the others)
        ranked = c.most_common()
        top, n = ranked[0]
        if len(ranked) > 1 and ranked[1][1] == n:
            tied = sorted(name for name, k in ranked if k == n)
            out.conflicts.append({"kind": "tie", "person": pid, "xmp_names": tied})
        else:
            wanted[top].append((n, pid))
    for name, candidates in sorted(wanted.items()):
        candidates.sort(key=lambda c: (-c[0], c[1]))
        if not holders[name]:
            out.names[candidates[0][1]] = name
            holders[name].append(candidates[0][1])
            candidates = candidates[1:]
        for _, pid in candidates:
            out.conflicts.append(
                {"kind": "same_name", "person": pid, "xmp_name": name, "named": holders[name][0]}
            )
    final = {**person_names, **out.names}
    for pid, c in sorted(counts.items()):
        if final.get(pid):
            for name, n in sorted(c.items()):
                if name != final[pid]:
                    out.conflicts.append(
                        {"kind": "other_name", "person": pid, "name": final[pid],
                         "xmp_name": name, "faces": n}
                    )
    for name, fids in sorted(unknown.items()):
        owners = holders.get(name, [])
        if len(owners) > 1:
            out.conflicts.append(
                {"kind": "ambiguous", "xmp_name": name, "persons": owners, "faces": len(fids)}
            )
        elif owners:
            out.placed.update({f: owners[0] for f in fids if (f, owners[0]) not in rejected})
        else:
            out.new[name] = fids
    return out
