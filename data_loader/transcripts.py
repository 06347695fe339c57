"""YT-Temporal transcripts: ASR cleaning, DTW alignment to the de-noised text, per-video cache, window text.

The official loader (TVTS ``v1/base/base_dataset_yt.py``, inherited from All-in-One, which took it from MERLOT)
rebuilds this on every ``__getitem__``: it cleans the word-level ASR, aligns it to the de-noised ASR with
``tslearn.metrics.dtw_path_from_metric`` over an edit-distance matrix, and then concatenates the aligned de-noised
forms of the words inside a time window (spec 3.1, 3.2). This module gives the same result, but:

* the DTW is computed here in numpy, one vectorised step per ASR word (no tslearn), with tslearn's recursion and
  backtracking tie-breaking, so the path is the same;
* edit distances are computed once per distinct word pair, with a bit-parallel kernel vectorised over the pairs;
* the alignment is deterministic, so it is cached next to the annotation (spec 7.2 item 15). The on-the-fly
  path is the fallback.
"""
import json
import math
import string
from dataclasses import dataclass
from pathlib import Path

import ftfy
import numpy as np

from utils.io import atomic_path

CACHE_VERSION = 1
# Cost of a (ASR, de-noised) pair outside the band. The cell is still a legal DTW cell (tslearn is called with
# no global constraint), just an expensive one.
OUTSIDE_BAND_COST = 9999
_PUNCTUATION = str.maketrans("", "", string.punctuation)  # ASCII punctuation only, as upstream
_WORD_BITS = 64  # the bit-parallel kernel holds one word's characters in one uint64


class AnnotationError(ValueError):
    """An annotation or alignment cache that cannot be used; the message names the file and the bad key."""


# --------------------------------------------------------------------------------------------------------------
# Word cleaning


def clean_subtitles(subtitles):
    """Word-level ASR without HTML-entity debris ('&gt;&gt;', 'nbsp;'), ftfy-fixed, without empty words.

    Returns new dicts (the input is not modified) with the fixed ``word`` and the other keys, ``time`` included.
    """
    cleaned = []
    for item in subtitles:
        word = item["word"]
        if word.startswith("&") or word.endswith(";"):
            continue
        word = ftfy.fix_text(word)
        if word:
            cleaned.append({**item, "word": word})
    return cleaned


def split_denoised(denoised):
    """The de-noised words: every ``cleanasr`` chunk ftfy-fixed and split on single spaces, in order.

    Splitting on ' ' (not on whitespace runs) keeps the empty words between double spaces, as upstream does; they
    take part in the alignment.
    """
    words = []
    for chunk in denoised:
        words += ftfy.fix_text(chunk["cleanasr"]).split(" ")
    return words


def normalize_word(word):
    """The form compared by the edit distance: ASCII punctuation removed, then stripped, then lower-cased."""
    return word.translate(_PUNCTUATION).strip().lower()


