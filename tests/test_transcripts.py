"""YT-Temporal transcript pipeline: cleaning, edit distance, DTW alignment, window text, annotations, cache."""
import json
import math
import os
import random
import string

import numpy as np
import pytest

from data_loader.transcripts import (CACHE_VERSION, AnnotationError, Transcript, align_annotation, align_using_dtw,
                                     alignment_cache_path, clean_subtitles, edit_distance, load_transcript,
                                     normalize_word, split_denoised, write_alignment_cache)
from data_loader.transcripts import _pair_edit_distances


# --------------------------------------------------------------------------------------------------------------
# Plain reference implementations (deliberately slow and literal)


def levenshtein(a, b):
    """Full-matrix Wagner-Fischer."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[len(a)][len(b)]


def reference_align(asr, den):
    """The official align_using_dtw with tslearn's dtw_path_from_metric(metric='precomputed') written out."""
    n = len(asr)
    radius = int(max(n * 0.1, 32))
    if len(den) > n:
        den = den[:n + radius]
    m = len(den)
    table = str.maketrans("", "", string.punctuation)
    asr_pre = [w.translate(table).strip().lower() for w in asr]
    den_pre = [w.translate(table).strip().lower() for w in den]
    cost = [[9999.0] * m for _ in range(n)]
    for a in range(n):
        for o in range(max(a - radius, 0), min(a + radius, m)):
            cost[a][o] = float(levenshtein(asr_pre[a], den_pre[o]))
    # tslearn's accumulated cost matrix: an (n+1) x (m+1) float64 matrix of inf with 0 in the corner.
    acc = [[math.inf] * (m + 1) for _ in range(n + 1)]
    acc[0][0] = 0.0
    for i in range(n):
        for j in range(m):
            acc[i + 1][j + 1] = cost[i][j] + min(acc[i][j + 1], acc[i + 1][j], acc[i][j])
    acc = [row[1:] for row in acc[1:]]
    # tslearn's path: from the last cell, argmin over (diagonal, up, left), first minimum on ties.
    path = [(n - 1, m - 1)]
    while path[-1] != (0, 0):
        i, j = path[-1]
        if i == 0:
            path.append((0, j - 1))
        elif j == 0:
            path.append((i - 1, 0))
        else:
            candidates = [acc[i - 1][j - 1], acc[i - 1][j], acc[i][j - 1]]
            path.append([(i - 1, j - 1), (i - 1, j), (i, j - 1)][candidates.index(min(candidates))])
    path.reverse()
    out = [[] for _ in asr]
    has_seen = -1
    for i, j in path:
        if j > has_seen:
            out[i].append(den[j])
        has_seen = j
    return [" ".join(x) for x in out]


def random_words(rng, count, letters="ab", max_len=3):
    """Short words over a tiny alphabet (many equal costs, so many ties), with case, punctuation and unicode."""
    words = []
    for _ in range(count):
        word = "".join(rng.choice(letters) for _ in range(rng.randint(0, max_len)))
        if rng.random() < 0.2:
            word = word.upper()
        if rng.random() < 0.2:
            word = rng.choice([".", ",", "'", "-", "?!", " "]) + word
        if rng.random() < 0.2:
            word += rng.choice([".", ",", "'s", "\u2019", " ", "\u00e9", "\u0130"])
        words.append(word)
    return words


def perturbed(rng, words, letters):
    """A de-noised-looking copy: some words dropped, inserted or re-cased."""
    out = []
    for w in words:
        r = rng.random()
        if r < 0.1:
            continue
        out.append(w.capitalize() if r < 0.5 else w)
        if r > 0.9:
            out += random_words(rng, 1, letters)
    return out


# --------------------------------------------------------------------------------------------------------------
# Cleaning and splitting


