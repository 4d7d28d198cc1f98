"""The examples at the end of each command's --help (and so of docs/cli.md): two or three
lines a user can copy. Keyed by the command's words after 'facecluster'."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "scan": [
        "facecluster scan ~/Photos /mnt/card --retry-failed --profile",
        "facecluster scan ~/Photos --json -q | jq .failures",
        "facecluster scan /nfs/photos --engine ray --ray-address auto",
    ],
    "group": [
        "facecluster group --html ~/People-page",
        "facecluster group --threshold 0.12 --dry-run",
        "facecluster group --out ~/People --report people.json",
    ],
    "people": [
        "facecluster people",
        "facecluster people --json | jq '.[0]'",
    ],
    "people name": ['facecluster people name 3 "Anna"', 'facecluster people name 3 "Anna B."'],
    "people merge": ["facecluster people merge 3 7 12", "facecluster people merge 3 7 --json"],
    "people split": [
        "facecluster people show 3",
        'facecluster people split 3 101 102 --name "Ben"',
    ],
    "people move-face": ["facecluster people show 7", "facecluster people move-face 3 215"],
    "people remove-face": ["facecluster people show 3", "facecluster people remove-face 215 216"],
    "people show": ["facecluster people show 3", "facecluster people show 3 --json"],
    "people export-xmp": [
        "facecluster people export-xmp --dry-run",
        "facecluster people export-xmp ~/Photos/2024 --keywords",
    ],
    "people regions": ["facecluster people regions", "facecluster people regions --json"],
    "people undo": ["facecluster people history", "facecluster people undo"],
    "people history": ["facecluster people history", "facecluster people history --json"],
    "people suggest": ["facecluster people suggest", "facecluster people suggest --json"],
    "verify": [
        "facecluster verify a.jpg b.jpg",
        "facecluster verify group.jpg portrait.jpg --face 2",
        "facecluster verify a.jpg b.jpg -q && echo same",
    ],
    "find": [
        "facecluster find anna.jpg -k 20",
        "facecluster find anna.jpg --paths | xargs -d '\\n' cp -t ~/Anna/",
        "facecluster find anna.jpg -q || echo 'not in the library'",
    ],
    "eval": [
        "facecluster eval ~/labelled",
        "facecluster eval ~/labelled --sweep 0.1:0.3:0.02 --json",
        "FACECLUSTER_THRESHOLD=0.2 facecluster eval ~/labelled",
    ],
    "train": [
        "facecluster train ~/labelled --out family",
        "facecluster scan ~/Photos --model dlib-resnet+family",
    ],
    "models": ["facecluster models", "facecluster models --json | jq '.[].name'"],
}