def edit_distance(a, b):
    """Levenshtein distance (unit insert, delete, substitute) between two strings, by code point.

    Same value as ``editdistance.eval`` used upstream. The alignment uses a vectorised kernel; this plain version
    handles the words that are too long for it.
    """
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _pair_edit_distances(patterns, texts, pattern_ids, text_ids):
    """Edit distance of ``patterns[pattern_ids[k]]`` and ``texts[text_ids[k]]`` for every k, as int64.

    Uses Myers' bit-parallel algorithm in Hyyrö's formulation for the global distance, vectorised over the pairs:
    one step per character of the text, each step a few numpy operations on all pairs still reading characters.
    Patterns longer than 64 characters (practically absent in ASR) go to :func:`edit_distance`.
    """
    pattern_len = np.array([len(p) for p in patterns], dtype=np.int64)[pattern_ids]
    text_len = np.array([len(t) for t in texts], dtype=np.int64)[text_ids]
    out = np.where(pattern_len == 0, text_len, 0)
    for k in np.flatnonzero(pattern_len > _WORD_BITS):
        out[k] = edit_distance(patterns[pattern_ids[k]], texts[text_ids[k]])
    todo = np.flatnonzero((pattern_len > 0) & (pattern_len <= _WORD_BITS))
    if len(todo) == 0:
        return out
    # Longest texts first: at step j the pairs still reading a character are a prefix of this order.
    todo = todo[np.argsort(-text_len[todo], kind="stable")]

    alphabet = {}
    for word in (*patterns, *texts):
        for char in word:
            alphabet.setdefault(char, len(alphabet))
    padding = len(alphabet)  # a column of the match table that matches nothing
    match = np.zeros((len(patterns), padding + 1), dtype=np.uint64)  # bit i set: pattern[i] is that character
    for p, word in enumerate(patterns):
        if len(word) <= _WORD_BITS:
            masks = {}
            for i, char in enumerate(word):
                masks[alphabet[char]] = masks.get(alphabet[char], 0) | (1 << i)
            match[p, list(masks)] = list(masks.values())
    longest = max(len(t) for t in texts)
    text_chars = np.full((len(texts), max(longest, 1)), padding, dtype=np.int64)
    for t, word in enumerate(texts):
        text_chars[t, :len(word)] = [alphabet[char] for char in word]

    p_ids, t_ids, t_len = pattern_ids[todo], text_ids[todo], text_len[todo]
    last_bit = np.left_shift(np.uint64(1), (pattern_len[todo] - 1).astype(np.uint64))
    plus_v = np.full(len(todo), np.iinfo(np.uint64).max, dtype=np.uint64)  # vertical deltas +1 (column 0: i)
    minus_v = np.zeros(len(todo), dtype=np.uint64)
    score = pattern_len[todo].copy()  # D[m, 0]; walks along the last row
    one = np.uint64(1)
    for j in range(int(t_len[0])):
        n = int(np.count_nonzero(t_len > j))
        eq = match[p_ids[:n], text_chars[t_ids[:n], j]]
        pv, mv = plus_v[:n], minus_v[:n]
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        plus_h = mv | ~(xh | pv)
        minus_h = pv & xh
        score[:n] += (plus_h & last_bit[:n]) != 0
        score[:n] -= (minus_h & last_bit[:n]) != 0
        plus_h = (plus_h << one) | one  # row 0 is D[0, j] = j: its horizontal delta is always +1
        minus_h = minus_h << one
        plus_v[:n] = minus_h | ~(xv | plus_h)
        minus_v[:n] = plus_h & xv
    out[todo] = score
    return out


# --------------------------------------------------------------------------------------------------------------
# DTW alignment


def _intern(words):
    """Integer ids of the words and the list of distinct words, so each distinct pair is compared once."""
    index = {}
    ids = np.fromiter((index.setdefault(w, len(index)) for w in words), dtype=np.int64, count=len(words))
    return ids, list(index)