def test_clean_subtitles_drops_entities_fixes_and_drops_empty_words():
    subtitles = [
        {"word": "&gt;&gt;", "time": 0.1},
        {"word": "hello", "time": 0.5},
        {"word": "nbsp;", "time": 0.6},
        {"word": "AT&T;", "time": 0.7},
        {"word": "R&D", "time": 0.8},
        {"word": "", "time": 0.9},
        {"word": "\ufeff", "time": 1.0},  # ftfy removes the BOM: empty after fixing
        {"word": "caf\u00c3\u00a9", "time": 1.1},  # mojibake of 'café'
        {"word": "rock&amp;roll", "time": 1.2},  # entity inside the word: kept, then unescaped by ftfy
        {"word": "don\u2019t", "time": 1.3, "extra": 1},
    ]
    original = json.loads(json.dumps(subtitles))
    cleaned = clean_subtitles(subtitles)
    assert [(x["word"], x["time"]) for x in cleaned] == [
        ("hello", 0.5), ("R&D", 0.8), ("caf\u00e9", 1.1), ("rock&roll", 1.2), ("don't", 1.3)]
    assert cleaned[-1]["extra"] == 1
    assert subtitles == original  # the input is not modified


def test_split_denoised_fixes_and_splits_on_single_spaces():
    denoised = [{"cleanasr": "Hello world."}, {"cleanasr": "It\u2019s  caf\u00c3\u00a9 time"}, {"cleanasr": ""},
                {"cleanasr": "end"}]
    assert split_denoised(denoised) == ["Hello", "world.", "It's", "", "caf\u00e9", "time", "", "end"]
    assert split_denoised([]) == []


def test_normalize_word_is_translate_strip_lower():
    assert normalize_word("Hello,") == "hello"
    assert normalize_word(" Don't! ") == "dont"
    assert normalize_word("- hi -") == "hi"  # punctuation goes first, then the spaces it exposed
    assert normalize_word("\u00c9t\u00e9\u2019s") == "\u00e9t\u00e9\u2019s"  # only ASCII punctuation is removed
    assert normalize_word("\u0130") == "\u0130".lower() and len(normalize_word("\u0130")) == 2


# --------------------------------------------------------------------------------------------------------------
# Edit distance


@pytest.mark.parametrize("a, b, d", [
    ("kitten", "sitting", 3), ("sitting", "kitten", 3), ("flaw", "lawn", 2), ("intention", "execution", 5),
    ("", "abc", 3), ("abc", "", 3), ("", "", 0), ("same", "same", 0), ("ab", "ba", 2), ("caf\u00e9", "cafe", 1),
    ("a" * 70, "a" * 68 + "b", 2), ("x" * 65, "y" * 66, 66),
])
def test_edit_distance_known_pairs(a, b, d):
    assert edit_distance(a, b) == d
    assert _pair_edit_distances([a], [b], np.array([0]), np.array([0]))[0] == d


def test_vectorised_edit_distance_matches_plain_dp():
    rng = random.Random(0)
    patterns, texts = [], []
    for n in [0, 1, 2, 3, 5, 8, 13, 31, 63, 64, 65, 80] + [rng.randint(0, 12) for _ in range(40)]:
        patterns.append("".join(rng.choice("abc\u00e9") for _ in range(n)))
    for n in [0, 1, 2, 7, 20, 64, 70, 100] + [rng.randint(0, 12) for _ in range(40)]:
        texts.append("".join(rng.choice("abcd") for _ in range(n)))
    pattern_ids, text_ids = (x.ravel() for x in np.meshgrid(np.arange(len(patterns)), np.arange(len(texts))))
    got = _pair_edit_distances(patterns, texts, pattern_ids, text_ids)
    want = [levenshtein(patterns[p], texts[t]) for p, t in zip(pattern_ids, text_ids)]
    assert got.tolist() == want


# --------------------------------------------------------------------------------------------------------------
# DTW alignment


def test_alignment_by_hand():
    # Normalised costs (rows i, love, pan, cakes; columns i, love, pancakes):
    # [0 4 8; 4 0 7; 3 4 5; 5 4 3]. Accumulated: [0 4 12; 4 0 7; 7 4 5; 12 8 7]. Walking back from (3,2):
    # diagonal to (2,1), up to (1,1), diagonal to (0,0). 'love' is first met by 'love', so 'pan' gets nothing.
    assert align_using_dtw(["i", "love", "pan", "cakes"], ["I", "love", "pancakes."]) == ["I", "love", "",
                                                                                          "pancakes."]
    # Costs [2 4 3; 3 1 0], accumulated [2 6 9; 5 3 3]: from (1,2) left to (1,1), then diagonal to (0,0).
    assert align_using_dtw(["gonna", "go"], ["going", "to", "go"]) == ["going", "to go"]


