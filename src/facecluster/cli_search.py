"""`verify`, `find` and `eval`: the FaceNet applications and the measuring stick."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import config
from .cli import (
    DbOption,
    Device,
    JsonOption,
    ModelOption,
    QuietOption,
    WeightsOption,
    _emit_json,
    _fail,
    _interrupted,
    app,
)
from .cluster import DEFAULT_METHOD, LINKAGES, METHODS
from .display import safe
from .errors import EXIT_FAILED, FaceclusterError
from .registry import or_list

ThresholdOption = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=4.0,
        show_default=False,
        help="Squared L2 distance between unit embeddings (0-4) at or below which two faces "
        "are the same person [default: the encoder's calibrated value, see "
        "'facecluster models'].",
    ),
]


def _load(model: Any, weights: Path | None, device: str) -> tuple[Any, Any]:
    from .detect import load_detector, resolve_device
    from .encoders import load_encoder
    from .scan_cli import _check_device

    dev = resolve_device(device)
    _check_device(dev)
    return load_detector(device=dev), load_encoder(model, weights, dev)


def _face_vector(path: Path, detector: Any, encoder: Any, face: int) -> tuple[Any, Any]:
    """The ``face``-th largest face of a photo (1 = largest) and its embedding."""
    from .errors import NoFaceError
    from .indexer import embed_file

    if not path.is_file():
        raise FaceclusterError(f"no such file: {path}")
    _, faces, vectors = embed_file(path, detector, encoder)
    if not faces:
        raise NoFaceError(f"no face found in {path}")
    order = sorted(range(len(faces)), key=lambda i: -faces[i].area)
    if face > len(faces):
        raise NoFaceError(f"{path} has {len(faces)} face(s); --face {face} does not exist")
    i = order[face - 1]
    return faces[i], vectors[i]


@app.command()
def verify(
    photo_a: Annotated[Path, typer.Argument(help="First photo.", show_default=False)],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.", show_default=False)],
    threshold: ThresholdOption = None,
    face: Annotated[
        int, typer.Option(min=1, help="Which face of each photo, by size: 1 = the largest.")
    ] = 1,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    device: Annotated[Device, typer.Option(help="Where the networks run.")] = Device.auto,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Are two photos of the same person? Compares the largest face of each.

    Exit 0: same person; 1: different people; 2: input error (no face, unreadable file).
    """
    from .encoders import encoder_spec

    try:
        spec = encoder_spec(model, weights)
        name = spec.name
        t = threshold if threshold is not None else spec.default_threshold
        detector, encoder = _load(spec, weights, device.value)
        fa, va = _face_vector(photo_a, detector, encoder, face)
        fb, vb = _face_vector(photo_b, detector, encoder, face)
    except FaceclusterError as err:
        raise _fail(err) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    distance = float(max(0.0, 2.0 - 2.0 * float(va @ vb)))
    same = distance <= t
    if as_json:
        _emit_json(
            {
                "same": same,
                "distance": round(distance, 4),
                "threshold": t,
                "model": name,
                "a": str(photo_a),
                "b": str(photo_b),
                "box_a": [round(float(v), 1) for v in fa.box],
                "box_b": [round(float(v), 1) for v in fb.box],
            }
        )
    elif not quiet:
        verdict = "same person" if same else "different people"
        print(f"{verdict}: distance {distance:.4f} (threshold {t:g}, {safe(name)})")
    if not same:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def find(
    query: Annotated[
        Path, typer.Argument(help="A photo of the person to look for.", show_default=False)
    ],
    db: DbOption = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many photos.")] = 10,
    threshold: ThresholdOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    device: Annotated[Device, typer.Option(help="Where the networks run.")] = Device.auto,
    as_json: JsonOption = False,
) -> None:
    """Photos in the index whose faces are nearest to the query's largest face.

    Nearest first, with the squared L2 distance; only photos within the threshold.
    """
    from .cache import FaceCache
    from .encoders import encoder_identity, encoder_spec
    from .errors import EmptyCache
    from .search import nearest_photos

    try:
        spec = encoder_spec(model, weights)
        name = spec.name
        t = threshold if threshold is not None else spec.default_threshold
        path = db or config.default_db_path()
        with FaceCache(path, create=False, write=False, check=True) as cache:
            enc_id = cache.encoder_id(encoder_identity(spec, weights), register=False)
            if enc_id is None:
                raise EmptyCache(
                    f"the database has no {name} faces: run 'facecluster scan "
                    f"PATH --model {name}' first"
                )
            faces, vectors = cache.face_vectors(enc_id)
        detector, encoder = _load(spec, weights, device.value)
        _, qv = _face_vector(query, detector, encoder, 1)
    except FaceclusterError as err:
        raise _fail(err) from None
    hits = nearest_photos(qv, vectors, [f.path for f in faces], k=k, threshold=t)
    if as_json:
        _emit_json(
            {
                "query": str(query),
                "model": name,
                "threshold": t,
                "results": [
                    {
                        "photo": h.photo,
                        "distance": round(h.distance, 4),
                        "face_id": int(faces[h.index].id),
                    }
                    for h in hits
                ],
            }
        )
        return
    if not hits:
        print(f"no face within {t:g} of the query ({safe(name)})", file=sys.stderr)
        return
    for h in hits:
        print(f"{h.distance:.4f}  {safe(h.photo)}")


