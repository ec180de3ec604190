"""Seeded fuzzing of two more things a user hands over (issue 30):

- what ``edgeaffect report`` reads: the JSON files of the build folders (pipeline summaries,
  export manifests, benchmarks, roofline bounds and calibration, training results, reproduce
  tables) and ``--bench``, damaged as a hand edit, a full disk or another tool would damage
  them (truncated, wrong types, missing keys, other nesting, NaN and infinities, huge numbers,
  non-UTF-8 bytes, deep nesting, a folder or a dangling link in a file's place), through
  ``report --html`` and the Markdown ``report --bench --out``;
- the corpus folders ``edgeaffect reproduce`` reads, in each family's layouts (EmoDB,
  IEMOCAP, CREMA-D and RAVDESS speech for SpeechNet; AVEC2013 / AVEC2014; DAIC-WOZ; SAVEE,
  RAVDESS and MEAD audio-visual for AVER), a small valid synthetic corpus per layout made
  once, then copies damaged (folders and files missing, emptied, truncated, renamed, moved,
  replaced by text or noise, label and split files edited).

Invariant: exit 0, or one line ``error: ...`` and exit 2; no other exception, no case past
its deadline; the report page (or Markdown file) is there whole or not at all (an earlier
page unchanged), and nothing half-written is left. Reproduce runs everything its training
step needs of the corpus (features, the split, statistics) and stops where a model would be
built (half a minute a run): ``CorpusAccepted`` then counts as exit 0. The normal suite
runs a few cases of each; ``-m slow`` a longer campaign."""

from __future__ import annotations

import copy
import io
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from tests.test_fuzz_inputs import ODD_VALUES, _paths
from tests.test_fuzz_recordings import _damage, case, run_cli, tree

# --------------------------------------------------------------------------- report inputs

REPORT_ODD = [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 10 ** 30, -(10 ** 30), 10 ** 400, "\ud800",
              "<script>alert(1)</script>", "a\nb", "x" * 5000, [[1, 2], [3]], [[]], [[1e308, -1]], ["a"] * 40,
              {"mean": "x", "values": [None]}, {"model": ["a"]}, [{"status": None}], 0.5, -3]


def _mutate_report(data, rng: random.Random):
    """Random values (the manifest fuzz's and the report's own) put at random places, keys dropped."""
    values = ODD_VALUES + REPORT_ODD
    if not isinstance(data, (dict, list)) or not data:
        return copy.deepcopy(rng.choice(values))
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        *parents, last = rng.choice(paths)
        parent = data
        for key in parents:
            parent = parent[key]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[last]
        else:
            parent[last] = copy.deepcopy(rng.choice(values))
    return data


NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")
NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400", b"9" * 400, b"9" * 5000, b"-0",
           b"123456789012345678901234567890", b"0.0", b"1.5e308"]
ROOTS = [b"", b"null", b"[]", b"{}", b'"text"', b"1", b"true", b"[[[]]]", b"\xef\xbb\xbf{}"]


def damage_json(raw: bytes, rng: random.Random) -> bytes:
    """A JSON file damaged at the text or at the structure."""
    mode = rng.choice(["structure", "structure", "structure", "number", "truncate", "bytes", "deep", "root",
                       "surrogate"])
    if mode == "structure":
        return json.dumps(_mutate_report(json.loads(raw), rng)).encode()
    if mode == "number":
        spans = [m.span() for m in NUMBER.finditer(raw)]
        if spans:
            a, b = rng.choice(spans)
            return raw[:a] + rng.choice(NUMBERS) + raw[b:]
        return raw
    if mode == "truncate":
        return raw[: rng.randrange(len(raw))] if raw else raw
    if mode == "bytes":
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + rng.choice([b"\xff", b"\xc3", b"\x80\x81", b"\x00", b"\xed\xa0\x80"]) + raw[at:]
    if mode == "deep":
        k = rng.choice([50, 2000, 100_000])
        return b"[" * k + raw + b"]" * k
    if mode == "surrogate":  # a string value with a lone surrogate escape: valid JSON, not encodable text
        return raw.replace(b'"', b'"\\ud800', 2) if b'"' in raw else b'"\\udfff"'
    return rng.choice(ROOTS)