def test_alignment_tie_breaking_by_hand():
    # Costs [1 0 1; 0 1 0; 1 0 1], accumulated [1 1 2; 1 2 1; 2 1 2]. At (2,2) up and left tie at 1 (diagonal 2):
    # tslearn's order (diagonal, up, left) goes up to (1,2), diagonally to (0,1), then left along row 0.
    # Preferring left would give ['b', '', 'a b'] instead.
    assert align_using_dtw(["a", "b", "a"], ["b", "a", "b"]) == ["b a", "b", ""]
    # Three-way tie at (1,1) (costs [1 0; 0 1], accumulated [1 1; 1 2]): the diagonal wins.
    assert align_using_dtw(["a", "b"], ["b", "a"]) == ["b", "a"]
    # On the first row only left moves remain: every de-noised word goes to the first ASR word.
    assert align_using_dtw(["x"], ["x", "y", "z"]) == ["x y z"]
    assert align_using_dtw(["x", "y", "z"], ["x"]) == ["x", "", ""]


# (n ASR words, m de-noised words, alphabet): band radius is 32 below n = 330; beyond 2 * 32 words some cells are
# outside the band; m > n + radius is truncated; m << n forces the path through whole rows outside the band.
SIZES = ([(n, m, "ab") for n in (1, 2, 3, 5, 8) for m in (1, 2, 3, 5, 9)]
         + [(70, 70, "ab"), (100, 90, "abc"), (90, 100, "ab"), (80, 12, "ab"), (12, 80, "ab"), (20, 53, "abc"),
            (20, 52, "ab"), (40, 150, "ab"), (120, 60, "abcdef"), (100, 130, "ab"), (340, 360, "abcd")])


@pytest.mark.parametrize("n, m, letters", SIZES)
@pytest.mark.parametrize("related", [False, True])
def test_fast_alignment_equals_reference(n, m, letters, related):
    rng = random.Random(f"{n}/{m}/{letters}/{related}")
    asr = random_words(rng, n, letters)
    den = (perturbed(rng, asr, letters) + random_words(rng, m, letters))[:m] if related else random_words(
        rng, m, letters)
    den = den or ["x"]
    assert align_using_dtw(asr, den) == reference_align(asr, den)


@pytest.mark.parametrize("seed", range(30))
def test_fast_alignment_equals_reference_random_sizes(seed):
    rng = random.Random(seed)
    n, m = rng.randint(1, 110), rng.randint(1, 160)
    letters = rng.choice(["ab", "abc", "abcdefgh"])
    asr = random_words(rng, n, letters, max_len=rng.randint(1, 6))
    den = random_words(rng, m, letters, max_len=rng.randint(1, 6))
    assert align_using_dtw(asr, den) == reference_align(asr, den)


def test_out_of_band_cells_cost_9999():
    # 40 ASR words, radius 32. Column 0 ('a', cost 0) is in the band for rows 0..32, column 1 (cost 2000) for rows
    # 0..33; everything else costs 9999. Crossing to column 1 at row 33 costs 2000 + 6 * 9999, one row later
    # 7 * 9999, so row 33 takes the long word. (Were the outside cost below 2000, a later row would.)
    long_word = "b" * 2000
    assert align_using_dtw(["a"] * 40, ["a", long_word]) == ["a"] + [""] * 32 + [long_word] + [""] * 6


def test_every_kept_denoised_word_is_attached_once_in_order():
    rng = random.Random(1)
    asr = ["w%d" % i for i in range(20)]
    den = ["d%d" % i for i in range(200)]  # longer than len(asr) + radius = 52: cut to 52 words
    out = align_using_dtw(asr, den)
    assert len(out) == 20
    assert " ".join(w for w in out if w) == " ".join(den[:52])
    den = [w.upper() + "." for w in asr[:15]] + ["extra"] * rng.randint(1, 30)  # not cut: all words attached
    out = align_using_dtw(asr, den)
    assert " ".join(w for w in out if w) == " ".join(den)
    assert out[:15] == den[:15]


def test_alignment_rejects_empty_inputs():
    with pytest.raises(ValueError):
        align_using_dtw([], ["a"])
    with pytest.raises(ValueError):
        align_using_dtw(["a"], [])


# --------------------------------------------------------------------------------------------------------------
# Window text


