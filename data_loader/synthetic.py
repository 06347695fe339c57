"""Scripted synthetic corpus: the project's embedded default data.

Real YT-Temporal and Something-Something-v2 cannot be downloaded here, so this module writes a small stand-in in
exactly their on-disk layouts, deterministically from a seed, in a minute or two on 2 CPU cores:

* ``YTTemporal/`` + ``meta_data/``: narrated H.264 videos with word-level ASR (``subtitles``) and its cleaned-up
  version (``denoised``), as the official stage-1 loader reads them.
* ``ssv2/``: labelled clips whose classes are motions, in the mmaction list format.
* ``tokenizer/``: an offline lower-casing WordPiece tokenizer covering every word the generator can write.

The narrated videos come in three kinds (``kind``). **motion**: the whole frame is one hard-edged two-colour pattern
that moves, in segments of 3-5 s, each an i.i.d. draw of nine motions (still, four pans, zoom in and out, two
rotations), and the narrator names each segment's motion once, at one second inside it, and never anything a single
frame shows but the video's two colours (the same in every window). Ordering the transcript windows therefore needs
what changes across the frames of each window: the same temporal information the labelled clips test. The labelled
clips show the eight motions in appearances the narrated videos never use (four other colours, patterns of shorter
waves, a still shape in front), so a transfer is a transfer and not a lookup. The demo does not use this kind yet:
the tiny model has not learned to sort it in the demo's budget (docs/benchmarks.md). **objects**: the same segments
and narration, but the motion is one object's (a square, triangle or bar on a still backdrop gliding round the
frame, which wraps, or growing, shrinking, turning), so that a glide moves it by about a quarter of the frame
between two sampled frames; the narrator names its shape, never its colour, and the labelled clips move other shapes
in other colours on other backdrops. The demo does not use it either (docs/benchmarks.md, design O1). **shots** (the
default, the demo's, and the style of the zero-shot evaluation sets below): every second is an independent "shot" of
one large coloured shape at a named position, static or moving, and the narrator says one short phrase describing
exactly that shot, so the order of the windows is recoverable by matching each window's phrases to single frames (a
shot lasts one second and the official sampler sees about one frame a second, so its motion goes unseen).

Whatever the kind, no phrase depends on when it is said, so text alone cannot tell the order; a phrase that would
fall on both sides of the 1 s gap between two windows would (adjacent windows sharing it), hence one-second shots
and motions named once. Videos last whole seconds: the official loader estimates the frame rate as frame count /
int(duration), which on a fractional duration drifts the sampled frames by up to a second against the transcript
times. The corpus has 1,000 videos, and the 900 training videos are each seen a few dozen times in the demo. On an
earlier shots design (300 videos, colours from a per-video palette of 6 of 10, smaller objects; never landed) the
sort head learned each training video's transcripts by heart instead (56% sort accuracy on training clips, 22% on
validation clips, with ideal text features). See docs/benchmarks.md for what the demo learns, and for the motion
designs tried.

Zero-shot evaluation sets (``generate_eval_sets``, CLI ``--eval-sets``) are small stand-ins of TVTSv2's, in the official
layouts under ``data/`` + ``meta_data/``: MSR-VTT (jsfusion 1k-A cut), DiDeMo and LSMDC retrieval, HMDB-51, UCF-101
and Kinetics-400 recognition, and SSV2 multiple choice. Their clips are shot-style videos of 3-4 s like the narrated
ones, and their captions are the clean sentences the narrator would say about those shots. The recognition classes
are "<colour> <shape>" appearances, with as many training clips as test clips (the training lists, for the linear
probe). The choices are drawn from streams the corpus does not use, so the corpus stays
as it is.
"""
import argparse
import json
import multiprocessing
import os
import pickle
import re
import string
import time

import av
import numpy as np

from data_loader.splits import write_derived_split

DESIGN = 4  # written to corpus.json; bumped when the same seed would write different content (scripts/demo.sh)
FPS = 8
FRAME_SIZE = (80, 64)  # (width, height): non-square, both even for yuv420p
MIN_SECONDS, MAX_SECONDS = 26, 40  # the official sampler needs int(duration) >= 24 for an unclipped window
NUM_SUBSETS = 3
OBJECT_SIZE = 0.85  # of the frame height, in the narrated videos