def align_using_dtw(asr_words, denoised_words):
    """One de-noised surface form per ASR word (possibly ''), exactly as the official ``align_using_dtw``.

    Official rule: radius r = int(max(0.1 * len(asr), 32)); if the de-noised list is longer than the ASR it is
    cut to len(asr) + r. The cost of ASR word a and de-noised word o is the edit distance of their normalised
    forms when a - r <= o < a + r, else 9999. tslearn's DTW (no constraint) gives the path; walking it in order,
    each de-noised word is attached to the ASR word it first meets, and each ASR word gets its attached words
    joined by spaces.
    """
    n = len(asr_words)
    if n == 0 or len(denoised_words) == 0:
        # Upstream fails here too (pandas KeyError without ASR words; tslearn cannot walk an n x 0 matrix).
        raise ValueError(f"cannot align {n} ASR words with {len(denoised_words)} de-noised words")
    radius = int(max(n * 0.1, 32))
    if len(denoised_words) > n:
        denoised_words = denoised_words[:n + radius]
    m = len(denoised_words)

    # Band cells, row by row: row a covers columns [lo[a], hi[a]) and starts at offset start[a] of the flat arrays.
    rows = np.arange(n)
    lo = np.maximum(rows - radius, 0)
    hi = np.minimum(rows + radius, m)
    width = np.maximum(hi - lo, 0)
    start = np.cumsum(width) - width
    cell_row = np.repeat(rows, width)
    cell_col = np.repeat(lo - start, width) + np.arange(int(width.sum()))
    asr_ids, asr_vocab = _intern([normalize_word(w) for w in asr_words])
    den_ids, den_vocab = _intern([normalize_word(w) for w in denoised_words])
    pairs, cell_pair = np.unique(asr_ids[cell_row] * len(den_vocab) + den_ids[cell_col], return_inverse=True)
    band_cost = _pair_edit_distances(asr_vocab, den_vocab, pairs // len(den_vocab), pairs % len(den_vocab))
    band_cost = band_cost[cell_pair.reshape(-1)]

    def cost_row(a):
        row = np.full(m, OUTSIDE_BAND_COST, dtype=np.int64)
        row[lo[a]:hi[a]] = band_cost[start[a]:start[a] + width[a]]
        return row

    # Accumulated cost D[a, o] = cost[a, o] + min(D[a-1, o-1], D[a-1, o], D[a, o-1]), with D[-1, -1] = 0 and the
    # rest of row/column -1 infinite, as tslearn. Costs are non-negative integers, so along a row
    # D[a, o] = P[o] + min_{k <= o} (E[k] + cost[a, k] - P[k]), with P the row's running cost sum and
    # E[k] = min(D[a-1, k-1], D[a-1, k]): one cumulative min per row instead of a loop over columns. int64 is
    # exact, like tslearn's float64 sums of small integers.
    # The backtracking step is decided here: tslearn's argmin over (diagonal, up, left) at each cell, first
    # minimum winning ties. 0 = diagonal, 1 = up, 2 = left.
    step = np.zeros((n, m), dtype=np.int8)
    previous = np.cumsum(cost_row(0))
    enter = np.empty(m, dtype=np.int64)
    for a in range(1, n):
        cost = cost_row(a)
        enter[0] = previous[0]
        np.minimum(previous[:-1], previous[1:], out=enter[1:])
        running = np.cumsum(cost)
        current = running + np.minimum.accumulate(enter + cost - running)
        diagonal, up, left = previous[:-1], previous[1:], current[:-1]
        step[a, 1:] = np.where((diagonal <= up) & (diagonal <= left), 0, np.where(up <= left, 1, 2))
        previous = current

    # Walk back from the last cell; on the first row only left moves exist, on the first column only up moves.
    a, o = n - 1, m - 1
    path = [(a, o)]
    while a or o:
        if a == 0:
            o -= 1
        elif o == 0:
            a -= 1
        else:
            move = step[a, o]
            a, o = (a - 1, o - 1) if move == 0 else (a - 1, o) if move == 1 else (a, o - 1)
        path.append((a, o))

    attached = [[] for _ in range(n)]
    seen = -1
    for a, o in reversed(path):
        if o > seen:
            attached[a].append(denoised_words[o])
        seen = o
    return [" ".join(words) for words in attached]


# --------------------------------------------------------------------------------------------------------------
# Transcripts


@dataclass(eq=False)
class Transcript:
    """One video's ASR word times (float64, file order) and the aligned de-noised form of each word."""

    times: np.ndarray
    words: list[str]

    def __post_init__(self):
        self.times = np.asarray(self.times, dtype=np.float64)
        if self.times.ndim != 1 or len(self.times) != len(self.words):
            raise ValueError(f"{self.times.shape} times for {len(self.words)} words")

    def text_between(self, start, end):
        """The words with start < time < end (strict, file order), each followed by one space, as upstream.

        The trailing space is kept and the result may be ''; upstream does not reject short texts either.
        """
        inside = np.flatnonzero((self.times > start) & (self.times < end))
        return "".join(self.words[k] + " " for k in inside)


def _duration(annotation, source):
    info = annotation.get("info")
    if not isinstance(info, dict) or "duration" not in info:
        raise AnnotationError(f"{source}: missing key 'info.duration'")
    duration = info["duration"]
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
        raise AnnotationError(f"{source}: 'info.duration' is not a finite number: {duration!r}")
    return float(duration)


def _list_of_dicts(annotation, key, field, source):
    """``annotation[key]`` checked to be a list of dicts whose ``field`` is a string."""
    if key not in annotation:
        raise AnnotationError(f"{source}: missing key '{key}'")
    items = annotation[key]
    if not isinstance(items, list):
        raise AnnotationError(f"{source}: '{key}' is not a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(field), str):
            raise AnnotationError(f"{source}: {key}[{i}] has no string '{field}'")
    return items


def align_annotation(annotation, source="<annotation>"):
    """The official transcript pipeline on a parsed YT-Temporal annotation (spec 3.1), as a :class:`Transcript`.

    Anything upstream would crash on (missing keys, bad types, nothing left to align) is an
    :class:`AnnotationError` naming ``source``.
    """
    if not isinstance(annotation, dict):
        raise AnnotationError(f"{source}: the annotation is not a JSON object")
    _duration(annotation, source)  # upstream reads it first; a video without it is unusable
    kept = clean_subtitles(_list_of_dicts(annotation, "subtitles", "word", source))
    times = []
    for k, item in enumerate(kept):
        try:
            times.append(float(item["time"]))
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(f"{source}: subtitle word {k} after cleaning ({item['word']!r}) has no numeric "
                                  f"'time'") from None
    denoised = split_denoised(_list_of_dicts(annotation, "denoised", "cleanasr", source))
    if not kept:
        raise AnnotationError(f"{source}: no 'subtitles' word is left after cleaning")
    if not denoised:
        raise AnnotationError(f"{source}: 'denoised' is empty")
    return Transcript(np.array(times), align_using_dtw([item["word"] for item in kept], denoised))


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: not valid JSON ({e})") from None


def alignment_cache_path(annotation_path):
    """Where the alignment of ``<dir>/<id>.json`` is cached: ``<dir>/<id>.aligned.json``."""
    return Path(annotation_path).with_suffix(".aligned.json")


def write_alignment_cache(annotation_path):
    """Align one annotation and write its cache atomically.

    Returns (transcript, ``info.duration``) as :func:`load_transcript` does, so that a caller checking the pair
    need not parse the annotation a second time.
    """
    path = Path(annotation_path)
    annotation = _read_json(path)
    transcript = align_annotation(annotation, str(path))
    duration = _duration(annotation, str(path))
    payload = {"version": CACHE_VERSION, "duration": duration, "times": transcript.times.tolist(),
               "words": transcript.words}
    with atomic_path(alignment_cache_path(path)) as temporary:
        with open(temporary, "x", encoding="utf-8") as f:
            json.dump(payload, f)
    return transcript, duration


def _read_cache(cache):
    """The cached (transcript, duration), or None when the cache was written in another format version."""
    return _cached(_read_json(cache), cache)


def _parse_json(data, source):
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{source}: not valid JSON ({e})") from None


def transcript_from_data(annotation, cache=None, source="<annotation>"):
    """(transcript, duration) from the bytes of an annotation and, when given, of its alignment cache (a shard
    member's copies of the two files); as `load_transcript`, a cache of another format version is ignored."""
    if cache is not None:
        cached = _cached(_parse_json(cache, f"{source} (alignment cache)"), f"{source} (alignment cache)")
        if cached is not None:
            return cached
    parsed = _parse_json(annotation, source)
    return align_annotation(parsed, source), _duration(parsed, source)


def annotation_duration(annotation, source="<annotation>"):
    """`info.duration` of an annotation's bytes (a shard member's copy)."""
    return _duration(_parse_json(annotation, source), source)


def _cached(payload, cache):
    """(transcript, duration) of a parsed cache, or None for another format version."""
    if not isinstance(payload, dict):
        raise AnnotationError(f"{cache}: corrupt alignment cache (not a JSON object)")
    if payload.get("version") != CACHE_VERSION:
        return None
    words, duration = payload.get("words"), payload.get("duration")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise AnnotationError(f"{cache}: corrupt alignment cache (bad 'words')")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise AnnotationError(f"{cache}: corrupt alignment cache (bad 'duration')")
    try:
        return Transcript(payload["times"], words), float(duration)
    except (KeyError, TypeError, ValueError) as e:
        raise AnnotationError(f"{cache}: corrupt alignment cache (bad 'times': {e})") from None


def load_transcript(annotation_path):
    """(transcript, ``info.duration`` as a float) of one video.

    Reads the alignment cache when it exists, is not older than the annotation and has the current format
    version; otherwise aligns on the fly without writing anything. A corrupt cache is an error, not a silent
    fallback.
    """
    path = Path(annotation_path)
    cache = alignment_cache_path(path)
    try:
        fresh = cache.stat().st_mtime_ns >= path.stat().st_mtime_ns
    except FileNotFoundError:
        fresh = False
    if fresh:
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    annotation = _read_json(path)
    return align_annotation(annotation, str(path)), _duration(annotation, str(path))
