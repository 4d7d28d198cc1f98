"""Text rendering of `facecluster eval` results."""

from __future__ import annotations

from typing import Any


def render_eval(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    c, v, s = result["clustering"], result["verification"], result["settings"]
    setting = ", ".join(f"{k} {val}" for k, val in s.items())
    table = Table(title=f"eval: {result['model']}; {setting}", show_header=False)
    table.add_column()
    table.add_column(justify="right")
    rows = [
        ("photos / without a face", f"{result['photos']} / {result['photos_without_face']}"),
        (
            "faces scored (others grouped, not scored)",
            f"{result['faces_scored']} ({result['faces_not_scored']})",
        ),
        (
            "pairwise precision / recall / F1",
            f"{c['pairwise_precision']:.4f} / {c['pairwise_recall']:.4f} / {c['pairwise_f1']:.4f}",
        ),
        (
            "BCubed precision / recall / F1",
            f"{c['bcubed_precision']:.4f} / {c['bcubed_recall']:.4f} / {c['bcubed_f1']:.4f}",
        ),
        ("NMI", f"{c['nmi']:.4f}"),
        ("clusters / identities", f"{c['n_clusters']} / {c['n_identities']}"),
        (
            f"clusters / identities with >= {c['min_size']} faces",
            f"{c['clusters_ge_min']} / {c['identities_ge_min']}",
        ),
        ("unknown rate", f"{c['unknown_rate']:.4f}"),
        (
            "verification: best accuracy (threshold)",
            f"{v['best_accuracy']:.4f} ({v['best_threshold']:.4f})",
        ),
        ("verification: TAR at FAR 1e-3 (threshold)", f"{v['tar']:.4f} ({v['tar_threshold']:.4f})"),
        ("verification: ROC AUC", f"{v['roc_auc']:.4f}"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console = Console()
    console.print(table)
    if "sweep" in result:
        sweep = Table(title="threshold sweep")
        for col in ("threshold", "pairwise F1", "BCubed F1", "clusters", "unknown"):
            sweep.add_column(col, justify="right")
        best = result["best"]["threshold"]
        for r in result["sweep"]:
            mark = " *" if r["threshold"] == best else ""
            sweep.add_row(
                f"{r['threshold']:g}{mark}",
                f"{r['pairwise_f1']:.4f}",
                f"{r['bcubed_f1']:.4f}",
                str(r["n_clusters"]),
                f"{r['unknown_rate']:.3f}",
            )
        console.print(sweep)
        console.print(f"best threshold: {best:g} (pairwise F1 {result['best']['pairwise_f1']:.4f})")