COLORS = {  # far apart (L1 >= 100) and from the grey backdrops, so they survive 4:2:0 chroma and a 32 px crop
    "red": (215, 40, 40),
    "orange": (240, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 220),
    "purple": (150, 60, 200),
    "pink": (245, 120, 190),
    "cyan": (40, 210, 220),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
BACKGROUNDS = ((92, 92, 96), (124, 122, 118), (158, 156, 150))  # low-saturation greys, far from every colour
SHAPE_WORDS = {  # the first word is the shape's name; the others are synonyms the narrator may use
    "square": ("square", "box", "block"),
    "circle": ("circle", "ball", "disc"),
    "triangle": ("triangle",),
    "bar": ("bar", "stripe"),
}
POSITIONS = {"left": (0.3, 0.5), "right": (0.7, 0.5), "top": (0.5, 0.3), "bottom": (0.5, 0.7), "centre": (0.5, 0.5)}
POSITION_PHRASES = {
    "left": ("on the left", "to the left", "on the left side"),
    "right": ("on the right", "to the right", "on the right side"),
    "top": ("at the top", "near the top", "up top"),
    "bottom": ("at the bottom", "near the bottom", "down below"),
    "centre": ("in the middle", "in the centre", "in the center"),
}
# A motion moves (x offset, y offset, scale) linearly from its first state to its second; offsets are in units of
# the travel distance. Pairs are exact time reversals of each other, so a single frame cannot tell them apart.
MOTIONS = {
    "static": ((0, 0, 1.0), (0, 0, 1.0)),
    "left_to_right": ((-1, 0, 1.0), (1, 0, 1.0)),
    "right_to_left": ((1, 0, 1.0), (-1, 0, 1.0)),
    "top_to_bottom": ((0, -1, 1.0), (0, 1, 1.0)),
    "bottom_to_top": ((0, 1, 1.0), (0, -1, 1.0)),
    "appearing": ((0, 0, 0.0), (0, 0, 1.0)),
    "disappearing": ((0, 0, 1.0), (0, 0, 0.0)),
    "towards": ((0, 0, 0.6), (0, 0, 1.3)),
    "away": ((0, 0, 1.3), (0, 0, 0.6)),
}
MOTION_PHRASES = {
    "static": (),
    "left_to_right": ("moving from left to right", "moving to the right", "sliding right"),
    "right_to_left": ("moving from right to left", "moving to the left", "sliding left"),
    "top_to_bottom": ("moving from top to bottom", "moving down", "going down"),
    "bottom_to_top": ("moving from bottom to top", "moving up", "going up"),
    "appearing": ("appearing", "coming into view"),
    "disappearing": ("disappearing", "vanishing"),
    "towards": ("moving towards the camera", "coming closer", "getting bigger"),
    "away": ("moving away from the camera", "going away", "getting smaller"),
}
STATIC_SHARE = 0.3  # the other shots split the rest evenly between the eight motions
LEADS = ("now", "here", "and", "so", "okay", "okay so", "we see", "here is", "there is", "this is",
         "you can see", "look at", "and here is")
# How often a phrase has a lead-in, a determiner, names the motion and the position: about 4 words a second, a
# brisk but real speaking rate, so a 5 s window stays well under the 50-token cap.
P_LEAD, P_DETERMINER, P_MOTION, P_POSITION = 0.1, 0.3, 0.5, 0.7
INTERJECTIONS = ("now", "so", "okay", "okay so")  # leads that a comma may follow
DETERMINERS = ("the", "a")
# Clean-up differences between the raw ASR and the denoised text. Misspellings are ASR-style (homophones, slips);
# only short function words are dropped, so every second's raw words still name its colour and shape.
MISSPELLINGS = {"red": "read", "blue": "blew", "right": "write", "circle": "circel", "triangle": "triangel",
                "square": "squair", "purple": "purpel", "yellow": "yello", "middle": "midle", "camera": "camra",
                "disc": "disk"}
DROPPABLE = frozenset({"the", "a", "and", "so", "now", "here", "is", "at", "on", "in", "to", "okay"})
ASR_INSERTIONS = ("um", "uh", "[music]", "&gt;&gt;", "gt;", "&amp;")  # the official cleaner drops '&…' and '…;'
P_MISSPELL, P_DROP, P_REPEAT, P_INSERT = 0.05, 0.04, 0.02, 0.08

# The "motion" kind: the whole frame is one hard-edged two-colour pattern that moves, and the narrator names each
# segment's motion once and nothing that a single frame shows but the colours. A motion is a per-second change of
# the screen transform p = centre + offset + scale * R(angle) q of the pattern's plane q; every pixel moves as named.
def _motion_table(pan_x, pan_y, zoom, turn):
    """The nine motions, name -> a second's (dx, dy) px of the 80x64 frame, log-scale, angle (rad, + is clockwise on
    screen), at the given speeds."""
    return {"static": ((0, 0), 0.0, 0.0), "left": ((-pan_x, 0), 0.0, 0.0), "right": ((pan_x, 0), 0.0, 0.0),
            "up": ((0, -pan_y), 0.0, 0.0), "down": ((0, pan_y), 0.0, 0.0), "closer": ((0, 0), zoom, 0.0),
            "away": ((0, 0), -zoom, 0.0), "clockwise": ((0, 0), 0.0, turn), "anticlockwise": ((0, 0), 0.0, -turn)}


FIELD_MOTIONS = _motion_table(9, 9, 0.22, 0.22)
FIELD_PHRASES = {
    "static": ("not moving", "at rest", "motionless"),
    "left": ("moving left", "sliding to the left", "going left"),
    "right": ("moving right", "sliding to the right", "going right"),
    "up": ("moving up", "sliding up", "going up"),
    "down": ("moving down", "sliding down", "going down"),
    "closer": ("coming closer", "getting bigger", "growing"),
    "away": ("going away", "getting smaller", "shrinking"),
    "clockwise": ("turning clockwise", "spinning clockwise", "rotating clockwise"),
    "anticlockwise": ("turning anticlockwise", "spinning counterclockwise", "rotating anticlockwise"),
}
FIELD_SUBJECTS = ("the pattern", "the picture", "everything", "it", "the scene")
FIELD_STATIC_SHARE = 0.1  # the other segments split the rest evenly between the eight motions
MAX_LOG_SCALE = 1.2  # zooming further in (out) is not drawn beyond this log-scale, so the pattern keeps its detail
# A motion lasts 3-5 s, so that the official sampler (about a frame a second) sees it in two frames or more, and is
# named once, at one second inside it: a motion that straddles the gap between two transcript windows is named in
# at most one of them, so adjacent windows share no phrase that would tell their order without the video.
MOVE_SECONDS = (3, 4, 5)
# Appearances: the narrated videos use six colours and patterns of long waves; the labelled clips use the four other
# colours and patterns of shorter waves with a still shape in front, so a transfer is a transfer.
PRETRAIN_COLORS = ("red", "yellow", "green", "blue", "white", "black")
CLIP_COLORS = ("orange", "purple", "pink", "cyan")
# Wavelengths are long against the motion between two sampled frames of a narrated video (about 11 px), so that a
# pattern rarely moves by half a wave between them and seems to move the other way.
PATTERN_WAVES = {"narrated": (40.0, 80.0), "clips": (32.0, 64.0)}  # wavelength range, px
P_SUBJECT, P_COLOUR_NAMED = 0.6, 0.15


SSV2_CLASSES = (  # (class name, motion of FIELD_MOTIONS); labels are the indices
    ("moving something to the left", "left"),
    ("moving something to the right", "right"),
    ("moving something up", "up"),
    ("moving something down", "down"),
    ("moving something closer", "closer"),
    ("moving something away", "away"),
    ("turning something clockwise", "clockwise"),
    ("turning something anticlockwise", "anticlockwise"),
)
SSV2_CLASS_NAMES = tuple(name for name, _ in SSV2_CLASSES)
CLIP_FRAMES = (16, 24)  # labelled clips: one motion throughout, each frame a step of about 0.7 s of the narrated
CLIP_RATE, CLIP_ZOOM = 0.7, 1.6  # videos' motion; a zoom changes the log-scale by CLIP_ZOOM over the whole clip

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _spoken_words():
    """Every word the generator can write, in the narration, the raw ASR or a class name."""
    phrases = [*LEADS, *DETERMINERS, *COLORS, *MISSPELLINGS.values(), *SSV2_CLASS_NAMES]
    phrases += [w for words in SHAPE_WORDS.values() for w in words]
    phrases += [p for table in (POSITION_PHRASES, MOTION_PHRASES, FIELD_PHRASES) for ps in table.values() for p in ps]
    phrases += [*FIELD_SUBJECTS, "pattern"]
    words = {w for p in phrases for w in p.split()}
    words |= {w for token in ASR_INSERTIONS for w in re.findall(r"[a-z]+", token)}
    assert all(w.isalpha() and w.islower() for w in words)
    return sorted(words)


SPOKEN_WORDS = tuple(_spoken_words())
# Single characters (and their WordPiece continuations) come last so that no word can become [UNK].
_CHARACTERS = [*string.punctuation, *string.ascii_lowercase, *string.digits]
VOCAB = tuple(dict.fromkeys([*SPECIAL_TOKENS, *SPOKEN_WORDS, *_CHARACTERS,
                             *(f"##{c}" for c in string.ascii_lowercase + string.digits)]))  # ordered, unique
VOCAB_SIZE = len(VOCAB)
assert VOCAB_SIZE < 1000  # the demo text model has vocab_size 1000

_YY, _XX = np.mgrid[0:FRAME_SIZE[1], 0:FRAME_SIZE[0]].astype(np.float32) + 0.5  # pixel centres
_SHAPE_MASKS = {  # (dx, dy, size) -> boolean mask; every shape is centred on its centroid
    "square": lambda dx, dy, s: np.maximum(np.abs(dx), np.abs(dy)) <= s / 2,
    "circle": lambda dx, dy, s: dx * dx + dy * dy <= (s / 2) ** 2,
    "triangle": lambda dx, dy, s: (dy <= s / 3) & (np.abs(dx) <= (dy + 2 * s / 3) * 0.577),
    "bar": lambda dx, dy, s: (np.abs(dx) <= 0.7 * s) & (np.abs(dy) <= 0.22 * s),
}
_ID_CHARS = np.array(list(string.ascii_letters + string.digits))


def _rng(seed, stream, index=0):
    """Independent generator per (seed, stream, item): output does not depend on worker count or scheduling."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def _background(rng):
    """A grey backdrop with a gentle random gradient (a little texture, never mistaken for a shape)."""
    base = np.array(BACKGROUNDS[rng.integers(len(BACKGROUNDS))], np.float32)
    gx, gy = rng.uniform(-8, 8, size=2)
    ramp = gx * np.linspace(-1, 1, FRAME_SIZE[0])[None, :] + gy * np.linspace(-1, 1, FRAME_SIZE[1])[:, None]
    return base + ramp[..., None].astype(np.float32)


def _appearance(rng):
    """Colour, shape and a slight brightness variation."""
    return {"color": str(rng.choice(list(COLORS))), "shape": str(rng.choice(list(SHAPE_WORDS))),
            "shade": round(float(rng.uniform(-12, 12)), 2)}


def _render(background, obj, progress, travel, size):
    """One frame: the object at `progress` (0..1) along its motion, over the background."""
    (x0, y0, s0), (x1, y1, s1) = MOTIONS[obj["motion"]]
    cx = obj["anchor"][0] + travel[0] * (x0 + (x1 - x0) * progress)
    cy = obj["anchor"][1] + travel[1] * (y0 + (y1 - y0) * progress)
    scale = s0 + (s1 - s0) * progress
    frame = background.copy()
    frame[_SHAPE_MASKS[obj["shape"]](_XX - cx, _YY - cy, size * scale)] = np.add(COLORS[obj["color"]], obj["shade"])
    return np.clip(frame, 0, 255).astype(np.uint8)


def _write_mp4(path, frames):
    """Encode RGB frames as H.264 yuv420p at FPS with a keyframe every second, bit-reproducibly. Single-threaded
    x264 with rate control still made a few videos' bytes differ between runs (in B-frame and frame-QP decisions),
    so B-frames are off and the QP is constant (no lookahead). Every encoded frame is kept alive until the file is
    closed (the encoder can read a frame after encode() has returned) and the RGB->YUV conversion is single-threaded
    (PyAV's reformat() otherwise picks a thread count itself). The veryfast preset encodes the textured motion
    videos three times faster than the default at the same size and within 0.2 grey levels."""
    _encode(path, frames, "libx264", {"g": str(FPS), "keyint_min": str(FPS), "sc_threshold": "0", "bf": "0",
                                      "qp": "18", "x264-params": "weightp=0", "threads": "1", "preset": "veryfast"})


def _encode(path, frames, codec, options, container_format=None):
    """Encode RGB frames at FPS as yuv420p, single-threaded and bit-exact (reproducible byte for byte)."""
    pictures = []
    with av.open(path, "w", format=container_format, options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height = FRAME_SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for pts, frame in enumerate(frames):
            pictures.append(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p", threads=1))
            pictures[-1].pts = pts
            container.mux(stream.encode(pictures[-1]))
        container.mux(stream.encode())


# ----------------------------------------------------------------------------------------------- narrated videos

def _plan_shots(rng, seconds):
    """One i.i.d. shot per second: appearance, named position (jittered a little) and motion."""
    motions = list(MOTIONS)
    weights = np.array([STATIC_SHARE if m == "static" else (1 - STATIC_SHARE) / (len(motions) - 1) for m in motions])
    shots = []
    for k in range(seconds):
        position = str(rng.choice(list(POSITIONS)))
        fx, fy = POSITIONS[position]
        jx, jy = rng.uniform(-2, 2, size=2)
        shots.append({"start": k, "end": k + 1, **_appearance(rng), "position": position,
                      "motion": str(rng.choice(motions, p=weights)),
                      "anchor": [round(fx * FRAME_SIZE[0] + jx, 2), round(fy * FRAME_SIZE[1] + jy, 2)]})
    return shots


def _phrase(shot, rng):
    """What the narrator says about one shot: (lead-in, object, where-phrases). It depends on the shot only,
    never on the time, so text alone cannot tell which second a phrase belongs to."""
    lead = str(rng.choice(LEADS)) if rng.random() < P_LEAD else ""
    obj = f"{shot['color']} {rng.choice(SHAPE_WORDS[shot['shape']])}"
    if rng.random() < P_DETERMINER:
        obj = f"{rng.choice(DETERMINERS)} {obj}"
    where = []
    if MOTION_PHRASES[shot["motion"]] and rng.random() < P_MOTION:
        where.append(str(rng.choice(MOTION_PHRASES[shot["motion"]])))
    if rng.random() < P_POSITION:
        where.insert(int(rng.integers(len(where) + 1)), str(rng.choice(POSITION_PHRASES[shot["position"]])))
    return lead, obj, where


def _clean_sentence(lead, obj, where, rng):
    """The denoised form of a phrase: a capitalised sentence with punctuation attached to the words."""
    text = (obj + "".join((", " if rng.random() < 0.2 else " ") + w for w in where)).lstrip(", ")
    if lead:
        text = lead + (", " if lead in INTERJECTIONS and rng.random() < 0.5 else " ") + text
    return text[0].upper() + text[1:] + ("!" if rng.random() < 0.15 else ".")


def _raw_asr(words, rng):
    """The raw ASR form of a phrase: lower case, no punctuation, with light seeded drops, repeats, misspellings
    and inserted tokens (fillers, '[music]', HTML-entity debris)."""
    raw = []
    for word in words:
        if word in DROPPABLE and rng.random() < P_DROP:
            continue
        spoken = MISSPELLINGS[word] if word in MISSPELLINGS and rng.random() < P_MISSPELL else word
        raw += [spoken, spoken] if rng.random() < P_REPEAT else [spoken]
    if rng.random() < P_INSERT:
        raw.insert(int(rng.integers(len(raw) + 1)), str(rng.choice(ASR_INSERTIONS)))
    return raw


def _word_times(second, count, rng):
    """Strictly increasing word times spread over one second, inside [second + 0.04, second + 0.96)."""
    slots = (np.arange(count) + rng.uniform(0.15, 0.85, size=count)) / count
    return [round(second + 0.04 + 0.92 * float(s), 3) for s in slots]


def _narrate(items, say, rng):
    """Raw word-level subtitles and denoised chunks (a few sentences each): one phrase per item (a shot, or a
    segment's motion at the second it is named, each with its `start` second), worded by say(item, rng) -> (lead-in, subject, phrases)."""
    subtitles, sentences = [], []
    for item in items:
        lead, obj, where = say(item, rng)
        sentences.append(_clean_sentence(lead, obj, where, rng))
        raw = _raw_asr(" ".join([lead, obj, *where]).split(), rng)
        times = _word_times(item["start"], len(raw), rng)
        subtitles += [{"word": w, "time": t} for w, t in zip(raw, times, strict=True)]
    denoised, i = [], 0
    while i < len(sentences):
        n = int(rng.integers(2, 5))
        denoised.append({"cleanasr": " ".join(sentences[i:i + n])})
        i += n
    return subtitles, denoised


def _video_id(rng):
    """An 11-character YouTube-like id."""
    return "".join(rng.choice(_ID_CHARS, size=11))


def _shot_frames(background, shots):
    """The frames of one-second shots over a background: each shot's object at the middle of each frame's slot."""
    size, travel = OBJECT_SIZE * FRAME_SIZE[1], (0.08 * FRAME_SIZE[0], 0.1 * FRAME_SIZE[1])
    return (_render(background, shots[f // FPS], (f % FPS + 0.5) / FPS, travel, size)
            for f in range(len(shots) * FPS))


def _shot_video(rng, seconds):
    """Frames, subtitles, denoised chunks and ground truth of one shot-narrated video (the "shots" kind)."""
    shots = _plan_shots(rng, seconds)
    subtitles, denoised = _narrate(shots, _phrase, rng)
    return _shot_frames(_background(rng), shots), subtitles, denoised, {"fps": FPS, "scenes": shots}


def _make_video(task):
    """Write one narrated video of `kind` and its annotation; returns its `Name` (path relative to
    YTTemporal/videos)."""
    out_dir, seed, index, kind = task
    rng = _rng(seed, 0, index)
    video_id = _video_id(rng)
    seconds = int(rng.integers(MIN_SECONDS, MAX_SECONDS + 1))  # whole seconds (module docstring)
    frames, subtitles, denoised, truth = VIDEO_KINDS[kind](rng, seconds)
    subset = f"subset_{index % NUM_SUBSETS}"
    root = os.path.join(out_dir, "YTTemporal", "videos", subset)
    os.makedirs(os.path.join(root, "data"), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    _write_mp4(os.path.join(root, "data", f"{video_id}.mp4"), frames)
    annotation = {
        "info": {"duration": float(seconds), "fps": FPS, "num_frames": seconds * FPS, "width": FRAME_SIZE[0],
                 "height": FRAME_SIZE[1]},
        "subtitles": subtitles,
        "denoised": denoised,
        "synthetic": truth,
    }
    with open(os.path.join(root, "annotations", f"{video_id}.json"), "w") as f:
        json.dump(annotation, f)
    return f"{subset}/data/{video_id}.mp4"


# ---------------------------------------------------------------------------------- motion-narrated videos

def _pattern(rng, family, colors):
    """A random hard-edged two-colour pattern: the sign of a sum of five plane waves of random direction, wavelength
    and phase."""
    low, high = PATTERN_WAVES[family]
    names = sorted(str(c) for c in rng.choice(list(colors), size=2, replace=False))
    angles = rng.uniform(0, np.pi, size=5)
    k = 2 * np.pi / rng.uniform(low, high, size=5)
    return {"waves": np.stack([k * np.cos(angles), k * np.sin(angles)], 1).astype(np.float32),
            "phase": rng.uniform(0, 2 * np.pi, size=5).astype(np.float32),
            "names": names, "colors": np.array([COLORS[c] for c in names], np.float32)}


def _field_frame(pattern, offset, log_scale, angle):
    """Render the pattern under the screen transform (offset px, log-scale, clockwise angle) at 80x64. A wave
    k.q + phase of the pattern's plane is, on screen, the wave exp(-log_scale) R(angle) k . (p - centre - offset)
    + phase, and a plane wave factorises over x and y: the frame is a (64 x 5) @ (5 x 80) complex product."""
    cos, sin, inv = np.cos(angle), np.sin(angle), np.exp(-log_scale)
    kx, ky = pattern["waves"][:, 0], pattern["waves"][:, 1]
    kx, ky = inv * (cos * kx - sin * ky), inv * (sin * kx + cos * ky)
    x = _XX[0] - FRAME_SIZE[0] / 2 - offset[0]
    y = _YY[:, 0] - FRAME_SIZE[1] / 2 - offset[1]
    value = (np.exp(1j * np.outer(y, ky)) @ np.exp(1j * (np.outer(kx, x) + pattern["phase"][:, None]))).real
    return np.where(value[..., None] > 0, pattern["colors"][1], pattern["colors"][0]).astype(np.uint8)


def _start_state(rng, log_scale=0.0):
    """A random screen transform to start from: offset, the given log-scale, angle."""
    return (float(rng.uniform(-40, 40)), float(rng.uniform(-40, 40))), log_scale, float(rng.uniform(0, 2 * np.pi))


def _moving_pattern(pattern, state, steps):
    """Frames of the pattern from `state`, one per (motion, dt, rate) step, each rendered before its step."""
    for motion, dt, rate in steps:
        yield _field_frame(pattern, *state)
        state = _advance(state, motion, dt, rate)


def _advance(state, motion, dt, rate=1.0):
    """The screen transform after `dt` seconds of `motion` at `rate`: pans add to the offset; zoom and rotation act
    about the frame centre, so they scale or rotate the offset too."""
    (dx, dy), dlog, dangle = FIELD_MOTIONS[motion]
    (ox, oy), log_scale, angle = state
    f, a = np.exp(dlog * rate * dt), dangle * rate * dt
    ox, oy = f * (np.cos(a) * ox - np.sin(a) * oy), f * (np.sin(a) * ox + np.cos(a) * oy)
    return (ox + dx * rate * dt, oy + dy * rate * dt), log_scale + dlog * rate * dt, angle + a


def _plan_moves(rng, seconds, table=FIELD_MOTIONS, max_log_scale=MAX_LOG_SCALE):
    """Motion segments of MOVE_SECONDS, each with an i.i.d. motion of `table` and one second, drawn uniformly in it,
    at which the narrator names it. Zooms that would take the log-scale past `max_log_scale` in or out are left out of
    the draw, the only dependence of a segment's motion on the past."""
    motions = list(table)
    weights = np.array([FIELD_STATIC_SHARE if m == "static" else (1 - FIELD_STATIC_SHARE) / (len(motions) - 1)
                        for m in motions])
    moves, start, log_scale = [], 0, 0.0
    while start < seconds:
        length = min(int(rng.choice(MOVE_SECONDS)), seconds - start)
        allowed = weights * [abs(log_scale + table[m][1] * length) <= max_log_scale for m in motions]
        motion = str(rng.choice(motions, p=allowed / allowed.sum()))
        log_scale += table[motion][1] * length
        moves.append({"start": start, "end": start + length, "motion": motion,
                      "said": start + int(rng.integers(length))})
        start += length
    return moves


def _say_move(subject):
    """The narrator's wording of one segment's motion: a lead-in now and then, `subject(rng)` (the same choices in
    every window, so it says nothing about order) and one phrase of the motion."""
    def say(move, rng):
        lead = str(rng.choice(LEADS)) if rng.random() < P_LEAD else ""
        return lead, subject(rng), [str(rng.choice(FIELD_PHRASES[move["motion"]]))]
    return say


def _pattern_subject(colors):
    """A motion video's subject: now and then the video's two colours, else a word for the pattern, or none."""
    def subject(rng):
        if rng.random() < P_COLOUR_NAMED:
            return f"the {colors[0]} and {colors[1]} pattern"
        return str(rng.choice(FIELD_SUBJECTS)) if rng.random() < P_SUBJECT else ""
    return subject


def _motion_video(rng, seconds):
    """Frames, subtitles, denoised chunks and ground truth of one motion-narrated video (the "motion" kind)."""
    moves = _plan_moves(rng, seconds)
    pattern = _pattern(rng, "narrated", PRETRAIN_COLORS)
    said = [{"start": move["said"], "motion": move["motion"]} for move in moves]
    subtitles, denoised = _narrate(said, _say_move(_pattern_subject(pattern["names"])), rng)
    steps = [(move["motion"], 1 / FPS, 1.0) for move in moves for _ in range((move["end"] - move["start"]) * FPS)]
    frames = _moving_pattern(pattern, _start_state(rng), steps)
    return frames, subtitles, denoised, {"fps": FPS, "moves": moves, "colors": pattern["names"]}


# ---------------------------------------------------------------------------------- object-narrated videos

# The "objects" kind: one object on a still backdrop glides (wrapping round the frame edges, so where it is says
# nothing about where it goes), grows, shrinks or turns, in the segments of the "motion" kind, and the narrator names
# each segment's motion once and never the colour. Between two sampled frames (about 1.2 s) a glide moves it by about
# a quarter of the frame, far more than the pattern pans: the change is a displacement between patches, not a phase
# shift inside one. The labelled clips do the same motions with other colours, shapes and backdrops.
# a turn of 0.45 rad/s is 31 degrees in 1.2 s: under half the square's 90-degree symmetry
OBJECT_MOTIONS = _motion_table(16, 13, 0.2, 0.45)
OBJECT_BASE_SIZE, OBJECT_MAX_LOG_SCALE = 0.4, 0.5  # of the frame height; sizes 0.24-0.66 H
NARRATED_SHAPES, CLIP_SHAPES = ("square", "triangle", "bar"), ("cross", "diamond")
CLIP_BACKGROUNDS = ((56, 60, 68), (196, 192, 182))  # darker and lighter than every narrated backdrop
_SHAPE_MASKS.update({
    "cross": lambda dx, dy, s: (((np.abs(dx) <= s / 2) & (np.abs(dy) <= s / 7))
                               | ((np.abs(dy) <= s / 2) & (np.abs(dx) <= s / 7))),
    "diamond": lambda dx, dy, s: np.abs(dx) + 0.6 * np.abs(dy) <= s / 2,
})


def _object_frame(background, obj, state):
    """The object at state ((x, y), log-scale, angle) over the background, drawn again one frame width or height
    away so that it wraps round the edges."""
    (x, y), log_scale, angle = state
    cos, sin = np.cos(angle), np.sin(angle)
    size, mask = OBJECT_BASE_SIZE * FRAME_SIZE[1] * np.exp(log_scale), np.zeros(background.shape[:2], bool)
    for ox in (-FRAME_SIZE[0], 0, FRAME_SIZE[0]):
        for oy in (-FRAME_SIZE[1], 0, FRAME_SIZE[1]):
            dx, dy = _XX - x - ox, _YY - y - oy
            mask |= _SHAPE_MASKS[obj["shape"]](cos * dx + sin * dy, -sin * dx + cos * dy, size)
    frame = background.copy()
    frame[mask] = np.add(COLORS[obj["color"]], obj["shade"])
    return np.clip(frame, 0, 255).astype(np.uint8)


def _object_advance(state, motion, dt, rate=1.0):
    """The object's state after `dt` seconds of `motion` at `rate` (its centre kept inside the frame, on a torus)."""
    (dx, dy), dlog, dangle = OBJECT_MOTIONS[motion]
    (x, y), log_scale, angle = state
    return (((x + dx * rate * dt) % FRAME_SIZE[0], (y + dy * rate * dt) % FRAME_SIZE[1]), log_scale + dlog * rate * dt,
            angle + dangle * rate * dt)


def _moving_object(background, obj, state, steps):
    """Frames of the object from `state`, one per (motion, dt, rate) step, each rendered before its step."""
    for motion, dt, rate in steps:
        yield _object_frame(background, obj, state)
        state = _object_advance(state, motion, dt, rate)


def _object_start(rng, log_scale=0.0):
    return (float(rng.uniform(0, FRAME_SIZE[0])), float(rng.uniform(0, FRAME_SIZE[1]))), log_scale, \
        float(rng.uniform(0, 2 * np.pi))


def _object_subject(shape):
    """An object video's subject: a word for its shape or a pronoun, or none; never its colour."""
    def subject(rng):
        if rng.random() < P_SUBJECT:
            return f"the {rng.choice(SHAPE_WORDS[shape])}" if rng.random() < 0.5 else "it"
        return ""
    return subject


def _object_video(rng, seconds):
    """Frames, subtitles, denoised chunks and ground truth of one object-narrated video (the "objects" kind)."""
    moves = _plan_moves(rng, seconds, OBJECT_MOTIONS, OBJECT_MAX_LOG_SCALE)
    obj = {"color": str(rng.choice(PRETRAIN_COLORS)), "shape": str(rng.choice(NARRATED_SHAPES)),
           "shade": round(float(rng.uniform(-12, 12)), 2)}
    said = [{"start": move["said"], "motion": move["motion"]} for move in moves]
    subtitles, denoised = _narrate(said, _say_move(_object_subject(obj["shape"])), rng)
    steps = [(move["motion"], 1 / FPS, 1.0) for move in moves for _ in range((move["end"] - move["start"]) * FPS)]
    frames = _moving_object(_background(rng), obj, _object_start(rng), steps)
    return frames, subtitles, denoised, {"fps": FPS, "moves": moves, **obj}


VIDEO_KINDS = {"motion": _motion_video, "objects": _object_video, "shots": _shot_video}


# ---------------------------------------------------------------------------------------------- labelled clips

def _make_pattern_clip(task):
    """Write one labelled clip: a hard-edged pattern in the clip colours performing its class's motion throughout,
    behind a still shape, so neither the pattern nor the shape tells the class."""
    out_dir, seed, index, label = task
    rng = _rng(seed, 1, index)
    motion = SSV2_CLASSES[label][1]
    num_frames = int(rng.integers(CLIP_FRAMES[0], CLIP_FRAMES[1] + 1))
    pattern = _pattern(rng, "clips", CLIP_COLORS)
    zoom = motion in ("closer", "away")
    rate = (CLIP_ZOOM / (num_frames - 1) / abs(FIELD_MOTIONS[motion][1]) if zoom else CLIP_RATE) * rng.uniform(0.85, 1.15)
    start_scale = -CLIP_ZOOM / 2 * np.sign(FIELD_MOTIONS[motion][1]) if zoom else 0.0
    state = _start_state(rng, start_scale)
    shape = {"color": str(rng.choice([c for c in CLIP_COLORS if c not in pattern["names"]])),
             "shape": str(rng.choice(list(SHAPE_WORDS))), "shade": 0.0, "motion": "static",
             "anchor": [FRAME_SIZE[0] * rng.uniform(0.25, 0.75), FRAME_SIZE[1] * rng.uniform(0.25, 0.75)]}
    frames = (_render(frame.astype(np.float32), shape, 0.0, (0, 0), 0.4 * FRAME_SIZE[1])
              for frame in _moving_pattern(pattern, state, [(motion, 1.0, rate)] * num_frames))
    clip_id = index + 1
    _write_mp4(os.path.join(out_dir, "ssv2", "videos", f"{clip_id}.mp4"), frames)
    return f"{clip_id}.mp4 {label}"


def _make_object_clip(task):
    """A labelled clip of the "objects" kind: its class's motion throughout, each frame a step of about CLIP_RATE s
    (a zoom spans CLIP_ZOOM / 2 of log-scale about the base size), in appearances the narrated videos never use."""
    out_dir, seed, index, label = task
    rng = _rng(seed, 1, index)
    motion = SSV2_CLASSES[label][1]
    num_frames = int(rng.integers(CLIP_FRAMES[0], CLIP_FRAMES[1] + 1))
    dlog = OBJECT_MOTIONS[motion][1]
    zoom = dlog != 0
    rate = (CLIP_ZOOM / 2 / (num_frames - 1) / abs(dlog) if zoom else CLIP_RATE) * rng.uniform(0.85, 1.15)
    base = np.array(CLIP_BACKGROUNDS[rng.integers(len(CLIP_BACKGROUNDS))], np.float32)
    background = np.broadcast_to(base, (FRAME_SIZE[1], FRAME_SIZE[0], 3)).copy()
    obj = {"color": str(rng.choice(CLIP_COLORS)), "shape": str(rng.choice(CLIP_SHAPES)), "shade": 0.0}
    state = _object_start(rng, -CLIP_ZOOM / 4 * np.sign(dlog) if zoom else 0.0)
    frames = _moving_object(background, obj, state, [(motion, 1.0, rate)] * num_frames)
    clip_id = index + 1
    _write_mp4(os.path.join(out_dir, "ssv2", "videos", f"{clip_id}.mp4"), frames)
    return f"{clip_id}.mp4 {label}"


CLIP_MAKERS = {"motion": _make_pattern_clip, "objects": _make_object_clip, "shots": _make_pattern_clip}  # by kind


# ------------------------------------------------------------------------------------------------------ corpus

def make_tokenizer(out_dir):
    """Write `<out_dir>/tokenizer`, a lower-casing DistilBERT WordPiece tokenizer over VOCAB that
    AutoTokenizer.from_pretrained loads offline; returns its path."""
    from transformers import DistilBertTokenizerFast  # imported here: the video workers never need it

    path = os.path.join(out_dir, "tokenizer")
    os.makedirs(path, exist_ok=True)
    vocab_file = os.path.join(path, "vocab.txt")
    with open(vocab_file, "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    # Positional vocab path: in transformers 5 the `vocab_file=` keyword silently yields a 5-token tokenizer.
    tokenizer = DistilBertTokenizerFast(vocab_file, do_lower_case=True)
    assert len(tokenizer) == VOCAB_SIZE, (len(tokenizer), VOCAB_SIZE)
    tokenizer.save_pretrained(path)
    return path


def _split_videos(names, seed):
    """Seeded ~90/10 train/val split (at least one val video), keeping the generation order in each part."""
    val = set(_rng(seed, 2).permutation(len(names))[:max(1, round(len(names) / 10))].tolist())
    return [n for i, n in enumerate(names) if i not in val], [n for i, n in enumerate(names) if i in val]


def _split_clips(lines):
    """Stratified 80/20 split: of the list lines sorted by (label, clip id), every fifth goes to val."""
    ordered = sorted(lines, key=lambda line: (int(line.split()[1]), int(line.split(".")[0])))
    return [x for i, x in enumerate(ordered) if i % 5 != 4], [x for i, x in enumerate(ordered) if i % 5 == 4]


def _run(fn, tasks, workers, what):
    """Map fn over tasks in order, on a spawn pool when workers > 1 (spawn: safe after torch started threads)."""
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            return _collect(pool.imap(fn, tasks, chunksize=4), len(tasks), what)
    return _collect(map(fn, tasks), len(tasks), what)


def _collect(results, total, what):
    """Drain an ordered result iterator, printing progress about every tenth."""
    every, done = max(1, total // 10), []
    for result in results:
        done.append(result)
        if len(done) % every == 0 or len(done) == total:
            print(f"  {what}: {len(done)}/{total}", flush=True)
    return done


def _write_lines(path, lines):
    """Write a list file, one line each, newline-terminated."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def generate_corpus(out_dir, num_videos=1000, num_labelled=400, seed=0, workers=None, kind="shots"):
    """Write the whole corpus under out_dir (existing files are overwritten, others left alone); returns a summary.
    `kind` is the narrated videos' design: "shots" (the demo's), "motion" or "objects" (module docstring)."""
    if num_videos < 2 or num_labelled < 5:
        raise ValueError("need at least 2 videos and 5 labelled clips to fill both splits")
    if kind not in VIDEO_KINDS:
        raise ValueError(f"kind must be one of {sorted(VIDEO_KINDS)}, got {kind!r}")
    workers = workers or min(2, os.cpu_count() or 1)
    started = time.time()
    out_dir = str(out_dir)

    names = _run(_make_video, [(out_dir, seed, i, kind) for i in range(num_videos)], workers, "videos")
    assert len(set(names)) == len(names), "video id collision"
    train, val = _split_videos(names, seed)
    write_derived_split(os.path.join(out_dir, "meta_data"), "yttemporal", {"train": train, "val": val})

    os.makedirs(os.path.join(out_dir, "ssv2", "videos"), exist_ok=True)
    labels = _rng(seed, 3).permutation(np.arange(num_labelled) % len(SSV2_CLASSES)).tolist()
    lines = _run(CLIP_MAKERS[kind], [(out_dir, seed, i, labels[i]) for i in range(num_labelled)], workers, "clips")
    clips_train, clips_val = _split_clips(lines)
    _write_lines(os.path.join(out_dir, "ssv2", "sthv2_train_list_videos.txt"), clips_train)
    _write_lines(os.path.join(out_dir, "ssv2", "sthv2_val_list_videos.txt"), clips_val)
    with open(os.path.join(out_dir, "ssv2", "labels.json"), "w") as f:
        json.dump({str(i): name for i, name in enumerate(SSV2_CLASS_NAMES)}, f, indent=1)

    summary = {"out_dir": out_dir, "videos_dir": os.path.join(out_dir, "YTTemporal", "videos"),
               "meta_dir": os.path.join(out_dir, "meta_data"), "ssv2_dir": os.path.join(out_dir, "ssv2"),
               "tokenizer": make_tokenizer(out_dir), "vocab_size": VOCAB_SIZE, "design": DESIGN, "kind": kind,
               "seed": seed,
               "videos": len(names), "train": len(train), "val": len(val),
               "clips": len(lines), "clips_train": len(clips_train), "clips_val": len(clips_val),
               "classes": len(SSV2_CLASSES), "elapsed_s": round(time.time() - started, 1)}
    with open(os.path.join(out_dir, "corpus.json"), "w") as f:  # what was made, not where or how fast: reproducible
        json.dump({k: summary[k] for k in ("design", "kind", "seed", "videos", "clips", "vocab_size")}, f, indent=1)
    return summary


# ---------------------------------------------------------------------------------------- zero-shot eval sets

EVAL_DESIGN = 2  # written to eval_sets.json; bumped when the same seed would write different eval sets
EVAL_SECONDS = (3, 4)  # whole seconds, one shot each, as in the narrated videos
EVAL_CLASSES = 6  # per recognition set
MSRVTT_FIRST_ID, MSRVTT_CAPTIONS, MSRVTT_TRAIN_VIDEOS = 7010, 3, 5
LSMDC_MOVIES = ("0001_SYNTHA", "0002_SYNTHB", "0003_SYNTHC")
MC_OPTIONS = 5
TRAIN_CLIP_OFFSET = 100000  # recognition training clips: stream indices past every test clip's
RECOGNITION_SETS = ("hmdb51", "ucf101", "k400")
# Random streams, none used by the corpus (0-3): clip content per set (index = clip), then the metadata draws.
_EVAL_STREAMS = {"msrvtt": 10, "didemo": 11, "lsmdc": 12, "hmdb51": 13, "ucf101": 14, "k400": 15, "ssv2_mc": 16,
                 "msrvtt_train": 17}
_S_MSRVTT_META, _S_NAMES, _S_LSMDC_TIMES, _S_CLASSES, _S_SPLITS, _S_MC = 20, 21, 22, 23, 24, 25


def _write_avi(path, frames):
    """Encode RGB frames as MPEG-4 Part 2 (yuv420p) in AVI at FPS, as the official HMDB/UCF/LSMDC files are:
    intra frame every second, no B-frames, constant quantiser 2, single-threaded and bit-exact (reproducible)."""
    _encode(path, frames, "mpeg4", {"g": str(FPS), "bf": "0", "flags": "+bitexact+qscale",
                                    "global_quality": str(2 * 118), "threads": "1"}, "avi")


def _plan_eval_clip(seed, stream, index, captions=1, appearance=None):
    """An eval clip's content: (rng after planning, seconds, shots, captions). A 3-4 s shot-style clip, one i.i.d.
    shot a second as in the narrated videos (every shot showing `appearance` {colour, shape} if given), and
    `captions` distinct descriptions, each the clean sentences the narrator would say about the shots, joined.
    Both the main process (metadata) and the worker (pixels) call it, and they get the same plan."""
    rng = _rng(seed, stream, index)
    seconds = int(rng.integers(EVAL_SECONDS[0], EVAL_SECONDS[1] + 1))
    shots = _plan_shots(rng, seconds)
    for shot in shots if appearance else ():
        shot.update(appearance)
    texts = []
    for _ in range(captions):
        for _attempt in range(50):  # another wording of the same shots (leads, determiners, synonyms, phrases)
            text = " ".join(_clean_sentence(*_phrase(shot, rng), rng) for shot in shots)
            if text not in texts:
                break
        texts.append(text)
    return rng, seconds, shots, texts


def _make_eval_clip(task):
    """Write one eval clip (.mp4 H.264 or .avi MPEG-4 by the path's extension); returns (path, frame count)."""
    path, seed, stream, index, captions, appearance = task
    rng, seconds, shots, _ = _plan_eval_clip(seed, stream, index, captions, appearance)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    (_write_avi if path.endswith(".avi") else _write_mp4)(path, _shot_frames(_background(rng), shots))
    return path, seconds * FPS


def _tsv(path, rows, header=None):
    """Write tab-separated rows (no quoting: fields never hold tabs, newlines or quotes)."""
    rows = [header, *rows] if header else rows
    assert all(not re.search(r'[\t\n"]', str(x)) for row in rows for x in row)
    _write_lines(path, ["\t".join(str(x) for x in row) for row in rows])


def _mkdirs(path):
    """Create path's folder; returns path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _lsmdc_time(t):
    """Seconds -> LSMDC's 'HH.MM.SS.mmm'."""
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}.{ms // 60000 % 60:02d}.{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _didemo_name(rng):
    """A Flickr-like DiDeMo video name: '<user>@N0<d>_<photo id>_<secret>'."""
    return (f"{rng.integers(10 ** 7, 10 ** 8)}@N0{rng.integers(10)}_{rng.integers(10 ** 9, 10 ** 10)}_"
            + "".join(rng.choice(list("0123456789abcdef"), size=10)))


def _subset(rng, k, avoid=()):
    """About 2/3 of range(k), sorted, differing from every list in `avoid` where possible."""
    for _ in range(100):
        picked = sorted(rng.permutation(k)[:max(1, round(2 * k / 3))].tolist())
        if picked not in avoid:
            break
    return picked


def generate_eval_sets(out_dir, num_clips=24, seed=0, workers=None):
    """Write the zero-shot eval sets (module docstring) under out_dir/data and out_dir/meta_data, num_clips videos
    per set, deterministically from seed; returns a summary."""
    if num_clips < max(MC_OPTIONS, EVAL_CLASSES):
        raise ValueError(f"need at least {max(MC_OPTIONS, EVAL_CLASSES)} clips per set")
    workers = workers or min(2, os.cpu_count() or 1)
    started, k = time.time(), num_clips
    out_dir = str(out_dir)
    data, meta = os.path.join(out_dir, "data"), os.path.join(out_dir, "meta_data")
    tasks = []  # (path, seed, stream, index, captions, appearance): one pool for every set

    def captioned(set_name, index, path, captions=1):
        stream = _EVAL_STREAMS[set_name]
        tasks.append((path, seed, stream, index, captions, None))
        return _plan_eval_clip(seed, stream, index, captions)

    # MSR-VTT, 1k-A (jsfusion) test cut: 3 captions a video, shuffled among those of a few (file-less) train videos.
    ids = [f"video{MSRVTT_FIRST_ID + i}" for i in range(k)]
    captions = {vid: captioned("msrvtt", i, os.path.join(data, "msrvtt", "videos", "all", f"{vid}.mp4"),
                               MSRVTT_CAPTIONS)[3] for i, vid in enumerate(ids)}
    for j in range(MSRVTT_TRAIN_VIDEOS):
        captions[f"video{j}"] = _plan_eval_clip(seed, _EVAL_STREAMS["msrvtt_train"], j, MSRVTT_CAPTIONS)[3]
    pairs = [(vid, text) for vid, texts in captions.items() for text in texts]
    order = _rng(seed, _S_MSRVTT_META, 0).permutation(len(pairs)).tolist()
    annotations = [{"image_id": pairs[o][0], "caption": pairs[o][1], "id": n} for n, o in enumerate(order)]
    os.makedirs(os.path.join(meta, "msrvtt"), exist_ok=True)
    with open(os.path.join(meta, "msrvtt", "MSR_VTT.json"), "w") as f:
        json.dump({"annotations": annotations}, f)
    cut = os.path.join(data, "msrvtt", "high-quality", "structured-symlinks")
    _write_lines(os.path.join(cut, "val_list_jsfusion.txt"), ids)
    pick = _rng(seed, _S_MSRVTT_META, 1)
    with open(os.path.join(cut, "jsfusion_val_caption_idx.pkl"), "wb") as f:
        pickle.dump({vid: int(pick.integers(MSRVTT_CAPTIONS)) for vid in ids}, f, protocol=2)

    # DiDeMo: paragraph + video path relative to data/didemo.
    names = [_didemo_name(_rng(seed, _S_NAMES, i)) for i in range(k)]
    assert len(set(names)) == k
    rows = [(captioned("didemo", i, os.path.join(data, "didemo", "videos", f"{name}.mp4"))[3][0], f"videos/{name}.mp4")
            for i, name in enumerate(names)]
    _tsv(os.path.join(meta, "didemo", "DiDeMo_test.tsv"), rows, ("text", "video"))

    # LSMDC: AVI clips named <movie>_<start>-<end>, the span as long as the clip, later clips later in their movie.
    times = _rng(seed, _S_LSMDC_TIMES)
    clocks = {movie: float(times.uniform(60, 1800)) for movie in LSMDC_MOVIES}
    rows = []
    for i in range(k):
        movie = LSMDC_MOVIES[i % len(LSMDC_MOVIES)]
        seconds = _plan_eval_clip(seed, _EVAL_STREAMS["lsmdc"], i)[1]
        start = round(clocks[movie], 3)
        clocks[movie] = start + seconds + float(times.uniform(2, 120))
        t0, t1 = _lsmdc_time(start), _lsmdc_time(start + seconds)
        clip = f"{movie}_{t0}-{t1}"
        sentence = captioned("lsmdc", i, os.path.join(data, "lsmdc", movie, f"{clip}.avi"))[3][0]
        rows.append((clip, t0, t1, t0, t1, sentence))
    _tsv(os.path.join(meta, "lsmdc", "LSMDC16_challenge_1000_publictect.csv"), sorted(rows))

    # Recognition: 6 "<colour> <shape>" classes per set (ids in alphabetical order), balanced labels.
    pairs = [(color, shape) for color in COLORS for shape in SHAPE_WORDS]
    class_names = {}
    for s, set_name in enumerate(RECOGNITION_SETS):
        rng = _rng(seed, _S_CLASSES, s)
        chosen = sorted(pairs[j] for j in rng.permutation(len(pairs))[:EVAL_CLASSES])
        names = [f"{color} {shape}" for color, shape in chosen]
        class_names[set_name] = names
        with open(_mkdirs(os.path.join(meta, set_name, "prompt", "label2id.json")), "w") as f:
            json.dump({name: i for i, name in enumerate(names)}, f, indent=1)
        header = ("video", "label")
        for part, offset in (("test", 0), ("train", TRAIN_CLIP_OFFSET)):  # training clips: for the linear probe
            labels = rng.permutation(np.arange(k) % EVAL_CLASSES).tolist()
            rows, seen = [], [0] * EVAL_CLASSES
            ids_k400 = [_video_id(_rng(seed, _S_NAMES, 1000 * (s + 1) + offset + i)) for i in range(k)]
            assert len(set(ids_k400)) == k
            for i, label in enumerate(labels):
                color, shape = chosen[label]
                n, seen[label] = seen[label], seen[label] + 1
                tag = "" if part == "test" else "t"  # training clips get other names than test clips
                if set_name == "hmdb51":
                    folder = names[label].replace(" ", "_")
                    rel = disk = f"{folder}/{folder}_{tag}clip{i:03d}_u_nm_np1_fr_med_0.avi"
                    row = (rel, label + 1)
                elif set_name == "ucf101":
                    folder = "".join(w.capitalize() for w in names[label].split())
                    group = n // 7 + 1 + (0 if part == "test" else 50)  # 7 clips a group
                    rel = disk = f"{folder}/v_{folder}_g{group:02d}_c{n % 7 + 1:02d}.avi"
                    row = (rel, label + 1)
                else:  # the official reader keeps the file name only and reads '.mkv' as '.mp4'
                    file = f"{ids_k400[i]}_000010_000020"
                    disk = f"{'videos_val' if part == 'test' else 'train/train'}/{file}.mp4"
                    row = (f"{names[label].replace(' ', '_')}/{file}.{'mkv' if i % 2 else 'mp4'}", label)
                rows.append(row)
                tasks.append((os.path.join(data, set_name, disk), seed, _EVAL_STREAMS[set_name], offset + i, 1,
                              {"color": color, "shape": shape}))
            if set_name == "k400":
                listed = "val" if part == "test" else "train"
                _tsv(os.path.join(meta, "k400", "prompt", f"kinetics400_{listed}_list_videos.tsv"), rows, header)
                continue
            splits = [list(range(k))]
            split_rng = _rng(seed, _S_SPLITS, s if part == "test" else 100 + s)
            splits += [_subset(split_rng, k, splits[1:])]
            splits += [_subset(split_rng, k, splits[1:])]
            for n, picked in enumerate(splits, 1):
                file = f"split_{n}_{part}_list.tsv" if set_name == "hmdb51" else f"{part}list0{n}_new.tsv"
                _tsv(os.path.join(meta, set_name, "prompt", file), [rows[i] for i in picked], header)

    # SSV2 multiple choice: the clip's caption among 4 captions of other clips, at a random position.
    texts = [captioned("ssv2_mc", i, os.path.join(data, "SSV2", "videos", f"{i + 1}.mp4"))[3][0] for i in range(k)]
    rng, records = _rng(seed, _S_MC), []
    for i, text in enumerate(texts):
        options = []
        for j in rng.permutation(k).tolist():
            if j != i and texts[j] != text and texts[j] not in options:
                options.append(texts[j])
        if len(options) < MC_OPTIONS - 1:
            raise ValueError("too few distinct captions for the multiple-choice options")
        options = options[:MC_OPTIONS - 1]
        answer = int(rng.integers(MC_OPTIONS))
        options.insert(answer, text)
        records.append(json.dumps({"clip_name": f"{i + 1}.mp4", "options": options, "answer": answer}))
    _write_lines(os.path.join(meta, "ssv2", "mc", "val.jsonl"), records)

    written = _run(_make_eval_clip, tasks, workers, "eval clips")
    assert len({path for path, _ in written}) == len(tasks), "eval clip path collision"
    counts = {name: k for name in ("msrvtt", "didemo", "lsmdc", *RECOGNITION_SETS, "ssv2_mc")}
    summary = {"out_dir": out_dir, "meta_dir": meta, "data_dir": data, **counts, "classes": EVAL_CLASSES,
               "eval_design": EVAL_DESIGN, "seed": seed, "elapsed_s": round(time.time() - started, 1)}
    with open(os.path.join(out_dir, "eval_sets.json"), "w") as f:  # reproducible: no paths, no timings
        json.dump({"eval_design": EVAL_DESIGN, "seed": seed, **counts, "classes": EVAL_CLASSES,
                   "msrvtt_train_videos": MSRVTT_TRAIN_VIDEOS, "class_names": class_names}, f, indent=1)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    parser.add_argument("--num-videos", type=int, default=1000)
    parser.add_argument("--num-labelled", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", choices=sorted(VIDEO_KINDS), default="shots",
                        help="narrated videos: 'shots' (a named object a second; the demo's, default) or 'motion' "
                             "(a pattern's motion, named once per 3-5 s segment)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: min(2, CPUs))")
    parser.add_argument("--eval-sets", action="store_true", help="also write the zero-shot eval sets, after the corpus")
    parser.add_argument("--eval-only", action="store_true", help="write the zero-shot eval sets only, no corpus")
    parser.add_argument("--eval-clips", type=int, default=24, help="videos per eval set (default: 24)")
    args = parser.parse_args()
    if not args.eval_only:
        s = generate_corpus(args.out, args.num_videos, args.num_labelled, args.seed, args.workers, args.kind)
        print(f"synthetic corpus in {s['out_dir']}: {s['videos']} videos ({s['train']} train / {s['val']} val), "
              f"{s['clips']} clips ({s['clips_train']} train / {s['clips_val']} val, {s['classes']} classes), "
              f"vocabulary {s['vocab_size']}, {s['elapsed_s']} s")
    if args.eval_sets or args.eval_only:
        e = generate_eval_sets(args.out, args.eval_clips, args.seed, args.workers)
        print(f"synthetic eval sets in {e['data_dir']} + {e['meta_dir']}: {e['msrvtt']} videos each for MSR-VTT, "
              f"DiDeMo, LSMDC, HMDB-51, UCF-101, Kinetics-400 ({e['classes']} classes) and SSV2-MC, {e['elapsed_s']} s")

if __name__ == "__main__":
    main()
