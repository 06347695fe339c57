"""SimVTP (Ma et al. 2022; the official code is the release commit kept in wufeim/SimVTP): one VideoMAE ViT reads
visible video tubes, caption words (BERT's embedding layer in front) or both joined, and is trained by masked video
modelling (MVM: a small VideoMAE decoder regresses per-tube normalised pixels of the masked tubes), masked
language modelling (MLM), video-text contrast (VTC) and video-text matching (VTM).

Parameter names are the official ones (`encoder.*`, `decoder.*`, `encoder_to_decoder`, `mask_token`,
`text_embeddings.*`, `text_cls`, `vtm_head`); VideoMAE's pretraining checkpoints use the same names for their
part, so `load_videomae_weights` loads one as it is, strictly, and reports what it leaves at initialisation.

`model(inputs)` returns the MVM, MLM and VTM losses and the unimodal features VTC needs (`SimVTPLoss` weights the
terms and computes VTC, over the local batch or gathered); with `inputs["mode"] == "embed"` it returns unit-norm
(text, video) embeddings of whole videos and clean captions, for validation; `compute_text` / `compute_video` give
them to the zero-shot protocols and feature extraction, as for the other architectures.
"""
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.distributed import gather_with_grad

from . import checkpoint
from .blocks import Block, QVBiasAttention, run_blocks
from .loss import OBJECTIVES, norm_softmax_loss, sim_matrix
from .registry import ARCHITECTURES, TEXT_ENCODERS, VIDEO_ENCODERS
from .transcript_sort import check_keys
from .video_transformer import TubeletEmbed

log = logging.getLogger(__name__)

PAD_BIAS = -10000.0  # the official additive attention mask for padding
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VIDEO_KEYS = ("img_size", "patch_size", "num_frames", "tubelet_size", "embed_dim", "depth", "num_heads", "mlp_ratio",
              "drop_path_rate", "attention", "grad_checkpointing")
DECODER_KEYS = ("embed_dim", "depth", "num_heads", "mlp_ratio", "attention", "grad_checkpointing")
TEXT_KEYS = ("model", "pretrained", "config")
POOLS = ("mean", "masked_mean")
VIDEOMAE_PARTS = ("encoder.", "decoder.", "encoder_to_decoder.", "mask_token")


