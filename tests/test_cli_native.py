"""The command line as a user's shell expects it: options from the environment, help that
ends with examples, completion, -q everywhere, exit codes a script can test (find as
grep), output for pipes, progress photo by photo, a broken file not retried at every
scan. On the in-repo photos (tests/data)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from facecluster import FaceIndex, config
from facecluster.cli import app
from facecluster.cli.examples import EXAMPLES
from facecluster.encoders import encoder_spec, resolve
from facecluster.placement import describe
from facecluster.records import ScanProgress

from .conftest import SAMPLE, copy_sample_people, db_copy, sample_edge, sample_people

runner = CliRunner()
PEOPLE = sample_people()


def commands(group=None, words=()):  # type: ignore[no-untyped-def]
    """(words, click command) of every command under the root, people subcommands too."""
    group = group or get_command(app)
    for name, cmd in group.commands.items():
        yield (*words, name), cmd
        yield from commands(cmd, (*words, name)) if hasattr(cmd, "commands") else ()


# --- help, options, environment ---------------------------------------------------------


def test_every_command_has_quiet_examples_and_capital_argument_names():
    seen = []
    for words, cmd in commands():
        seen.append(" ".join(words))
        assert any("-q" in p.opts for p in cmd.params), f"{words} has no -q"
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, result.output
        usage = result.stdout.splitlines()[0]
        assert "{" not in usage and "}" not in usage, usage
        examples = result.stdout.rstrip().split("Examples:")[-1].strip().splitlines()
        assert 2 <= len(EXAMPLES[" ".join(words)]) <= 3
        assert [e.strip() for e in examples] == EXAMPLES[" ".join(words)]
    assert "scan" in seen and "people show" in seen
    scan_usage = runner.invoke(app, ["scan", "--help"]).stdout.splitlines()[0]
    assert scan_usage == "Usage: facecluster scan [OPTIONS] PATHS..."


def test_shell_completion_is_installable_and_completes_commands():
    script = runner.invoke(app, ["--show-completion", "bash"])
    assert script.exit_code == 0 and "complete -o default -F" in script.stdout
    env = {"_FACECLUSTER_COMPLETE": "complete_bash", "COMP_WORDS": "facecluster sc",
           "COMP_CWORD": "1"}
    completed = runner.invoke(app, [], env=env, prog_name="facecluster")
    assert completed.stdout.split() == ["scan"]


def test_options_come_from_the_environment_and_the_command_line_wins(scanned_sample, tmp_path):
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    assert runner.invoke(app, ["group", "--db", str(db), "-q"]).exit_code == 0
    listing = runner.invoke(app, ["people", "--json"], env={"FACECLUSTER_DB": str(db)})
    assert listing.exit_code == 0, listing.output
    assert len(json.loads(listing.stdout)) == 4
    # For one command only: FACECLUSTER_<COMMAND>_<OPTION>, and it beats the general one.
    missing = str(tmp_path / "nowhere.db")
    env = {"FACECLUSTER_DB": missing, "FACECLUSTER_PEOPLE_DB": str(db)}
    assert runner.invoke(app, ["people", "--json"], env=env).exit_code == 0
    shown = runner.invoke(app, ["people", "show", "1", "--json"], env=env)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == 1
    wrong = runner.invoke(app, ["people", "--json"], env={"FACECLUSTER_DB": missing})
    assert wrong.exit_code == 2 and "no face database" in wrong.stderr
    flag = runner.invoke(app, ["people", "--db", str(db)], env={"FACECLUSTER_QUIET": "1"})
    assert flag.exit_code == 0 and flag.stdout == ""
    given = runner.invoke(app, ["people", "--db", str(db), "--json"], env=env)  # --db wins
    assert given.exit_code == 0
    assert not Path(missing).exists()


def test_threshold_from_the_environment_reaches_eval_and_eval_keeps_its_own_db(tmp_path):
    library = tmp_path / "library.db"
    env = {"FACECLUSTER_THRESHOLD": "0.2", "FACECLUSTER_DB": str(library)}
    result = runner.invoke(app, ["eval", str(SAMPLE / "people"), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["threshold"] == 0.2
    assert not library.exists()  # eval's database stays apart from the library's
    assert (config.data_dir() / "eval.db").is_file()


# --- tables and pipes -------------------------------------------------------------------


def test_models_to_a_pipe_prints_whole_paths_and_quiet_prints_nothing():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    path = config.torch_home() / "checkpoints" / "20180402-114759-vggface2.pt"
    assert len(str(path)) > 40 and str(path) in result.stdout and "…" not in result.stdout
    assert runner.invoke(app, ["models", "-q"]).stdout == ""


def test_a_reader_that_stops_reading_ends_the_command_quietly(capsys):
    from facecluster.cli.output import unexpected

    assert unexpected(BrokenPipeError(32, "Broken pipe")).exit_code == 141
    assert capsys.readouterr().err == ""


# --- people -----------------------------------------------------------------------------


def test_people_lists_with_a_header_the_unknown_count_and_plurals(scanned_sample, tmp_path):
    db = str(db_copy(scanned_sample, tmp_path / "faces.db"))
    assert runner.invoke(app, ["group", "--db", db, "-q"]).exit_code == 0
    lines = runner.invoke(app, ["people", "--db", db]).stdout.splitlines()
    assert lines[0].split() == ["id", "name", "faces", "photos"]
    assert len(lines) == 1 + 4 + 1
    # 18 faces: four persons of 3-4 portraits each; the group photo's three faces and the
    # EXIF-rotated portrait are alone, so unknown.
    assert lines[-1] == "4 persons with 14 faces; 4 faces in no person (unknown)"
    first = json.loads(runner.invoke(app, ["people", "--db", db, "--json"]).stdout)[0]
    face = json.loads(runner.invoke(app, ["people", "--db", db, "show", str(first["id"]),
                                          "--json"]).stdout)["faces"][0]["face_id"]
    split = runner.invoke(app, ["people", "--db", db, "split", str(first["id"]), str(face)])
    assert split.stdout.endswith("with 1 face\n"), split.stdout
    new = split.stdout.split()[2]
    shown = runner.invoke(app, ["people", "--db", db, "show", new]).stdout
    assert f"person {new} (person_{int(new):04d}): 1 face in 1 photo" in shown


def test_people_show_tells_apart_the_faces_of_one_photo(scanned_sample, tmp_path):
    db = str(db_copy(scanned_sample, tmp_path / "faces.db"))
    assert runner.invoke(app, ["group", "--db", db, "-q"]).exit_code == 0
    group_photo = str(scanned_sample.root / sample_edge("multi_face").relative_to(SAMPLE))
    with FaceIndex(db, create=False) as index:
        faces = [f for f in index.cache.face_vectors(index.encoder_id)[0] if f.path == group_photo]
    assert len(faces) == 3
    move = ["people", "--db", db, "move-face", "1", *(str(f.id) for f in faces)]
    assert runner.invoke(app, move).exit_code == 0
    text = runner.invoke(app, ["people", "--db", db, "show", "1"]).stdout
    rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]
    mine = [r for r in rows if r[-1] == group_photo]  # face id, box, place, photo
    assert sorted(int(r[0]) for r in mine) == sorted(f.id for f in faces)
    places = sorted(r[2].split(",")[0] for r in mine)
    assert places == ["left of 3", "middle of 3", "right of 3"]
    obj = json.loads(runner.invoke(app, ["people", "--db", db, "show", "1", "--json"]).stdout)
    listed = {f["face_id"]: f for f in obj["faces"] if f["photo"] == group_photo}
    for f in faces:
        assert listed[f.id]["box"] == [round(float(v), 1) for v in f.face.box]
        assert listed[f.id]["faces_in_photo"] == 3
    assert len({f["where"] for f in listed.values()}) == 3  # three different descriptions


def test_describe_places_a_face_among_the_others():
    one = [(0.0, 0.0, 10.0, 10.0)]
    assert describe(0, one) == "only face"
    two = [(50.0, 0.0, 90.0, 40.0), (0.0, 0.0, 10.0, 10.0)]
    assert describe(0, two) == "right of 2, largest" and describe(1, two) == "left of 2"
    five = [(x, 0.0, x + 10.0 + x / 10, 10.0) for x in (0.0, 20.0, 40.0, 60.0, 80.0)]
    assert [describe(i, five) for i in range(5)] == [
        "leftmost of 5, smallest",
        "2nd from left of 5",
        "middle of 5",
        "2nd from right of 5",
        "rightmost of 5, largest",
    ]


# --- find -------------------------------------------------------------------------------


@dataclass
class Small:
    root: Path
    db: Path
    events: list[ScanProgress]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Small:
    """Two portraits of Colin Powell, one of Tony Blair and the truncated JPEG, scanned
    through the API in batches of 2 with its progress callback recorded."""
    base = tmp_path_factory.mktemp("small")
    root = copy_sample_people(base / "photos", {"Colin_Powell": 2, "Tony_Blair": 1})
    shutil.copy2(sample_edge("broken"), root / "broken.jpg")
    events: list[ScanProgress] = []
    # dlib-resnet by name: what 'auto' picks in the tests' environment, which a
    # module-scoped fixture does not get yet (conftest._isolated_env is per test).
    with FaceIndex(base / "faces.db", model="dlib-resnet") as index:
        index.scan([root], batch_size=2, progress=events.append)
    return Small(root, base / "faces.db", events)


def test_progress_is_reported_photo_by_photo_and_saved_batch_by_batch(small):
    events = small.events
    assert events[0] == ScanProgress(0, 4, 0, 0, 0, "scanning")  # the walk is done
    loading = [i for i, e in enumerate(events) if e.stage == "loading models"]
    assert len(loading) == 1
    done = [e.done for e in events if e.stage == "scanning"]
    assert done == sorted(done) and set(done) == {0, 1, 2, 3, 4}
    # One event as each photo is done; 'saved' moves only when a batch of 2 is committed.
    assert [e.saved for e in events if e.stage == "scanning"][-1] == 4
    assert {e.saved for e in events} == {0, 2, 4}
    assert any(e.done > e.saved for e in events)
    # The model photos come after the models loaded; the spinner said so until then.
    first_model_photo = next(i for i, e in enumerate(events) if e.faces > 0)
    assert loading[0] < first_model_photo
    last = events[-1]
    assert (last.done, last.saved, last.total, last.faces, last.failed) == (4, 4, 4, 3, 1)


def test_find_exits_1_when_nothing_matches_like_grep(small):
    other = str(PEOPLE["Serena_Williams"][0])
    dlib = ["--db", str(small.db), "--model", "dlib-resnet"]  # what the small index holds
    result = runner.invoke(app, ["find", other, *dlib])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("no face within 0.155 of the query")
    as_json = runner.invoke(app, ["find", other, *dlib, "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["results"] == []
    quiet = runner.invoke(app, ["find", other, *dlib, "-q"])
    assert quiet.exit_code == 1 and quiet.output == ""


def test_find_names_each_hits_person_and_paths_prints_only_paths(scanned_sample, tmp_path):
    db = str(db_copy(scanned_sample, tmp_path / "faces.db"))
    assert runner.invoke(app, ["group", "--db", db, "-q"]).exit_code == 0
    query = str(PEOPLE["Colin_Powell"][0])
    hits = json.loads(runner.invoke(app, ["find", query, "--db", db, "--json"]).stdout)
    pid = hits["results"][0]["person_id"]
    named = runner.invoke(app, ["people", "--db", db, "name", str(pid), "Colin Powell"])
    assert named.exit_code == 0
    text = runner.invoke(app, ["find", query, "--db", db])
    assert text.exit_code == 0
    rows = text.stdout.splitlines()
    assert len(rows) == len(PEOPLE["Colin_Powell"])
    assert all(f"  Colin Powell ({pid})  " in row for row in rows)
    paths = runner.invoke(app, ["find", query, "--db", db, "--paths"])
    assert paths.exit_code == 0
    listed = paths.stdout.splitlines()
    assert listed == [row.split("  ")[-1] for row in rows]
    assert all(Path(p).is_file() and "Colin_Powell" in p for p in listed)


# --- scan -------------------------------------------------------------------------------


def test_a_broken_photo_is_not_retried_until_it_changes_or_is_asked(small, tmp_path):
    db = str(shutil.copy2(small.db, tmp_path / "faces.db"))
    again = json.loads(runner.invoke(app, ["scan", str(small.root), "--db", db, "--json"]).stdout)
    assert again["photos_failed"] == 0 and again["photos_failed_unchanged"] == 1
    retried = runner.invoke(app, ["scan", str(small.root), "--db", db, "--retry-failed",
                                  "--json"])
    assert json.loads(retried.stdout)["photos_failed"] == 1
    (small.root / "broken.jpg").touch()  # changed: read again without being asked
    touched = runner.invoke(app, ["scan", str(small.root), "--db", db, "--json"])
    out = json.loads(touched.stdout)
    assert out["photos_failed"] == 1 and out["photos_failed_unchanged"] == 0


def test_the_fallback_notice_is_said_once_per_database(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["scan", str(empty), "--db", str(tmp_path / "faces.db")]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == second.exit_code == 0
    assert "fallback: facenet-vggface2 weights not found" in first.stderr
    assert "said once per database" in first.stderr
    auto = resolve("auto")  # the offline encoder 'auto' falls back to
    assert f"model: {auto}, {encoder_spec(auto).dim}-D (fallback)\n" in second.stderr
    assert "weights not found" not in second.stderr
    other = runner.invoke(app, ["scan", str(empty), "--db", str(tmp_path / "other.db")])
    assert "weights not found" in other.stderr  # another database is told again


def test_the_progress_bar_shows_each_stage_and_moves_per_photo():
    from io import StringIO

    from rich.console import Console

    from facecluster.cli.scan import ScanBar

    bar = ScanBar(Console(file=StringIO(), force_terminal=True, width=120))
    task = bar.progress.tasks[0]
    assert task.description == "looking for photos" and task.total is None
    bar(ScanProgress(0, 3, 0, 0))
    bar(ScanProgress(0, 3, 0, 0, stage="loading models"))
    assert task.description == "loading models" and task.total == 3
    for n in (1, 2):
        bar(ScanProgress(n, 3, n, 0))
        assert task.description == "scanning" and task.completed == n


def test_overrides_txt_matches_the_projects_override_dependencies():
    import tomllib

    root = SAMPLE.parents[1]
    table = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]
    lines = (root / "overrides.txt").read_text().splitlines()
    listed = [line for line in lines if line.strip() and not line.startswith("#")]
    assert listed == table["override-dependencies"]
