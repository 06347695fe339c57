"""Tokenizers for the text towers, as callables `list[str] -> {"input_ids", "attention_mask"}` run in the data
workers' collate. `tokenizer.type` in the config picks one; by default the architecture's own.

- "huggingface" (TVTS v1, CPD): a Hugging Face tokenizer by hub name or local directory, truncated at
  `max_length` (TVTS: 50) keeping [SEP] last, padded to the longest text in the batch. CPD's official rule is
  `truncation: "slice"` (the first `max_length` ids, so a long caption loses its [SEP]) with `padding:
  "max_length"` (every caption padded with 0 to 64: its text tower attends to padding, so the length matters).
- "clip" (TVTSv2): CLIP's byte-level BPE (the vocabulary file ships with `open_clip_torch`; nothing is
  downloaded): [SOT] + tokens + [EOT], truncated to `max_length` (77) with EOT kept last, as
  `clip.tokenize(truncate=True)` and OpenCLIP's tokenizer do. Batches are padded with 0 to their longest sequence
  rather than to 77: the text tower is causal, so the EOT feature is the same either way. (0 is also a real token,
  "!", so lengths are read from the EOT position, not from the zeros.)
"""
import importlib.util
import os

import torch

from utils.registry import Registry

TOKENIZERS = Registry("tokenizer (tokenizer.type)")


PADDINGS = ("longest", "max_length")
TRUNCATIONS = ("keep_last", "slice")


@TOKENIZERS.register("huggingface")
class HuggingFaceTokenizer:
    def __init__(self, name, max_length=50, vocab_size=None, padding="longest", truncation="keep_last"):
        from transformers import AutoTokenizer
        if padding not in PADDINGS or truncation not in TRUNCATIONS:
            raise ValueError(f"tokenizer padding must be one of {PADDINGS} and truncation one of {TRUNCATIONS}; got "
                             f"{padding!r}, {truncation!r}")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers tokenise; no nested thread pools
        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.name, self.max_length, self.padding, self.truncation = name, max_length, padding, truncation
        check_vocabulary(len(self.tokenizer), name, vocab_size)

    @property
    def vocab_size(self):
        return len(self.tokenizer)

    def __call__(self, texts):
        if self.truncation == "slice":
            rows = [ids[:self.max_length] for ids in self.tokenizer(list(texts))["input_ids"]]
            width = self.max_length if self.padding == "max_length" else max(len(r) for r in rows)
            ids = torch.zeros((len(rows), width), dtype=torch.int64)
            mask = torch.zeros_like(ids)
            for i, row in enumerate(rows):
                ids[i, :len(row)] = torch.tensor(row)
                mask[i, :len(row)] = 1
            return {"input_ids": ids, "attention_mask": mask}
        tokens = self.tokenizer(list(texts), padding=True if self.padding == "longest" else "max_length",
                                truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def _open_clip_tokenizer_module():
    """open_clip's self-contained tokenizer module, loaded on its own: importing the `open_clip` package builds
    its whole model zoo first (about 7 s per process)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the CLIP tokenizer needs open_clip_torch (pip install open_clip_torch)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "tokenizer.py")
    module_spec = importlib.util.spec_from_file_location("_tvts_open_clip_tokenizer", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except ImportError:  # the module grew package-relative imports: take the slow, ordinary route
        import open_clip.tokenizer as module
    return module


@TOKENIZERS.register("clip")
class ClipTokenizer:
    def __init__(self, name="", max_length=77, vocab_size=None):
        self.bpe_path, self.max_length = name, max_length
        self._load()
        check_vocabulary(self.vocab_size, self.name, vocab_size)

    def _load(self):
        module = _open_clip_tokenizer_module()
        self.bpe = module.SimpleTokenizer(self.bpe_path or module.default_bpe(), context_length=self.max_length)
        self.name = self.bpe_path or "CLIP BPE (open_clip_torch)"
        self.sot, self.eot = self.bpe.sot_token_id, self.bpe.eot_token_id

    def __getstate__(self):  # DataLoader workers under spawn/forkserver pickle the collate: rebuild the BPE there
        return {"bpe_path": self.bpe_path, "max_length": self.max_length}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._load()

    @property
    def vocab_size(self):
        return len(self.bpe.encoder)

    def __call__(self, texts):
        ids = self.bpe(list(texts), context_length=self.max_length)
        ends = ids.argmax(dim=1)  # the EOT, the highest id of every sequence
        ids = ids[:, :int(ends.max()) + 1].contiguous()
        mask = torch.arange(ids.shape[1])[None] <= ends[:, None]
        return {"input_ids": ids, "attention_mask": mask.to(torch.int64)}

    def decode(self, ids):
        ids = [int(i) for i in ids]
        ids = ids[1:ids.index(self.eot)] if self.eot in ids else ids[1:]
        return self.bpe.decode(ids).strip()


def check_vocabulary(size, name, vocab_size):
    """A tokenizer that loaded almost no vocabulary (transformers 5 builds a 5-token one when a vocab file is passed
    by keyword), or one larger than the text model's embedding table, is an error."""
    if size <= 5:
        raise ValueError(f"tokenizer {name} has only {size} tokens: its vocabulary did not load")
    if vocab_size is not None and size > vocab_size:
        raise ValueError(f"tokenizer {name} has {size} tokens but the text model's vocabulary has {vocab_size}: "
                         "token ids would fall outside the embedding table")


def build_tokenizer(kind, name="", max_length=None, vocab_size=None, padding="", truncation=""):
    """The tokenizer of a config's `tokenizer` entry; `max_length` None takes the kind's default (50 / 77),
    `padding` / `truncation` "" theirs (only the "huggingface" kind has a choice)."""
    kwargs = {"name": name, "vocab_size": vocab_size}
    if max_length is not None:
        kwargs["max_length"] = max_length
    for key, value in (("padding", padding), ("truncation", truncation)):
        if value:
            if kind != "huggingface":
                raise ValueError(f"tokenizer.{key} is a choice of the 'huggingface' tokenizer, not of {kind!r}")
            kwargs[key] = value
    return TOKENIZERS.build(kind, **kwargs)


def model_tokenizer(tokenizer_cfg, arch_args, model):
    """The tokenizer a config's `tokenizer` entry names for `model` (by default the architecture's own), checked
    against the model's vocabulary and context length."""
    name = tokenizer_cfg.get("name") or type(model).default_tokenizer_name(arch_args)
    tokenizer = build_tokenizer(tokenizer_cfg.get("type") or model.tokenizer, name,
                                tokenizer_cfg.get("max_length") or None, model.text_vocab_size,
                                tokenizer_cfg.get("padding", ""), tokenizer_cfg.get("truncation", ""))
    if tokenizer.max_length > model.text_context_length:
        raise ValueError(f"tokenizer.max_length {tokenizer.max_length} exceeds the text tower's context of "
                         f"{model.text_context_length} positions")
    return tokenizer