def sinusoid_table(positions, dim):
    """(1, positions, dim) float32 fixed positions (VideoMAE's): angle p / 10000^(2 (j // 2) / dim), the sine on
    even j and the cosine on odd j, computed in float64."""
    p = torch.arange(positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim)
    angles = p / torch.pow(torch.tensor(10000.0, dtype=torch.float64), (2 * (j // 2)).double() / dim)
    return torch.where(j % 2 == 0, torch.sin(angles), torch.cos(angles)).float()[None]


def xavier_init(module):
    """The official initialisation of every Linear (Xavier-uniform weight, zero bias) and LayerNorm (1, 0) below
    `module`; convolutions keep PyTorch's default."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def vit_blocks(dim, depth, num_heads, mlp_ratio, attention, drop_path_rate=0.0):
    """VideoMAE's pre-norm blocks: q and v biases, LayerNorm eps 1e-6, stochastic depth growing with depth."""
    rates = torch.linspace(0, drop_path_rate, depth).tolist()
    return nn.ModuleList(Block(dim, num_heads, mlp_ratio, qkv_bias=True, attention=attention, drop_path=rate,
                               attn_layer=QVBiasAttention) for rate in rates)


@VIDEO_ENCODERS.register("videomae_vit")
class VideoMAEEncoder(nn.Module):
    """VideoMAE's ViT without a CLS token: tubelet patches plus fixed sinusoidal positions (`embed`), then blocks
    and a final LayerNorm over any token sequence (`forward`: video tokens, text embeddings, or both joined, with
    an additive attention mask `bias` broadcast over the keys)."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 num_frames=16, tubelet_size=2, drop_path_rate=0.0, attention="sdpa", grad_checkpointing=False):
        super().__init__()
        if img_size % patch_size or num_frames % tubelet_size:
            raise ValueError(f"img_size {img_size} / patch_size {patch_size} and num_frames {num_frames} / "
                             f"tubelet_size {tubelet_size} must divide exactly")
        self.img_size, self.patch_size, self.tubelet_size, self.embed_dim = img_size, patch_size, tubelet_size, embed_dim
        self.num_frames, self.grad_checkpointing = num_frames, grad_checkpointing
        self.patches_per_frame = (img_size // patch_size) ** 2
        self.num_patches = self.patches_per_frame * (num_frames // tubelet_size)
        self.patch_embed = TubeletEmbed(in_chans, embed_dim, tubelet_size, patch_size)
        self.register_buffer("pos_embed", sinusoid_table(self.num_patches, embed_dim), persistent=False)
        self.blocks = vit_blocks(embed_dim, depth, num_heads, mlp_ratio, attention, drop_path_rate)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        xavier_init(self)

    def embed(self, video, visible=None):
        """video (B, T, 3, H, W) -> tokens with positions (B, N, D), time-major; `visible` (B, n) flat token
        indices keeps only those, in that order."""
        b, t, _, h, w = video.shape
        if (t, h, w) != (self.num_frames, self.img_size, self.img_size):
            raise ValueError(f"video must be (B, {self.num_frames}, 3, {self.img_size}, {self.img_size}), got "
                             f"{tuple(video.shape)}")
        x = self.patch_embed(video.transpose(1, 2))
        x = x + self.pos_embed.to(x.dtype)
        if visible is not None:
            x = x.gather(1, visible[..., None].expand(-1, -1, x.shape[-1]))
        return x

    def forward(self, tokens, bias=None):
        return self.norm(run_blocks(self.blocks, tokens, self.grad_checkpointing, bias=bias))


class VideoMAEDecoder(nn.Module):
    """VideoMAE's pixel decoder: blocks over [visible tokens; mask tokens], a LayerNorm and a Linear to the pixels of
    a tube, read at the last `num_masked` positions only."""

    def __init__(self, out_dim, embed_dim=384, depth=4, num_heads=6, mlp_ratio=4.0, attention="sdpa",
                 grad_checkpointing=False):
        super().__init__()
        self.grad_checkpointing = grad_checkpointing
        self.blocks = vit_blocks(embed_dim, depth, num_heads, mlp_ratio, attention)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, out_dim)
        xavier_init(self)

    def forward(self, x, num_masked):
        x = run_blocks(self.blocks, x, self.grad_checkpointing)
        return self.head(self.norm(x[:, -num_masked:]))


def bert_embeddings(text_params, dim):
    """(BERT's embedding layer, its config) from `text_params` (see `SimVTP`); only the embedding layer is built."""
    text = {"model": "bert-base-uncased", "pretrained": False, **(text_params or {})}
    bert = TEXT_ENCODERS.build("huggingface", text["model"], text["pretrained"],
                               {**(text.get("config") or {}), "num_hidden_layers": 0})
    if bert.config.model_type != "bert" or bert.config.hidden_size != dim:
        raise ValueError(f"text_params.model {text['model']!r} must be a BERT model as wide as the encoder ({dim}); "
                         f"it is a {bert.config.model_type} of width {bert.config.hidden_size}")
    return bert.embeddings, bert.config


def padding_bias(attention_mask, dtype):
    """Tokenizer attention mask (B, L) of 1/0 -> additive bias (B, L): 0 for tokens, -10000 for padding."""
    return (1 - attention_mask).to(dtype) * PAD_BIAS


def mask_words(ids, special_ids, mask_id, ratio, generator):
    """SimVTP's word masking: each token that is not special ([CLS], [SEP], [PAD], [UNK], [MASK]: the tokenizer's
    special ids) is chosen with probability `ratio`, and every chosen token becomes [MASK] (no random or kept
    tokens). Returns (masked ids, labels: the original id where chosen, -100 elsewhere)."""
    chosen = torch.rand(ids.shape, generator=generator) < ratio
    chosen &= ~torch.isin(ids, torch.as_tensor(list(special_ids), dtype=ids.dtype))
    return torch.where(chosen, torch.full_like(ids, mask_id), ids), torch.where(chosen, ids, torch.full_like(ids, -100))


def pixel_targets(video, tubelet, patch, normalise=True):
    """MVM targets (B, N, tubelet * patch^2 * 3) of ImageNet-normalised video (B, T, 3, H, W): pixels back in
    [0, 1], each tube's values per colour channel normalised by their mean and unbiased std (+ 1e-6) over the
    tube's tubelet * patch^2 positions, flattened position-major with the channel fastest (the official order)."""
    mean = video.new_tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = video.new_tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    x = video * std + mean
    b, t, c, h, w = x.shape
    x = x.reshape(b, t // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3).reshape(b, -1, tubelet * patch * patch, c)
    if normalise:
        x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return x.reshape(b, x.shape[1], -1)


def pool_tokens(tokens, keep, pool):
    """The mean over the token axis (pool "mean", official: every token); with "masked_mean", over the tokens
    `keep` (B, N) marks only."""
    if pool == "mean" or keep is None:
        return tokens.mean(1)
    keep = keep.to(tokens.dtype)[..., None]
    return (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)


def gather_tokens(x, index):
    """x (B, N, D), index (B, n) -> (B, n, D)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


@ARCHITECTURES.register("SimVTP")
class SimVTP(nn.Module):
    """Arguments (all from `arch.args`):

    video_params: the encoder's `VIDEO_KEYS` (ViT-B/16 on 16 x 224^2 frames, tubelet 2: the defaults).
    decoder_params: the MVM decoder's `DECODER_KEYS` (official: 384 wide, 4 blocks, 6 heads).
    text_params: `model` (a BERT name or local directory; official bert-base-uncased), `pretrained` (true: its
        embedding layer's weights; false: built from its config, for tiny models or loading a whole checkpoint) and
        `config` (overrides of that config). Only BERT's embedding layer is kept: the ViT blocks are the text
        encoder, so its width must equal the encoder's.
    pool: "mean" (official: the mean over every token of a pass, caption padding included, so a caption's feature
        depends on the longest caption of its batch) or "masked_mean" (padding left out).
    load_videomae: a VideoMAE pretraining checkpoint loaded into the encoder, decoder, `encoder_to_decoder` and
        `mask_token` (the official start, VideoMAE ViT-B on Kinetics-400); "" keeps the initialisation.
    load_checkpoint: a SimVTP checkpoint of ours, loaded strictly after building.
    """

    tokenizer = "huggingface"
    masking = "videomae_tube"
    ignored_checkpoint_keys = ("text_embeddings.position_ids",)  # a buffer older transformers versions saved

    @staticmethod
    def check_args(video_params=None, decoder_params=None, text_params=None, pool="mean", **_):
        check_keys(video_params or {}, VIDEO_KEYS, "video_params")
        check_keys(decoder_params or {}, DECODER_KEYS, "decoder_params")
        check_keys(text_params or {}, TEXT_KEYS, "text_params")
        if pool not in POOLS:
            raise ValueError(f"arch.args.pool must be one of {POOLS}, got {pool!r}")

    @staticmethod
    def patches_per_frame(args):
        video = args.get("video_params") or {}
        return (video.get("img_size", 224) // video.get("patch_size", 16)) ** 2

    @staticmethod
    def default_tokenizer_name(args):
        return (args.get("text_params") or {}).get("model", "bert-base-uncased")

    @staticmethod
    def weight_files(args):
        files = []
        if args.get("load_videomae"):
            files.append(("arch.args.load_videomae", args["load_videomae"], "a VideoMAE pretraining checkpoint, e.g. "
                                                                             "ViT-B Kinetics-400 1600 epochs"))
        if args.get("load_checkpoint"):
            files.append(("arch.args.load_checkpoint", args["load_checkpoint"], ""))
        return files

    @staticmethod
    def architecture_only(args):
        return {**args, "load_videomae": "", "load_checkpoint": "",
                "text_params": {**(args.get("text_params") or {}), "pretrained": False}}

    def __init__(self, video_params=None, decoder_params=None, text_params=None, pool="mean", load_videomae="",
                 load_checkpoint=""):
        super().__init__()
        self.check_args(video_params, decoder_params, text_params, pool)
        self.encoder = VideoMAEEncoder(**(video_params or {}))
        dim, self.pool = self.encoder.embed_dim, pool
        decoder = dict(decoder_params or {})
        out_dim = 3 * self.encoder.tubelet_size * self.encoder.patch_size ** 2
        self.decoder = VideoMAEDecoder(out_dim, **decoder)
        dec_dim = self.decoder.head.in_features
        self.encoder_to_decoder = nn.Linear(dim, dec_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.register_buffer("decoder_pos_embed", sinusoid_table(self.encoder.num_patches, dec_dim), persistent=False)
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)  # official: truncated at one std
        self.text_embeddings, self.text_config = bert_embeddings(text_params, dim)
        self.text_cls = nn.Linear(dim, self.text_config.vocab_size)
        self.vtm_head = nn.Linear(dim, 2)
        xavier_init(self.text_cls)
        xavier_init(self.vtm_head)
        if load_videomae:
            load_videomae_weights(self, load_videomae)
        if load_checkpoint:
            checkpoint.load_checkpoint(self, load_checkpoint)
        self.train()

    @property
    def embed_dim(self):
        return self.encoder.embed_dim

    @property
    def text_vocab_size(self):
        return self.text_config.vocab_size

    @property
    def text_context_length(self):
        return self.text_config.max_position_embeddings

    # ------------------------------------------------------------------------------------------ pieces
    def visible_and_masked(self, keep_ind):
        """Spatial kept positions (B, n), the same in every temporal slot (tube masking) -> flat indices of the
        visible and of the masked tokens, each time-major and in increasing order (the official boolean masks)."""
        enc = self.encoder
        if keep_ind is None or keep_ind.ndim != 2:
            raise ValueError("SimVTP pretraining needs tube-masked clips: set the loader's masking to "
                             "'videomae_tube' (keep_ind (B, n_keep))")
        keep = keep_ind.sort(dim=1).values
        slots = torch.arange(enc.num_patches // enc.patches_per_frame, device=keep.device)
        visible = (slots[None, :, None] * enc.patches_per_frame + keep[:, None, :]).flatten(1)
        is_visible = torch.zeros(keep.shape[0], enc.num_patches, dtype=torch.bool, device=keep.device)
        is_visible.scatter_(1, visible, True)
        masked = torch.arange(enc.num_patches, device=keep.device).expand_as(is_visible)[~is_visible]
        return visible, masked.view(keep.shape[0], -1)

    def pooled(self, tokens, keep=None):
        return pool_tokens(tokens, keep, self.pool)

    def encode_text(self, ids, attention_mask, words=None):
        """The text-only pass: (B, D) pooled features of BERT embeddings through the encoder, padding masked."""
        words = self.text_embeddings(input_ids=ids) if words is None else words
        tokens = self.encoder(words, bias=padding_bias(attention_mask, words.dtype)[:, None, None])
        return self.pooled(tokens, attention_mask)

    def encode_video(self, video, visible=None, tubes=None):
        """The video-only pass: (B, D) mean of the encoder's tokens (all of them, or the `visible` ones)."""
        tubes = self.encoder.embed(video, visible) if tubes is None else tubes
        return self.encoder(tubes).mean(1)

    def joint(self, tubes, words, attention_mask):
        """[video tokens; text embeddings] through the encoder, text padding masked -> (B, Nv + L, D)."""
        bias = torch.cat([torch.zeros(tubes.shape[:2], dtype=words.dtype, device=words.device),
                          padding_bias(attention_mask, words.dtype)], dim=1)
        return self.encoder(torch.cat([tubes, words], dim=1), bias=bias[:, None, None])

    def joint_keep(self, num_video, attention_mask):
        return torch.cat([attention_mask.new_ones(attention_mask.shape[0], num_video), attention_mask], dim=1)

    # ------------------------------------------------------------------------------------------ evaluation
    @property
    def video_model(self):
        """The video tower, under the name the evaluation protocols read (frames, frame size)."""
        return self.encoder

    def compute_text(self, text):
        """Tokenizer output -> (pooled features (B, D), unit-norm embeddings (B, D)), as the other architectures'."""
        features = self.encode_text(text["input_ids"], text["attention_mask"])
        return features, F.normalize(features, dim=1)

    def compute_video(self, video, keep_ind=None):
        """video (B, T, 3, H, W), optional spatial kept positions -> (the encoder's tokens, unit-norm mean)."""
        visible = None if keep_ind is None else self.visible_and_masked(keep_ind)[0]
        tokens = self.encoder(self.encoder.embed(video, visible))
        return tokens, F.normalize(tokens.mean(1), dim=1)

    # ------------------------------------------------------------------------------------------ passes
    def forward(self, inputs):
        if inputs.get("mode") == "embed":
            return self.compute_text(inputs["text"])[1], self.compute_video(inputs["video"])[1]
        return self.pretrain(inputs)

    def pretrain(self, inputs):
        """inputs: `video` (B, T, 3, H, W), `keep_ind` (B, n) spatial kept positions, `text` (the word-masked ids and
        their attention mask), `mlm_labels` (B, L), `contrast_ids` (the ids the text-only and VTM passes read; None:
        the masked ones, as official, and the text-only pass shares the joint pass's embeddings), `vtm_draws` (B,) uniform numbers choosing each caption's negative video,
        `options` (the objective's `model_options()`). Returns the losses of the terms asked for and the unimodal
        features (`text_feature`, `video_feature`) for VTC."""
        opt = inputs["options"]
        video, text = inputs["video"], inputs["text"]
        ids, attention = text["input_ids"], text["attention_mask"]
        visible, masked = self.visible_and_masked(inputs["keep_ind"])
        tubes = self.encoder.embed(video, visible)
        nv = tubes.shape[1]
        words = self.text_embeddings(input_ids=ids)
        out = {}
        joint = None
        if opt["mvm"] or opt["mlm"] or (opt["vtm"] and opt["vtm_reuse_joint_pass"]):
            joint = self.joint(tubes, words, attention)
            if opt["mlm"]:
                labels = inputs["mlm_labels"]
                logits = self.text_cls(joint[:, nv:]).float()
                chosen = labels != -100
                # the official mean over chosen words is NaN when a batch chooses none; that batch counts 0 here
                out["mlm"] = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum") / \
                    chosen.sum().clamp(min=1)
                out["mlm_acc"] = ((logits.argmax(-1) == labels) & chosen).sum() / chosen.sum().clamp(min=1) * 100
            if opt["mvm"]:
                out["mvm"] = self.mvm_loss(video, joint[:, :nv], visible, masked, opt["norm_pix_target"])
        contrast = inputs.get("contrast_ids")
        if opt["vtc"] or (opt["vtm"] and opt["vtm_negatives"] == "hard"):
            out["text_feature"] = self.encode_text(ids if contrast is None else contrast, attention,
                                                   words if contrast is None else None)
            out["video_feature"] = self.encode_video(video, tubes=tubes)
        contrast = ids if contrast is None else contrast
        if opt["vtm"]:
            out.update(self.vtm_loss(tubes, contrast, attention, inputs["vtm_draws"], opt, out,
                                     joint if opt["vtm_reuse_joint_pass"] else None))
        return out

    def mvm_loss(self, video, encoded, visible, masked, normalise):
        """MSE between the decoder's pixels and the normalised targets of the masked tubes."""
        pos = self.decoder_pos_embed.to(encoded.dtype).expand(encoded.shape[0], -1, -1)
        x = torch.cat([self.encoder_to_decoder(encoded) + gather_tokens(pos, visible),
                       self.mask_token.to(encoded.dtype) + gather_tokens(pos, masked)], dim=1)
        prediction = self.decoder(x, masked.shape[1]).float()
        with torch.no_grad():
            target = gather_tokens(pixel_targets(video.float(), self.encoder.tubelet_size, self.encoder.patch_size,
                                                 normalise), masked)
        return F.mse_loss(prediction, target)

    def vtm_negatives(self, draws, opt, features):
        """For each caption i the index of another clip of the batch: uniform over the others (official), or with
        `vtm_negatives` "hard" drawn in proportion to exp(cos(t_i, v_j) / temperature) among the others."""
        b = draws.shape[0]
        if b < 2:
            raise ValueError("VTM pairs each caption with another clip of its batch: a batch needs two clips or more")
        if opt["vtm_negatives"] == "random":
            return (torch.arange(b, device=draws.device) + 1 + (draws * (b - 1)).long().clamp(max=b - 2)) % b
        with torch.no_grad():
            logits = sim_matrix(features["text_feature"].float(), features["video_feature"].float()) / opt["temperature"]
            weights = logits.fill_diagonal_(float("-inf")).softmax(dim=1)  # the own clip has weight exactly 0
            cdf = weights.cumsum(1)
            pick = torch.searchsorted(cdf, (draws[:, None] * cdf[:, -1:]).contiguous(), right=True).squeeze(1)
            columns = torch.arange(b, device=draws.device).expand(b, b)
            last = torch.where(weights > 0, columns, -1).max(dim=1).values  # where rounding runs past the end
            return torch.minimum(pick, last)

    def vtm_loss(self, tubes, ids, attention, draws, opt, features, joint=None):
        """Cross-entropy of matched (1) / unmatched (0) on the pooled joint pass of the B positive pairs and of the B
        captions paired with their negative clip (with that clip's own mask). Officially the positives run a second
        time with fresh text-embedding dropout; `joint` given (`vtm_reuse_joint_pass`) takes them from pass 1."""
        b = tubes.shape[0]
        neg = self.vtm_negatives(draws, opt, features)
        if joint is None:
            tubes_all = torch.cat([tubes, tubes[neg]])
            ids_all, attention_all = torch.cat([ids, ids]), torch.cat([attention, attention])
            tokens = self.joint(tubes_all, self.text_embeddings(input_ids=ids_all), attention_all)
            pooled = self.pooled(tokens, self.joint_keep(tubes.shape[1], attention_all))
        else:
            tokens = self.joint(tubes[neg], self.text_embeddings(input_ids=ids), attention)
            keep = self.joint_keep(tubes.shape[1], attention)
            pooled = torch.cat([self.pooled(joint, keep), self.pooled(tokens, keep)])
        logits = self.vtm_head(pooled).float()
        labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)]).to(logits.device)
        return {"vtm": F.cross_entropy(logits, labels), "vtm_acc": (logits.argmax(1) == labels).float().mean() * 100}


def load_videomae_weights(model, path):
    """Load a VideoMAE pretraining checkpoint (its `model` entry, or `module`, or the file's dict) into `model`'s
    encoder, decoder, `encoder_to_decoder` and `mask_token`, whose names and layout it shares (no key is renamed).
    Strict: every tensor of those parts must be in the file with its shape and the file may hold nothing else (a
    fine-tuned VideoMAE file, with `fc_norm` and `head`, is refused by name). Returns a report: the tensors loaded
    and the parts left at their initialisation (the text embeddings, the MLM and VTM heads)."""
    ckpt = checkpoint.read_checkpoint(path)
    state = next((ckpt[k] for k in ("model", "module") if isinstance(ckpt, dict) and k in ckpt), ckpt)
    if not isinstance(state, dict):
        raise checkpoint.CheckpointError(f"{path} holds no state dict (found {type(state).__name__})")
    state = checkpoint.strip_prefix(state)
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(VIDEOMAE_PARTS)}
    checkpoint.check_state_dict(expected, state, f"{path} (a VideoMAE pretraining checkpoint)")
    model.load_state_dict(state, strict=False)
    kept = sorted({k.split(".")[0] for k in model.state_dict() if k not in state})
    log.info("loaded %d VideoMAE tensors from %s; kept at their initialisation: %s", len(state), path, ", ".join(kept))
    return {"checkpoint": str(path), "loaded": len(state), "kept": kept}


def videomae_state_dict(model):
    """The VideoMAE part of a SimVTP model as a VideoMAE pretraining checkpoint's `model` entry (the inverse of
    `load_videomae_weights`)."""
    return {k: v for k, v in model.state_dict().items() if k.startswith(VIDEOMAE_PARTS)}


class SimVTPTower(VideoMAEEncoder):
    """One tower of SimVTP's retrieval model (the official fine-tuning `VisionTransformer`): the pretrained
    encoder's patch embedding, positions and blocks plus BERT's embedding layer, without the final LayerNorm (the
    official drops it), and a new LayerNorm `fc_norm` over the mean of the last block's tokens. Each tower holds
    both embeddings, as the official, and uses one."""

    def __init__(self, text_params=None, pool="mean", **video_params):
        super().__init__(**video_params)
        self.norm = nn.Identity()
        self.fc_norm = nn.LayerNorm(self.embed_dim, eps=1e-6)
        self.text_embeddings, self.text_config = bert_embeddings(text_params, self.embed_dim)
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool

    def encode_video(self, video):
        """video (B, T, 3, H, W) -> (B, D)."""
        return self.fc_norm(self(self.embed(video)).mean(1))

    def encode_text(self, ids, attention_mask):
        """Token ids and attention mask (B, L) -> (B, D): the mean over every position (official: padding included;
        pool "masked_mean": the caption's tokens only)."""
        words = self.text_embeddings(input_ids=ids)
        tokens = self(words, bias=padding_bias(attention_mask, words.dtype)[:, None, None])
        return self.fc_norm(pool_tokens(tokens, attention_mask, self.pool))


class SimVTPRetrieval(nn.Module):
    """SimVTP's MSR-VTT model (the official `DualVideoTextEncoder`): two independent towers, `video_encoder` and
    `text_encoder`, both started from the same pretraining checkpoint (`load_pretraining_weights`); the embeddings
    are compared by cosine similarity, with no projection. `forward(video, text)` -> (video (B, D), text (B, D))."""

    def __init__(self, video_params=None, text_params=None, pool="mean", drop_path_rate=0.1):
        super().__init__()
        video = {**(video_params or {}), "drop_path_rate": drop_path_rate}
        self.video_encoder = SimVTPTower(text_params, pool, **video)
        self.text_encoder = SimVTPTower(text_params, pool, **video)

    @classmethod
    def from_pretraining_args(cls, arch_args, drop_path_rate=0.1, pool=None):
        """The retrieval model of a SimVTP pretraining config's `arch.args` (no weights read)."""
        video = {k: v for k, v in (arch_args.get("video_params") or {}).items() if k != "drop_path_rate"}
        text = {**(arch_args.get("text_params") or {}), "pretrained": False}
        return cls(video, text, pool or arch_args.get("pool", "mean"), drop_path_rate)

    def forward(self, video, text):
        return (self.video_encoder.encode_video(video),
                self.text_encoder.encode_text(text["input_ids"], text["attention_mask"]))


PRETRAINING_ONLY = ("decoder.", "encoder_to_decoder.", "mask_token", "text_cls.", "vtm_head.", "encoder.norm.",
                    "text_embeddings.position_ids")


def load_pretraining_weights(model, path):
    """Start both towers of a `SimVTPRetrieval` from a SimVTP pretraining checkpoint (ours, `state_dict`; the
    official `model`; a DeepSpeed `module`; or a bare state dict, as the official loader accepts): `encoder.*` without its final LayerNorm and `text_embeddings.*` go into each tower, as the
    official loader maps them; `fc_norm` is new. Strict: every other tower tensor must be in the file with its
    shape, and the file may hold nothing but those and the pretraining-only parts (decoder, heads, final norm),
    which are reported. Returns the report."""
    ckpt = checkpoint.read_checkpoint(path)
    state = next((ckpt[k] for k in ("state_dict", "model", "module") if isinstance(ckpt, dict) and k in ckpt), ckpt)
    if not isinstance(state, dict):
        raise checkpoint.CheckpointError(f"{path} holds no state dict (a SimVTP pretraining checkpoint)")
    state = checkpoint.strip_prefix(state)
    unused = sorted(k for k in state if k.startswith(PRETRAINING_ONLY))
    tower = {k[len("encoder."):] if k.startswith("encoder.") else k: v for k, v in state.items() if k not in unused}
    expected = {k: v for k, v in model.video_encoder.state_dict().items() if not k.startswith("fc_norm.")}
    checkpoint.check_state_dict(expected, tower, f"{path} (SimVTP pretraining, mapped to a retrieval tower)")
    for part in (model.video_encoder, model.text_encoder):
        part.load_state_dict(tower, strict=False)
    log.info("both towers loaded %d tensors from %s; new: fc_norm; pretraining-only, not used: %s", len(tower), path,
             ", ".join(sorted({"encoder.norm" if k.startswith("encoder.") else k.split(".")[0] for k in unused})))
    return {"checkpoint": str(path), "loaded": len(tower), "unused": unused}


VTM_NEGATIVES = ("random", "hard")
CONTRAST_TEXTS = ("masked", "clean")


@OBJECTIVES.register("SimVTPLoss")
class SimVTPLoss(nn.Module):
    """SimVTP's objective: L = w_mvm MVM + w_mlm MLM + w_vtc VTC + w_vtm VTM (official: every weight 1; a term of
    weight 0 is not computed).

    word_mask_ratio: 0.75 (official, hard-coded there). temperature: VTC's NormSoftmax, 0.05.
    vtc_gather: false (official: VTC over each rank's local batch) or true (over every rank's, with gradient).
    vtm_negatives: "random" (official: another clip of the batch, uniformly) or "hard" (drawn by VTC similarity).
    contrast_text: "masked" (official: the text-only and VTM passes read the word-masked caption MLM made) or
        "clean" (they read the caption as tokenised).
    vtm_reuse_joint_pass: false (official: the positive pairs run through the encoder again) or true (the joint
        pass of MVM/MLM serves as VTM's positives; only the negatives run again).
    norm_pix_target: true (official; its flag could not be turned off) or false (raw [0, 1] pixels as targets).
    """

    def __init__(self, mvm_weight=1.0, mlm_weight=1.0, vtc_weight=1.0, vtm_weight=1.0, word_mask_ratio=0.75,
                 temperature=0.05, vtc_gather=False, vtm_negatives="random", contrast_text="masked",
                 vtm_reuse_joint_pass=False, norm_pix_target=True):
        super().__init__()
        if vtm_negatives not in VTM_NEGATIVES or contrast_text not in CONTRAST_TEXTS:
            raise ValueError(f"loss.args.vtm_negatives must be one of {VTM_NEGATIVES} and contrast_text one of "
                             f"{CONTRAST_TEXTS}; got {vtm_negatives!r}, {contrast_text!r}")
        if not 0 < word_mask_ratio < 1:
            raise ValueError(f"loss.args.word_mask_ratio must lie in (0, 1), got {word_mask_ratio}")
        self.weights = {"mvm": mvm_weight, "mlm": mlm_weight, "vtc": vtc_weight, "vtm": vtm_weight}
        if not any(self.weights.values()):
            raise ValueError("loss.args: every SimVTP term has weight 0")
        self.word_mask_ratio, self.temperature, self.vtc_gather = word_mask_ratio, temperature, vtc_gather
        self.vtm_negatives, self.contrast_text = vtm_negatives, contrast_text
        self.vtm_reuse_joint_pass, self.norm_pix_target = vtm_reuse_joint_pass, norm_pix_target

    def model_options(self):
        return {**{k: bool(w) for k, w in self.weights.items()}, "vtm_negatives": self.vtm_negatives,
                "vtm_reuse_joint_pass": self.vtm_reuse_joint_pass, "norm_pix_target": self.norm_pix_target,
                "temperature": self.temperature}

    def forward(self, out, gather="official"):
        """The model's outputs -> the named losses and their weighted `total` (VTC computed here)."""
        losses = {k: v for k, v in out.items() if not k.endswith("_feature")}
        if self.weights["vtc"]:
            text, video = out["text_feature"].float(), out["video_feature"].float()
            if self.vtc_gather:
                text, video = gather_with_grad(text, gather), gather_with_grad(video, gather)
            losses["vtc"] = norm_softmax_loss(sim_matrix(text, video), self.temperature)
        losses["total"] = sum(w * losses[k] for k, w in self.weights.items() if w)
        return losses
