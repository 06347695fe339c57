"""Small media files for tests: videos whose frames tell their own index, and YT-Temporal-style corpora."""
import json
import os

import av
import numpy as np


def write_indexed_video(path, n=40, fps=8, size=(64, 48), codec="libx264", container=None, options=None):
    """Frame i is flat, grey level 20 + 6 * (i % 40) on the left half and 20 + 6 * (i // 40) on the right, with a
    white bar, so a decoded frame tells its own index (up to 1,600 frames). `options` go to the encoder (default: a
    keyframe a second, the encoder's own B-frame setting)."""
    out = av.open(str(path), "w", format=container)
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"g": str(fps), **(options or {})}
    stream.bit_rate = 4_000_000  # near-lossless, so a frame's grey level tells its index
    for i in range(n):
        img = np.full((size[1], size[0], 3), 20 + 6 * (i % 40), np.uint8)
        img[:, size[0] // 2:] = 20 + 6 * (i // 40)
        img[:, (i % 8):(i % 8) + 2] = 255
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def write_noise_video(path, n=20, fps=8, size=(48, 40), seed=0):
    """Smooth random colour blobs that drift over time: videos that differ from each other in content."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n // 4 + 2, 4, 4, 3)).astype(np.float32)
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    for i in range(n):
        a, t = divmod(i, 4)
        grid = coarse[a] * (1 - t / 4) + coarse[a + 1] * (t / 4)
        img = np.kron(grid, np.ones((size[1] // 4, size[0] // 4, 1))).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def frame_index(frame):
    """The index written by `write_indexed_video`, read back from a decoded (H, W, 3) frame."""
    w = frame.shape[1]
    low = np.median(frame[:, w // 4:w // 2 - 2, 0])
    high = np.median(frame[:, w // 2 + 2:, 0])
    return int(round((low - 20) / 6)) + 40 * int(round((high - 20) / 6))


def write_yt_corpus(root, videos, fps=4):
    """A YT-Temporal layout under `root`: `videos` maps a name such as `subset_0/data/a.mp4` to its duration in
    seconds (or to an annotation dict to write as is). Each second s carries the ASR word `s<s>` at s + 0.5 s.
    Returns (data_dir, meta_dir)."""
    data_dir, meta_dir = os.path.join(root, "YTTemporal"), os.path.join(root, "meta_data")
    os.makedirs(meta_dir, exist_ok=True)
    for name, spec in videos.items():
        subset, stem = name.split("/")[0], os.path.splitext(os.path.basename(name))[0]
        video_path = os.path.join(data_dir, "videos", name)
        ann_dir = os.path.join(data_dir, "videos", subset, "annotations")
        os.makedirs(os.path.dirname(video_path), exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        if isinstance(spec, dict):
            annotation, duration = spec, spec.get("info", {}).get("duration", 12)
        else:
            duration = spec
            words = [{"word": f"s{s}", "time": s + 0.5} for s in range(int(duration))]
            annotation = {"info": {"duration": float(duration)}, "subtitles": words,
                          "denoised": [{"cleanasr": " ".join(w["word"] for w in words)}]}
        with open(os.path.join(ann_dir, stem + ".json"), "w") as f:
            json.dump(annotation, f)
        write_indexed_video(video_path, n=int(duration * fps), fps=fps)
    for split in ("train", "val"):
        with open(os.path.join(meta_dir, f"yttemporal_{split}.csv"), "w") as f:
            f.write("Name\n" + "".join(n + "\n" for n in videos))
    return data_dir, meta_dir


def write_tokenizer(directory, words):
    """An offline WordPiece tokenizer over `words` (plus letters and digits), saved with save_pretrained."""
    from transformers import DistilBertTokenizerFast
    os.makedirs(directory, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words)) + list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab_file = os.path.join(directory, "vocab.txt")
    with open(vocab_file, "w") as f:
        f.write("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = DistilBertTokenizerFast(vocab_file)  # positional: a keyword builds a 5-token tokenizer
    assert len(tokenizer) == len(dict.fromkeys(vocab))
    tokenizer.save_pretrained(directory)
    return directory
