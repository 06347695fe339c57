"""Tokenizers (CLIP BPE, Hugging Face) and maskers (per tubelet slot, tube), as the data workers use them."""
import numpy as np
import pytest
import torch

from data_loader.masking import MASKERS, build_masker
from data_loader.tokenizers import TOKENIZERS, build_tokenizer

# ids written by the official `clip.tokenize(texts, truncate=True)` (TencentARC/TVTS v2/CLIP)
OFFICIAL_IDS = {
    "a person dancing": [49406, 320, 2533, 6226, 49407],
    "Hello, World!  &amp; café": [49406, 3306, 267, 1002, 256, 261, 15304, 49407],
    "a person jumping over a fence": [49406, 320, 2533, 11476, 962, 320, 12679, 49407],
}


@pytest.fixture(scope="module")
def clip_tokenizer():
    return build_tokenizer("clip")


def test_clip_tokenizer_writes_the_official_ids_padded_to_the_longest(clip_tokenizer):
    texts = list(OFFICIAL_IDS)
    out = clip_tokenizer(texts)
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.dtype == torch.int64 and ids.shape == (3, 8) and clip_tokenizer.vocab_size == 49408
    for row, text in enumerate(texts):
        expected = OFFICIAL_IDS[text]
        assert ids[row, :len(expected)].tolist() == expected and not ids[row, len(expected):].any()
        assert mask[row].tolist() == [1] * len(expected) + [0] * (8 - len(expected))
    assert clip_tokenizer.decode(ids[2]) == "a person jumping over a fence"


def test_clip_tokenizer_truncates_to_the_context_with_eot_last(clip_tokenizer):
    ids = clip_tokenizer(["word " * 100, ""])["input_ids"]
    assert ids.shape == (2, 77) and ids[0, -1] == 49407 and ids[0, -2] == 2653
    assert ids[1, :2].tolist() == [49406, 49407]
    short = build_tokenizer("clip", max_length=6)(["word " * 100])["input_ids"]
    assert short.shape == (1, 6) and short[0, -1] == 49407


def test_token_zero_is_a_word_not_padding_and_the_tokenizer_pickles(clip_tokenizer):
    import pickle
    out = clip_tokenizer(["!(", "a person dancing"])  # "!" is token 0
    ids = out["input_ids"]
    assert ids[0].tolist() == [49406, 0, 263, 49407, 0] and ids[1].tolist() == OFFICIAL_IDS["a person dancing"]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert clip_tokenizer.decode(ids[0]) == "!("
    alone = clip_tokenizer(["!("])["input_ids"]
    assert alone.tolist() == [[49406, 0, 263, 49407]]  # trimming never cuts the EOT
    again = pickle.loads(pickle.dumps(clip_tokenizer))
    assert torch.equal(again(["!(", "wow!"])["input_ids"], clip_tokenizer(["!(", "wow!"])["input_ids"])


def test_tokenizer_vocabulary_must_fit_the_text_model(clip_tokenizer):
    with pytest.raises(ValueError, match="49408 tokens.*1000"):
        build_tokenizer("clip", vocab_size=1000)
    assert TOKENIZERS.names() == ["clip", "huggingface"]
    with pytest.raises(ValueError, match="unknown tokenizer.*known"):
        build_tokenizer("sentencepiece")


@pytest.mark.parametrize("ratio, patches, n_keep", [(0.0, 49, 49), (0.5, 196, 98), (0.7, 256, 76), (0.75, 196, 49)])
def test_tube_masks_keep_the_official_counts_shared_by_every_frame(ratio, patches, n_keep):
    patch = {49: 32, 196: 16, 256: 14}[patches]
    masker = build_masker("tube", ratio, input_res=224, patch_size=patch)
    keep = masker(12, np.random.default_rng(0))
    assert keep.shape == (n_keep,) and keep.dtype == np.int64
    assert len(set(keep.tolist())) == n_keep and keep.min() >= 0 and keep.max() < patches
    np.testing.assert_array_equal(keep, masker(12, np.random.default_rng(0)))
    if ratio == 0:
        assert sorted(keep.tolist()) == list(range(patches)) and keep.tolist() != list(range(patches))  # shuffled


def test_per_slot_masks_draw_each_tubelet_slot_apart():
    masker = build_masker("per_slot", 0.75, input_res=224, patch_size=16)
    keep = masker(16, np.random.default_rng(0))
    assert keep.shape == (8, 49) and len({tuple(row) for row in keep.tolist()}) == 8
    assert masker(2, np.random.default_rng(0)).shape == (1, 49) and masker(1, np.random.default_rng(0)).shape == (1, 49)
    with pytest.raises(ValueError, match="tubelets of 2"):
        masker.check_frames(15)


def test_masker_choices_and_errors():
    assert MASKERS.names() == ["per_slot", "tube", "videomae_tube"] and build_masker("none") is None
    with pytest.raises(ValueError, match="keeps no patch"):
        build_masker("tube", 0.999, input_res=32, patch_size=8)
    with pytest.raises(ValueError, match="unknown masker"):
        build_masker("random")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        build_masker("tube", 0.5, input_res=30, patch_size=8)
