"""`train`: teach facecluster the people in a labelled folder (triplet loss, FaceNet)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import config
from ..display import safe
from .app import app
from .options import Shared, shared
from .output import emit_json, handles_errors, stderr, stdout


class Mode(StrEnum):
    head = "head"
    finetune = "finetune"
    scratch = "scratch"


class Mining(StrEnum):
    semi_hard = "semi-hard"
    hard = "hard"
    all = "all"


class ValBy(StrEnum):
    photo = "photo"
    identity = "identity"


@app.command()
@handles_errors("interrupted: the last finished epoch is saved; add --resume to continue")
@shared("db", "weights", "device", "as_json", "quiet")
def train(
    directory: Annotated[
        Path, typer.Argument(help="One folder per identity (as eval reads).", show_default=False)
    ],
    out: Annotated[
        str,
        typer.Option(
            help="Model file to write. A bare name (no folder, no suffix) is saved in "
            "$XDG_DATA_HOME/facecluster/models/ and usable by name as BASE+NAME.",
            show_default=False,
        ),
    ],
    mode: Annotated[
        Mode,
        typer.Option(
            help="head: projection over a frozen encoder's cached embeddings (minutes on "
            "a CPU); finetune: InceptionResnetV1 from facenet weights, later blocks "
            "unfrozen; scratch: InceptionResnetV1 from random init."
        ),
    ] = Mode.head,
    base: Annotated[
        str,
        typer.Option(
            help="Encoder under the head (head mode; auto as in scan), or whose weights "
            "finetune starts from (facenet-vggface2 or facenet-casia)."
        ),
    ] = "auto",
    identities_per_batch: Annotated[
        int, typer.Option("--identities-per-batch", "-P", min=2, help="P identities a batch.")
    ] = 16,
    faces_per_identity: Annotated[
        int,
        typer.Option("--faces-per-identity", "-K", min=2, help="K faces of each identity a batch."),
    ] = 4,
    extra_negatives: Annotated[
        int, typer.Option(min=0, help="Random faces of other identities added to a batch.")
    ] = 16,
    margin: Annotated[
        float, typer.Option(min=0.0, help="Triplet margin alpha (squared L2).")
    ] = 0.2,
    mining: Annotated[
        Mining,
        typer.Option(
            help="semi-hard: d(a,p) < d(a,n) < d(a,p) + margin, else the hardest negative; "
            "hard: hardest negative; all: every negative (mean over active triplets)."
        ),
    ] = Mining.semi_hard,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Epochs [default: head 30, finetune 10, scratch 20].", show_default=False
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="AdamW learning rate [default: head 1e-3, finetune 1e-4, scratch 1e-3].",
            show_default=False,
        ),
    ] = None,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="AdamW weight decay.")] = 1e-4,
    hidden: Annotated[
        int, typer.Option(min=0, help="Head mode: hidden units of the projection (0: linear).")
    ] = 0,
    val_fraction: Annotated[
        float,
        typer.Option(min=0.0, max=0.9, help="Share of faces (or identities) held out to validate."),
    ] = 0.2,
    val_by: Annotated[
        ValBy,
        typer.Option(help="photo: part of each identity's faces; identity: whole identities."),
    ] = ValBy.photo,
    seed: Annotated[int, typer.Option(help="Seed of batches, split and augmentation.")] = 0,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=4.0,
            show_default=False,
            help="Default threshold stored in the model (squared L2) [default: calibrated "
            "on the validation faces].",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from OUT.ckpt (same data and settings).")
    ] = False,
    *,
    opts: Shared,
) -> None:
    """Train an encoder on labelled faces with the triplet loss and online mining.

    Each batch holds K faces of P identities plus a few faces of others; inside it every
    anchor-positive pair gets a semi-hard negative. After each epoch the validation faces
    give a verification accuracy, and a checkpoint (OUT.ckpt) is written: --resume
    continues exactly. The model file records its identity and a calibrated threshold;
    use it with --model FILE or --model BASE+NAME in scan, group, eval, verify and find.
    """
    from ..train.loop import TrainConfig
    from ..train.run import DEFAULTS, train_encoder

    m = mode.value
    cfg = TrainConfig(
        mode=m,
        margin=margin,
        mining=mining.value,
        identities_per_batch=identities_per_batch,
        faces_per_identity=faces_per_identity,
        extra_negatives=extra_negatives,
        epochs=int(epochs if epochs is not None else DEFAULTS[m]["epochs"]),
        lr=float(lr if lr is not None else DEFAULTS[m]["lr"]),
        weight_decay=weight_decay,
        val_fraction=val_fraction,
        val_by=val_by.value,
        seed=seed,
        hidden=hidden,
    )
    with _Bar(stderr(), not (opts.quiet or opts.as_json)) as bar:
        result = train_encoder(
            directory,
            out,
            cfg,
            base=base,
            db=opts.db,
            weights=opts.weights,
            resume=resume,
            threshold=threshold,
            device=opts.device,
            progress=bar,
            prepare=bar.prepare,
            scan_progress=lambda p: bar.prepare(p.done, p.total),
        )
    if opts.as_json:
        emit_json(result.as_dict())
    elif not opts.quiet:
        render(result)


class _Bar:
    """A rich progress bar fed by the training loop's callback (silent when hidden)."""

    def __init__(self, console: Any, show: bool) -> None:
        self.console = console
        self.show = show and console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, what: str = "training") -> None:
        if not self.show:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if self._progress is not None:
            self._progress.stop()
        self._progress = Progress(
            TextColumn(f"{what} {{task.fields[epoch]}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task(what, total=None, epoch="", stats="")
        self._progress.start()

    def prepare(self, done: int, total: int) -> None:
        """Face-chip extraction (finetune / scratch) progress."""
        if not self.show:
            return
        if self._progress is None:
            self.start("finding faces")
        self._progress.update(self._task, total=total, completed=done)
        if done >= total:
            self.start()

    def __call__(self, p: Any) -> None:
        if not self.show:
            return
        if self._progress is None:
            self.start()
        val = f"  val acc {p.val_accuracy:.4f}" if p.val_accuracy is not None else ""
        stats = f"loss {p.loss:.4f}  active {p.active_fraction:.1%}{val}"
        self._progress.update(
            self._task,
            total=p.batches,
            completed=p.batch,
            epoch=f"epoch {p.epoch}/{p.epochs}",
            stats=stats,
        )


def render(result: Any) -> None:
    from rich.table import Table

    d = result.as_dict()
    table = Table(
        title=f"train {d['mode']}: {safe(d['name'])} on {d['device']}, {d['seconds']:.1f} s"
    )
    for col in ("epoch", "loss", "active triplets", "val accuracy", "val ROC AUC"):
        table.add_column(col, justify="right")
    for h in d["history"]:
        best = " *" if h["epoch"] == d["best_epoch"] else ""
        table.add_row(
            f"{h['epoch']}{best}",
            "-" if h["loss"] is None else f"{h['loss']:.4f}",
            "-" if h["active_fraction"] is None else f"{h['active_fraction']:.1%}",
            "-" if h["val_accuracy"] is None else f"{h['val_accuracy']:.4f}",
            "-" if h["val_auc"] is None else f"{h['val_auc']:.4f}",
        )
    console = stdout()
    console.print(table)
    lines = [
        f"faces: {d['train_faces']} training, {d['val_faces']} validation; "
        f"{d['identities']} identities with K+ faces, {d['batches_per_epoch']} batches/epoch",
        f"saved epoch {d['best_epoch']} (* = best validation accuracy; 0 = untrained)",
        f"model: {safe(d['out'])}",
        f"threshold: {d['threshold']:g} ({d['threshold_note']})",
    ]
    if d["faces_projected"]:
        lines.append(f"cached faces projected into the new encoder: {d['faces_projected']}")
    by_name = Path(d["out"]).parent == config.data_dir() / "models"
    lines.append(f"use it: --model {safe(d['name'] if by_name else d['out'])}")
    for line in lines:
        console.print(line, markup=False, highlight=False)