def test_text_between_is_strict_and_keeps_trailing_space():
    t = Transcript(np.array([1.0, 2.0, 3.0]), ["a", "b", "c"])
    assert t.text_between(1.0, 3.0) == "b "
    assert t.text_between(0.5, 3.5) == "a b c "
    assert t.text_between(0.999, 3.001) == "a b c "
    assert t.text_between(2.0, 2.0) == ""
    assert t.text_between(3.0, 1.0) == ""
    assert t.text_between(5.0, 9.0) == ""
    assert Transcript(np.array([1.0, 2.0]), ["", "b"]).text_between(0, 3) == " b "


def test_text_between_keeps_file_order_for_unsorted_times():
    t = Transcript([2.0, 1.0, 3.0, 0.5], ["x", "y", "z", "w"])
    assert t.times.dtype == np.float64
    assert t.text_between(0.75, 2.5) == "x y "
    assert t.text_between(0.0, 2.5) == "x y w "


def test_transcript_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        Transcript(np.array([1.0, 2.0]), ["a"])


# --------------------------------------------------------------------------------------------------------------
# Annotations and cache


def annotation(**changes):
    ann = {
        "info": {"duration": 12.75},
        "subtitles": [{"word": "&gt;&gt;", "time": 0.2}, {"word": "i", "time": 1.0}, {"word": "love", "time": 2.0},
                      {"word": "pan", "time": 3.0}, {"word": "cakes", "time": 4.0}],
        "denoised": [{"cleanasr": "I love"}, {"cleanasr": "pancakes."}],
    }
    ann.update(changes)
    return ann


def write(path, obj):
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj, encoding="utf-8")
    return path


def test_align_annotation_runs_the_official_pipeline():
    t = align_annotation(annotation())
    assert t.times.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert t.words == ["I", "love", "", "pancakes."]
    assert t.text_between(1.5, 4.5) == "love  pancakes. "


BAD_ANNOTATIONS = [
    ({"info": {}}, "info.duration"),
    ({"info": {"duration": "12"}}, "info.duration"),
    ({"info": {"duration": float("nan")}}, "info.duration"),
    ({"info": None}, "info.duration"),
    ({"subtitles": None}, "subtitles"),
    ({"subtitles": [{"time": 1.0}]}, "word"),
    ({"subtitles": [{"word": 3, "time": 1.0}]}, "word"),
    ({"subtitles": [{"word": "hi"}]}, "time"),
    ({"subtitles": [{"word": "hi", "time": "soon"}]}, "time"),
    ({"subtitles": [{"word": "&gt;", "time": 1.0}]}, "subtitles"),
    ({"denoised": {"cleanasr": "x"}}, "denoised"),
    ({"denoised": [{"text": "x"}]}, "cleanasr"),
    ({"denoised": []}, "denoised"),
]


@pytest.mark.parametrize("changes, key", BAD_ANNOTATIONS)
def test_malformed_annotations_name_file_and_key(tmp_path, changes, key):
    path = write(tmp_path / "vid_123.json", annotation(**changes))
    with pytest.raises(AnnotationError, match=key) as info:
        load_transcript(path)
    assert "vid_123.json" in str(info.value)
    with pytest.raises(AnnotationError, match="vid_123.json"):
        write_alignment_cache(path)
    assert not alignment_cache_path(path).exists()


@pytest.mark.parametrize("missing", ["subtitles", "denoised", "info"])
def test_missing_top_level_keys(tmp_path, missing):
    ann = annotation()
    del ann[missing]
    path = write(tmp_path / "vid_9.json", ann)
    with pytest.raises(AnnotationError, match=missing) as info:
        load_transcript(path)
    assert "vid_9.json" in str(info.value)


def test_invalid_json_and_default_source(tmp_path):
    with pytest.raises(AnnotationError, match="vid_1.json"):
        load_transcript(write(tmp_path / "vid_1.json", "{not json"))
    with pytest.raises(AnnotationError, match="<annotation>"):
        align_annotation({"info": {"duration": 1}})
    with pytest.raises(AnnotationError, match="JSON object"):
        align_annotation([1, 2])


def test_cache_path_is_next_to_the_annotation(tmp_path):
    assert alignment_cache_path(tmp_path / "abc.json") == tmp_path / "abc.aligned.json"
    assert alignment_cache_path("a/b/x.y.json") == alignment_cache_path("a/b/x.y.json").parent / "x.y.aligned.json"