def _replace_path(path: Path, rng: random.Random) -> str:
    kind = rng.choice(["folder", "dangling", "missing"])
    path.unlink()
    if kind == "folder":
        path.mkdir()
        (path / "manifest.json").write_text("{}")
    elif kind == "dangling":
        path.symlink_to(path.name + ".gone")
    return kind


@pytest.fixture(scope="module")
def report_inputs(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The report test's fixture folders (every kind of file the page draws)."""
    from tests.test_report_html import write_fixtures

    root = tmp_path_factory.mktemp("report-inputs")
    return root, write_fixtures(root / "build")["folders"]


@pytest.fixture
def models_not_built(monkeypatch):
    """The report as a machine without TensorFlow writes it (parameters and FLOPs from the
    registry, memory from the weights alone): building every registered model to count it
    takes half a minute here, and no input of the report changes those counts."""
    from edgeaffect.contract.registry import ModelSpec

    def no_tensorflow(self):
        raise ImportError("no TensorFlow in this test")

    monkeypatch.setattr(ModelSpec, "build_model", no_tensorflow)


def page_is_whole(out: Path) -> str:
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n"), page[-200:]
    return page


def report_case(inputs: tuple[Path, list[Path]], folder: Path, i: int, rng: random.Random) -> dict:
    """Copies of the report's inputs with 1-3 JSON files damaged, through ``report --html`` and
    ``report --bench --out``: {command: whether it succeeded}."""
    root, folders = inputs
    shutil.copytree(root, folder / "in", symlinks=True)
    given = [folder / "in" / f.relative_to(root) for f in folders]
    files = sorted(p for p in (folder / "in").rglob("*.json") if "corpus" not in p.parts)
    done = []
    for path in rng.sample(files, rng.randint(1, 3)):
        if rng.random() < 0.06:
            done.append(f"{path.name} -> {_replace_path(path, rng)}")
            continue
        path.write_bytes(damage_json(path.read_bytes(), rng))
        done.append(path.relative_to(folder / "in").as_posix())
    args = rng.sample(given, rng.randint(1, len(given)))
    if rng.random() < 0.2:  # files are taken as given
        args = rng.sample(files, min(len(files), rng.randint(1, 3)))
    bench = rng.choice([None, None] + [p for p in files if p.name.startswith("bench")])
    out = folder / "site" / "page"
    earlier = None
    if rng.random() < 0.3:  # an earlier page is there: replaced whole, or left as it was
        (out / "img").mkdir(parents=True)
        earlier = "<!DOCTYPE html>an earlier page</html>\n"
        (out / "index.html").write_text(earlier)
    result = {}
    with case(f"case {i}: damaged {done}; report {[str(a.relative_to(folder)) for a in args]} bench {bench}"):
        inputs_before = tree(folder / "in")
        code, line = run_cli("report", *args, "--html", out, *(["--bench", bench] if bench else []), seconds=120)
        assert code in (0, 2), (code, line)
        result["report --html"] = code == 0
        if code == 0:
            page_is_whole(out)
        elif earlier is not None:
            assert (out / "index.html").read_text() == earlier and not (out / "img" / "x").exists()
        else:
            assert not out.exists(), "a refused report left a page"
        site = [p.name for p in (folder / "site").iterdir()] if (folder / "site").exists() else []
        assert site in ([], ["page"]), f"a temp folder was left: {site}"
        if bench is not None:
            md = folder / "report.md"
            code, line = run_cli("report", "--bench", bench, "--out", md, seconds=120)
            assert code in (0, 2), (code, line)
            result["report --bench --out"] = code == 0
            if code == 0:
                text = md.read_text(encoding="utf-8")
                assert text.startswith("# Our figures beside the papers'") and text.endswith("\n")
            else:
                assert not md.exists()
            assert {p.name for p in folder.iterdir()} <= {"in", "site", "report.md"}, "a temp file was left"
        assert tree(folder / "in") == inputs_before, "report wrote into its inputs"
    return result


def _fuzz_report(inputs, tmp_path: Path, n: int, seed: int):
    rng = random.Random(seed)
    outcomes: dict[str, dict[str, int]] = {}
    for i in range(n):
        for who, ok in report_case(inputs, tmp_path / f"c{i}", i, rng).items():
            outcomes.setdefault(who, {"ok": 0, "refused": 0})["ok" if ok else "refused"] += 1
    print(outcomes)
    assert outcomes["report --html"]["ok"], outcomes
    return outcomes


def test_a_bench_file_that_is_no_bench_is_one_line_in_the_markdown_report(models_not_built, tmp_path):
    """Was JSONDecodeError, UnicodeDecodeError or AttributeError ('list' object has no
    attribute 'get'): ``report --bench`` read the file with no check."""
    cases = {"truncated": (b'{"rows": [{"model"', "is not valid JSON"),
             "bytes": (b'{"rows": []}\xff', "is not valid JSON"),
             "deep": (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"), "list": (b"[1, 2]", "is not what"),
             "rows": (b'{"rows": 3}', "is not what")}
    for name, (data, fragment) in cases.items():
        bench = tmp_path / f"{name}.json"
        bench.write_bytes(data)
        code, line = run_cli("report", "--bench", bench, "--out", tmp_path / f"{name}.md")
        assert code == 2 and fragment in line and str(bench) in line, (name, line)
        assert not (tmp_path / f"{name}.md").exists()
    # Rows that are not rows (a number, a model that is not a name, a time that is not a time) are left out.
    bench = tmp_path / "mixed.json"
    bench.write_text(json.dumps({"rows": [3, {"model": ["x"], "format": "onnx-fp32", "p50_ms": 1.0},
                                          {"model": "aver-ravdess", "format": "tflite-fp32", "p50_ms": "fast"},
                                          {"model": "aver-ravdess", "format": "tflite-fp32", "p50_ms": 0.25}]}))
    assert run_cli("report", "--bench", bench, "--out", tmp_path / "ok.md") == (0, "")
    assert "our time is p50 of tflite-fp32 on None" in (tmp_path / "ok.md").read_text()


def test_a_lone_surrogate_in_an_input_is_written_escaped(report_inputs, models_not_built, tmp_path):
    """Was UnicodeEncodeError when the page or the Markdown was written: "\\ud800" is valid JSON
    but no UTF-8 text."""
    root, folders = report_inputs
    shutil.copytree(root, tmp_path / "in")
    repro = tmp_path / "in" / "build" / "repro-real" / "reproduce.json"
    repro.write_text(repro.read_text().replace('"title": "', '"title": "\\ud800'))
    assert run_cli("report", repro.parent, "--html", tmp_path / "page") == (0, "")
    assert "\\ud800SpeechNet" in page_is_whole(tmp_path / "page")
    bench = tmp_path / "bench.json"
    bench.write_text('{"machine": "\\ud800", "rows": [{"model": "aver-ravdess", "format": "tflite-fp32", '
                     '"runtime": "litert", "p50_ms": 0.2}]}')
    assert run_cli("report", "--bench", bench, "--out", tmp_path / "r.md") == (0, "")
    assert "measured on \\ud800." in (tmp_path / "r.md").read_text()


def test_a_bench_nested_past_the_stack_is_a_note_on_the_page(models_not_built, tmp_path):
    """Was RecursionError: ``report --html --bench`` read the file outside the page's guards."""
    bench = tmp_path / "bench.json"
    bench.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (tmp_path / "empty").mkdir()
    assert run_cli("report", tmp_path / "empty", "--html", tmp_path / "page", "--bench", bench) == (0, "")
    assert "no times of ours taken from it (RecursionError" in page_is_whole(tmp_path / "page")


def test_fuzzed_report_inputs_end_in_a_whole_page_or_one_line(report_inputs, models_not_built, tmp_path):
    _fuzz_report(report_inputs, tmp_path, 25, seed=30)


@pytest.mark.slow
def test_fuzzed_report_inputs_longer_campaign(report_inputs, models_not_built, tmp_path):
    _fuzz_report(report_inputs, tmp_path, 500, seed=3030)


# --------------------------------------------------------------------------- reproduce corpora

class CorpusAccepted(Exception):
    """Reproduce got as far as building a model: the corpus was read, its features made, split
    and standardised (what a model is then trained on is the training tests' business)."""


# layout -> (paper, its --corpus name); each built once by ``corpora`` below
LAYOUTS = {"emodb": ("speechnet-ser", "emodb"), "iemocap": ("speechnet-ser", "iemocap"),
           "crema-d": ("speechnet-ser", "crema-d"), "ravdess-speech": ("speechnet-ser", "ravdess"),
           "savee-speech": ("speechnet-ser", "savee"), "avec2013": ("spectrotemporal-depression", "avec2013"),
           "avec2014": ("spectrotemporal-depression", "avec2014"), "daicwoz": ("wav2vec2-depression", "daicwoz"),
           "savee-av": ("lightweight-aver", "savee"), "ravdess-av": ("lightweight-aver", "ravdess"),
           "mead": ("lightweight-aver", "mead")}
# EmoDB's emotion letter -> the code in each other speech layout (None: that corpus has no such class)
IEMOCAP = {"W": "ang", "N": "neu", "T": "sad", "F": "hap", "L": "fru", "E": "xxx", "A": "exc"}
CREMAD = {"W": "ANG", "E": "DIS", "A": "FEA", "F": "HAP", "N": "NEU", "T": "SAD", "L": None}
RAVDESS_SPEECH = {"N": "01", "L": "02", "F": "03", "T": "04", "W": "05", "A": "06", "E": "07"}
SAVEE_SPEECH = {"W": "a", "E": "d", "A": "f", "F": "h", "N": "n", "T": "sa", "L": "su"}


def _speech_layouts(emodb: Path, root: Path) -> None:
    """The other speech corpora's layouts, made of EmoDB's synthetic utterances (speaker i of
    EmoDB is speaker i there)."""
    from edgeaffect.data.synthetic import mark

    wavs = sorted((emodb / "wav").glob("*.wav"))
    speakers = sorted({w.name[:2] for w in wavs})
    lines: dict[Path, list[str]] = {}
    for k, w in enumerate(wavs):
        s, letter = speakers.index(w.name[:2]), w.name[5]
        gender = "MF"[s % 2]
        session, dialog = root / "iemocap" / f"Session{s + 1}", f"Ses0{s + 1}{gender}_impro01"
        name = f"{dialog}_{gender}{k:03d}"
        shutil.copy(w, _parent(session / "sentences" / "wav" / dialog / f"{name}.wav"))
        lines.setdefault(session / "dialog" / "EmoEvaluation" / f"{dialog}.txt",
                         ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]).append(
            f"[{k:.4f} - {k + 1:.4f}]\t{name}\t{IEMOCAP[letter]}\t[2.5000, 2.5000, 2.5000]")
        if CREMAD[letter]:
            shutil.copy(w, _parent(root / "crema-d" / "AudioWAV" / f"10{s + 1:02d}_DFA_{CREMAD[letter]}_XX.wav"))
        shutil.copy(w, _parent(root / "ravdess-speech" / f"Actor_{s + 1:02d}" /
                               f"03-01-{RAVDESS_SPEECH[letter]}-01-01-01-{s + 1:02d}.wav"))
        shutil.copy(w, _parent(root / "savee-speech" / "AudioData" / ("DC", "JE", "JK")[s] /
                               f"{SAVEE_SPEECH[letter]}{k + 1:02d}.wav"))
    for path, text in lines.items():
        _parent(path).write_text("\n".join(text) + "\n")
    for name in ("iemocap", "crema-d", "ravdess-speech", "savee-speech"):
        mark(root / name, name)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _avec2014(avec2013: Path, out: Path) -> None:
    """AVEC2014's layout (a Freeform and a Northwind recording per label) from AVEC2013's files."""
    for wav in avec2013.glob("*/Audio/*_audio.wav"):
        subject, part = wav.name[: -len("_audio.wav")], wav.parent.parent.name
        for task in ("Freeform", "Northwind"):
            shutil.copy(wav, _parent(out / part / task / f"{subject}_{task}_audio.wav"))
    for label in avec2013.glob("*/DepressionLabels/*"):
        shutil.copy(label, _parent(out / label.relative_to(avec2013)))
    shutil.copy(avec2013 / ".edgeaffect-synthetic", out / ".edgeaffect-synthetic")


class Corpora(dict):
    """One small valid synthetic corpus per layout, made when first asked for (the speech
    layouts from EmoDB's; the audio-visual ones take a few seconds)."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, layout: str) -> Path:
        from edgeaffect.families.aver.synthetic import SyntheticConfig, generate, generate_mead, generate_savee
        from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013
        from edgeaffect.families.speechnet.synthetic import SpeechCorpusConfig, generate_emodb
        from edgeaffect.families.wav2vec2.synthetic import generate_daicwoz

        root, av = self.root, SyntheticConfig(actors=3, statements=1, repetitions=1, duration_s=1.0, width=160,
                                              height=120, fps=15)
        if layout == "emodb":
            generate_emodb(root / "emodb", SpeechCorpusConfig(speakers=3, texts=1, min_seconds=0.8, max_seconds=1.0))
        elif layout in ("iemocap", "crema-d", "ravdess-speech", "savee-speech"):
            _speech_layouts(self["emodb"], root)
        elif layout == "avec2013":
            generate_avec2013(root / "avec2013", per_partition=1, seconds=4.0, seed=0)
        elif layout == "avec2014":
            _avec2014(self["avec2013"], root / "avec2014")
        elif layout == "daicwoz":
            generate_daicwoz(root / "daicwoz", scale=1, speech_s=4.0, seed=0)
        elif layout == "savee-av":
            generate_savee(root / "savee-av", av)
        elif layout == "ravdess-av":
            generate(root / "ravdess-av", SyntheticConfig(**{**av.__dict__, "actors": 2, "layout": "split"}))
        else:
            generate_mead(root / layout, SyntheticConfig(**{**av.__dict__, "actors": 2}))
        self[layout] = root / layout
        return self[layout]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Corpora:
    return Corpora(tmp_path_factory.mktemp("fuzz-corpora"))


@pytest.fixture
def stop_before_models(monkeypatch):
    """No model is built (see ``CorpusAccepted``), features in this process (no worker pool)."""
    from edgeaffect.contract.registry import ModelSpec
    from edgeaffect.families.wav2vec2 import dataset

    def stop(*args, **kwargs):
        raise CorpusAccepted

    monkeypatch.setattr(ModelSpec, "build_model", stop)
    monkeypatch.setattr(dataset, "backbone_for", stop)  # wav2vec2 embeds its segments with the backbone first
    monkeypatch.setenv("EDGEAFFECT_WORKERS", "1")


MEDIA = (".wav", ".mp4", ".avi")
LABEL_JUNK = [b"", b"x", b"nan", b"inf", b"-inf", b"-1", b"1e400", b"999", b"63.5", b"0x10", b"\xff\xfe", b"1,2",
              b"2.5.5", b"True", b"9" * 400]


def _edit_text(raw: bytes, rng: random.Random) -> bytes:
    """A label, split or transcript file edited by hand (or by a spreadsheet)."""
    lines = raw.split(b"\n")
    mode = rng.choice(["number", "number", "drop-line", "dup-line", "delimiter", "bytes", "header", "blank",
                       "garbage", "truncate", "column"])
    if mode == "number":
        spans = [m.span() for m in NUMBER.finditer(raw)]
        if spans:
            a, b = rng.choice(spans)
            return raw[:a] + rng.choice(LABEL_JUNK) + raw[b:]
    if mode == "drop-line" and len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    elif mode == "dup-line" and lines:
        lines.insert(rng.randrange(len(lines)), rng.choice(lines))
    elif mode == "delimiter":
        return raw.replace(b"\t", b",") if b"\t" in raw else raw.replace(b",", rng.choice([b"\t", b";", b" "]))
    elif mode == "bytes":
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\x00", b"\xef\xbb\xbf"]) + raw[at:]
    elif mode == "header" and lines:
        lines[0] = rng.choice([b"", b"id,label", lines[0].lower(), lines[0].upper(), b"\xef\xbb\xbf" + lines[0]])
    elif mode == "blank":
        lines.insert(rng.randrange(len(lines) + 1), b"")
    elif mode == "garbage":
        lines.insert(rng.randrange(len(lines) + 1), bytes(rng.randrange(32, 127) for _ in range(rng.randint(1, 40))))
    elif mode == "truncate":
        return raw[: rng.randrange(len(raw) + 1)]
    elif mode == "column" and lines:  # a column dropped from one line
        i = rng.randrange(len(lines))
        cells = re.split(rb"[\t,]", lines[i])
        if len(cells) > 1:
            del cells[rng.randrange(len(cells))]
            lines[i] = b",".join(cells)
    return b"\n".join(lines)


def _renamed(name: str, rng: random.Random) -> str:
    mode = rng.choice(["char", "case", "suffix", "no-suffix", "digit"])
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    if mode == "char" and stem:
        i = rng.randrange(len(stem))
        return stem[:i] + rng.choice("abcXYZ019_-. ") + stem[i + 1:] + dot + suffix
    if mode == "case":
        return name.swapcase()
    if mode == "suffix":
        return name + rng.choice([".bak", ".wav", ".tmp"])
    if mode == "no-suffix":
        return stem
    digits = [i for i, c in enumerate(name) if c.isdigit()]
    if digits:
        i = rng.choice(digits)
        return name[:i] + rng.choice("0123456789") + name[i + 1:]
    return name + "_"


FILE_OPS = ["delete-file", "empty", "truncate", "rename", "move", "file-to-folder", "symlink"]


def damage_corpus(data: Path, rng: random.Random) -> str:
    """One damage to a corpus copy; returns what it did."""
    from edgeaffect.data.synthetic import MARKER

    entries = sorted(data.rglob("*"))
    files = [p for p in entries if p.is_file() and not p.is_symlink() and p.name != MARKER]
    media = [p for p in files if p.suffix.lower() in MEDIA]
    texts = [p for p in files if p.suffix.lower() in (".csv", ".txt")]
    dirs = [p for p in entries if p.is_dir()]
    op = rng.choice(["delete-file", "delete-folder", "empty", "truncate", "not-media", "damage-media", "rename",
                     "move", "file-to-folder", "symlink", "edit-text", "edit-text", "edit-text", "junk-file",
                     "marker"])
    if not {"edit-text": texts, "damage-media": media, "not-media": media, "delete-folder": dirs}.get(op, True):
        op = rng.choice(FILE_OPS)  # nothing of that kind in this layout
    if op == "edit-text":
        p = rng.choice(texts)
        p.write_bytes(_edit_text(p.read_bytes(), rng))
        return f"{op} {p.relative_to(data)}"
    if op in ("damage-media", "not-media"):
        p = rng.choice(media)
        p.write_bytes(_damage(p.read_bytes(), rng) if op == "damage-media" else
                      rng.choice([b"not audio\n", bytes(rng.randrange(256) for _ in range(500))]))
        return f"{op} {p.relative_to(data)}"
    if op == "delete-folder":
        p = rng.choice(dirs)
        shutil.rmtree(p)
        return f"{op} {p.relative_to(data)}"
    if op == "marker":
        (data / MARKER).unlink(missing_ok=True)
        return op
    if op == "junk-file":
        like = rng.choice(files) if files else data / "x.wav"
        p = like.with_name(rng.choice([_renamed(like.name, rng), "._" + like.name, ".hidden" + like.suffix]))
        p.write_bytes(rng.choice([b"", b"junk", like.read_bytes()[:100] if like.is_file() else b""]))
        return f"{op} {p.relative_to(data)}"
    if not files:
        return "nothing left to damage"
    p = rng.choice(files)
    where = p.relative_to(data)
    if op == "delete-file":
        p.unlink()
    elif op == "empty":
        p.write_bytes(b"")
    elif op == "truncate":
        p.write_bytes(p.read_bytes()[: rng.randrange(p.stat().st_size + 1)])
    elif op == "rename":
        p.rename(p.with_name(_renamed(p.name, rng)))
    elif op == "move":
        p.rename(rng.choice(dirs + [data]) / p.name)
    elif op == "file-to-folder":
        p.unlink()
        p.mkdir()
    else:
        assert op == "symlink", op  # a link to nowhere, or to itself
        p.unlink()
        p.symlink_to(rng.choice([p.name, "gone" + p.suffix]))
    return f"{op} {where}"


def reproduce_case(corpora: Corpora, folder: Path, i: int, rng: random.Random, layouts=tuple(LAYOUTS),
                   model: dict | None = None) -> dict:
    """A damaged copy of one layout's corpus through ``reproduce``: {layout: whether it was read}.
    ``model``: layout -> the model to train there instead of the recipe's."""
    layout = rng.choice(sorted(layouts))
    paper, corpus = LAYOUTS[layout]
    data, out = folder / "data", folder / "out"
    shutil.copytree(corpora[layout], data, symlinks=True)
    done = [damage_corpus(data, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
    args = ["reproduce", paper, "--data", data, "--out", out, "--quick", "--epochs", "1"]
    if rng.random() < 0.25:  # the layout named (or another of the paper's)
        args += ["--corpus", rng.choice([corpus, *(c for p, c in LAYOUTS.values() if p == paper)])]
    if (model or {}).get(layout):
        args += ["--model", model[layout]]
    before = tree(data)
    with case(f"case {i}: {layout} corpus, {done}; {' '.join(map(str, args[5:]))}"):
        try:
            code, line = run_cli(*args, seconds=180)
        except CorpusAccepted:
            code, line = 0, ""
        assert code in (0, 2), (code, line)
        assert tree(data) == before, "reproduce wrote into the corpus"
        if out.exists():
            assert not [p for p in out.rglob("*") if _temp_name(p.name)], "a temp file was left"
            for written in out.rglob("*.json"):  # whole, and JSON any reader takes (no NaN, no Infinity)
                json.loads(written.read_text(), parse_constant=_not_json)
        return {layout: code == 0}


def _not_json(name: str):
    raise AssertionError(f"{name} written into a JSON file")


def _temp_name(name: str) -> bool:
    """``edgeaffect.io``'s temp names (``.NAME.PID.random``), which a finished writer never leaves."""
    return bool(re.match(r"^\..+\.\d+\.", name))


def _fuzz_reproduce(corpora, tmp_path: Path, n: int, seed: int, layouts=tuple(LAYOUTS)):
    rng = random.Random(seed)
    outcomes: dict[str, dict[str, int]] = {}
    for i in range(n):
        for who, ok in reproduce_case(corpora, tmp_path / f"c{i}", i, rng, layouts).items():
            outcomes.setdefault(who, {"ok": 0, "refused": 0})["ok" if ok else "refused"] += 1
    print(outcomes)
    assert sum(c["ok"] for c in outcomes.values()), outcomes  # damaged copies are still read
    assert n < 100 or sum(c["refused"] for c in outcomes.values()), outcomes  # and the damage reaches the checks
    return outcomes


@pytest.mark.slow
def test_every_valid_corpus_reaches_the_model(corpora, stop_before_models, tmp_path):
    for layout, (paper, _) in LAYOUTS.items():
        with pytest.raises(CorpusAccepted):
            run_cli("reproduce", paper, "--data", corpora[layout], "--out", tmp_path / layout, "--quick", seconds=180)


def _reproduce(paper: str, data: Path, out: Path) -> tuple[int, str]:
    try:
        return run_cli("reproduce", paper, "--data", data, "--out", out, "--quick", "--epochs", "1", seconds=180)
    except CorpusAccepted:
        return 0, ""


def test_links_to_nowhere_in_a_corpus_are_skipped_with_the_reason(corpora, tmp_path):
    """Was FileNotFoundError / OSError (too many levels of symbolic links) from the feature
    cache's key, which stat()ed every file before any was read."""
    from edgeaffect.train.families import load_corpus

    for layout, model, name in (("emodb", "speechnet-emodb", "wav/03a01Wa.wav"),
                                ("savee-av", "aver-savee", "AudioVisualClip/DC/a01.avi")):
        data = tmp_path / layout
        shutil.copytree(corpora[layout], data, symlinks=True)
        (data / name).unlink()
        (data / name).symlink_to("gone.wav")
        skipped = load_corpus(model, data, tmp_path / f"{layout}-cache", log=io.StringIO()).skipped
        assert "file not found" in skipped[Path(name).name], skipped


def test_label_files_that_cannot_be_read_are_one_line(corpora, stop_before_models, tmp_path):
    """Was IsADirectoryError, FileNotFoundError, OSError (a link to itself) or
    UnicodeDecodeError from an AVEC label file, IsADirectoryError from an IEMOCAP one."""
    for i, make in enumerate([lambda p: p.mkdir(), lambda p: p.symlink_to(p.name), lambda p: p.symlink_to("gone"),
                              lambda p: p.write_bytes(b"\xff\xfe12")]):
        data = tmp_path / f"avec{i}"
        shutil.copytree(corpora["avec2013"], data, symlinks=True)
        label = data / "Testing" / "DepressionLabels" / "400_1_Depression.csv"
        label.unlink()
        make(label)
        code, line = _reproduce("spectrotemporal-depression", data, tmp_path / f"avec{i}-out")
        assert code == 2 and f"cannot read the label file {label}" in line, line
    data = tmp_path / "iemocap"
    shutil.copytree(corpora["iemocap"], data, symlinks=True)
    txt = next(data.glob("Session1/dialog/EmoEvaluation/*.txt"))
    txt.unlink()
    txt.mkdir()
    code, line = _reproduce("speechnet-ser", data, tmp_path / "iemocap-out")
    assert code == 2 and f"cannot read the label file {txt}" in line, line


def test_labels_outside_their_scale_are_one_line(corpora, stop_before_models, tmp_path):
    """Found by running damaged corpora through real training: an AVEC label of nan trained,
    then every figure was NaN and the run ended on `reproduce.json: 'rows[0].ours.mean' must
    be a finite number` (the file already written with NaN); -1 or 64 trained silently. A
    DAIC-WOZ PHQ8_Score of inf was written into run.json as Infinity."""
    for value in ("nan", "-1", "64", "inf"):
        data = tmp_path / f"avec{value}"
        shutil.copytree(corpora["avec2013"], data)
        (data / "Testing" / "DepressionLabels" / "400_1_Depression.csv").write_text(f"{value}\n")
        code, line = _reproduce("spectrotemporal-depression", data, tmp_path / f"avec{value}-out")
        assert code == 2 and f"a BDI-II score is 0 to 63, got '{value}'" in line, line
        assert not (tmp_path / f"avec{value}-out" / "reproduce.json").exists()
    data = tmp_path / "daic"
    shutil.copytree(corpora["daicwoz"], data)
    split = data / "train_split_Depression_AVEC2017.csv"
    split.write_text(split.read_text().replace("300,0,3,", "300,0,inf,"))
    code, line = _reproduce("wav2vec2-depression", data, tmp_path / "daic-out")
    assert code == 2 and "line 2: a PHQ score is a number from 0 (or empty when unknown), got 'inf'" in line, line


def test_a_corpus_too_small_for_its_split_is_one_line(corpora, stop_before_models, tmp_path):
    """Was `ValueError: need at least one array to stack`: a RAVDESS speech corpus left with
    two utterances per class had no validation utterance, found where SpeechNet's inputs
    were stacked."""
    data = tmp_path / "ravdess"
    shutil.copytree(corpora["ravdess-speech"], data, symlinks=True)
    shutil.rmtree(data / "Actor_01")
    code, line = _reproduce("speechnet-ser", data, tmp_path / "out")
    assert code == 2 and "the paper split of these 14 samples leaves no val samples" in line, line


def test_fuzzed_corpora_are_read_or_refused_in_one_line(corpora, stop_before_models, tmp_path):
    # the speech and depression layouts here; the audio-visual ones (seconds to make) in the campaign
    _fuzz_reproduce(corpora, tmp_path, 12, seed=30, layouts=[k for k in LAYOUTS if LAYOUTS[k][0] != "lightweight-aver"])


@pytest.mark.slow
def test_fuzzed_corpora_through_real_training(corpora, tmp_path, monkeypatch):
    """A few damaged corpora trained for real (1 epoch, the quick recipes' two runs, tiny models;
    about half a minute each): what is written after the model is built holds too."""
    from tests.test_reproduce import _tiny_speechnet

    monkeypatch.setenv("EDGEAFFECT_WORKERS", "1")
    layouts = ("emodb", "avec2013", "daicwoz", "savee-av")
    rng = random.Random(77)
    outcomes = [reproduce_case(corpora, tmp_path / f"c{i}", i, rng, layouts, model={"emodb": _tiny_speechnet()})
                for i in range(8)]
    print(outcomes)
    assert any(ok for o in outcomes for ok in o.values()), outcomes


@pytest.mark.slow
def test_fuzzed_corpora_longer_campaign(corpora, stop_before_models, tmp_path):
    _fuzz_reproduce(corpora, tmp_path, 400, seed=3030)