@app.command("eval")
def eval_(
    directory: Annotated[Path, typer.Argument(help="One folder per identity.", show_default=False)],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            show_default=False,
            help="Face database for the labelled set [default: $XDG_DATA_HOME/facecluster/"
            "eval.db, kept apart from your library].",
        ),
    ] = None,
    method: Annotated[str, typer.Option(help=f"{or_list(METHODS.names())}.")] = DEFAULT_METHOD,
    threshold: ThresholdOption = None,
    linkage: Annotated[str, typer.Option(help=f"{or_list(LINKAGES)}.")] = LINKAGES[0],
    min_cluster_size: Annotated[int, typer.Option(min=1)] = 2,
    min_samples: Annotated[int | None, typer.Option(min=1, show_default=False)] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            help="Thresholds START:STOP:STEP to try; prints each and the best.", show_default=False
        ),
    ] = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    device: Annotated[Device, typer.Option(help="Where the networks run.")] = Device.auto,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Measure clustering and verification against folder labels.

    Scans DIRECTORY (reusing the cache), groups its faces with the given settings and
    scores the labelled face of each photo: the central face (largest near the centre);
    other faces are grouped too but not scored. Reports pairwise and BCubed
    precision/recall/F1, NMI, clusters vs identities, unknown rate, and verification
    accuracy, TAR at FAR 1e-3 and the best threshold over all labelled pairs.
    """
    from .assess import GroupSettings, assess, parse_sweep
    from .assess import sweep as run_sweep
    from .encoders import encoder_spec
    from .scan_cli import scan_labelled

    try:
        thresholds = parse_sweep(sweep) if sweep else None
        if method not in METHODS:
            raise FaceclusterError(f"--method must be {or_list(METHODS.names())}, not {method!r}")
        spec = encoder_spec(model, weights)
        name = spec.name
        db_path = db or config.data_dir() / "eval.db"
        lab, _ = scan_labelled(
            directory, db_path, spec, weights, device.value, not (quiet or as_json)
        )
        t = threshold if threshold is not None else spec.default_threshold
        settings = GroupSettings(method, t, linkage, min_cluster_size, min_samples)
        result = assess(lab, settings)
        result["model"] = name
        if thresholds:
            rows, best = run_sweep(lab, settings, thresholds)
            result["sweep"], result["best"] = rows, best
    except (FaceclusterError, ValueError) as err:
        wrapped = err if isinstance(err, FaceclusterError) else FaceclusterError(str(err))
        raise _fail(wrapped) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    if as_json:
        _emit_json(result)
    elif not quiet:
        from .eval_render import render_eval

        render_eval(result)