def test_on_the_fly_fallback_writes_nothing(tmp_path):
    path = write(tmp_path / "vid.json", annotation())
    t, duration = load_transcript(path)
    assert duration == 12.75 and isinstance(duration, float)
    assert t.words == ["I", "love", "", "pancakes."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vid.json"]


def test_cache_round_trip(tmp_path):
    rng = random.Random(3)
    words = random_words(rng, 150, "abcdef", max_len=5)
    ann = annotation(subtitles=[{"word": w, "time": 0.1 * i + rng.random() / 7} for i, w in enumerate(words)],
                     denoised=[{"cleanasr": " ".join(perturbed(rng, words, "abcdef"))}])
    path = write(tmp_path / "vid.json", ann)
    written, written_duration = write_alignment_cache(path)
    assert written_duration == 12.75
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vid.aligned.json", "vid.json"]  # no temporary left
    payload = json.loads(alignment_cache_path(path).read_text(encoding="utf-8"))
    assert payload["version"] == CACHE_VERSION and set(payload) >= {"times", "words"}
    fresh = align_annotation(json.loads(path.read_text(encoding="utf-8")))
    loaded, duration = load_transcript(path)
    assert duration == 12.75
    for t in (written, loaded):
        assert t.times.dtype == np.float64 and np.array_equal(t.times, fresh.times)
        assert t.words == fresh.words
    for start in np.arange(0, 16, 0.7):
        assert loaded.text_between(start, start + 3.3) == fresh.text_between(start, start + 3.3)


def test_fresh_cache_is_used(tmp_path):
    path = write(tmp_path / "vid.json", annotation())
    write_alignment_cache(path)
    cache = alignment_cache_path(path)
    payload = json.loads(cache.read_text(encoding="utf-8"))
    payload["words"] = ["w", "x", "y", "z"]
    payload["duration"] = 99.5
    write(cache, payload)
    t, duration = load_transcript(path)
    assert t.words == ["w", "x", "y", "z"] and duration == 99.5


def test_stale_cache_is_ignored(tmp_path):
    path = write(tmp_path / "vid.json", annotation())
    write_alignment_cache(path)
    cache = alignment_cache_path(path)
    write(path, annotation(denoised=[{"cleanasr": "eye love pan cakes"}], info={"duration": 7}))
    stamp = cache.stat().st_mtime_ns
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    t, duration = load_transcript(path)
    assert t.words == ["eye", "love", "pan", "cakes"] and duration == 7.0
    os.utime(cache, ns=(stamp + 10**9, stamp + 10**9))  # same age as the annotation: fresh again
    assert load_transcript(path)[0].words == ["I", "love", "", "pancakes."]


def test_cache_of_another_format_version_is_ignored(tmp_path):
    path = write(tmp_path / "vid.json", annotation())
    write_alignment_cache(path)
    cache = alignment_cache_path(path)
    payload = json.loads(cache.read_text(encoding="utf-8"))
    write(cache, dict(payload, version=CACHE_VERSION + 1, words=["w", "x", "y", "z"]))
    assert load_transcript(path)[0].words == ["I", "love", "", "pancakes."]


@pytest.mark.parametrize("content", [
    "{truncated", "[1, 2]",
    {"version": CACHE_VERSION, "duration": 1.0, "times": [1.0]},
    {"version": CACHE_VERSION, "duration": 1.0, "times": [1.0, 2.0], "words": ["a"]},
    {"version": CACHE_VERSION, "duration": 1.0, "times": ["a"], "words": ["a"]},
    {"version": CACHE_VERSION, "duration": 1.0, "times": [[1.0]], "words": ["a"]},
    {"version": CACHE_VERSION, "duration": 1.0, "times": [1.0], "words": [3]},
    {"version": CACHE_VERSION, "duration": 1.0, "times": [1.0], "words": "a"},
    {"version": CACHE_VERSION, "times": [1.0], "words": ["a"]},
])
def test_corrupt_cache_is_an_error(tmp_path, content):
    path = write(tmp_path / "vid.json", annotation())
    write_alignment_cache(path)
    cache = alignment_cache_path(path)
    stamp = cache.stat().st_mtime_ns
    write(cache, content)
    os.utime(cache, ns=(stamp, stamp))
    with pytest.raises(AnnotationError, match="vid.aligned.json"):
        load_transcript(path)
