"""Tasks: everything method-specific in pretraining and validation, behind one interface.

The trainer and `evaluate()` only call a task: `attach(model, datasets, tokenizer)` once, before any resume, with
the network, the training datasets and the tokenizer of the batches; `set_epoch(epoch)` at the start of each training epoch;
`training_losses(net, batch)` returns a dict of named 0-d losses with "total" (the one back-propagated);
`validation_outputs(net, batch)` returns per-clip tensors that are gathered over ranks and handed to
`validation_metrics(outputs)`; `find_unused_parameters(datasets)` tells DDP whether some parameters get no gradient
on some batches; `state_dict()` / `load_state_dict()` hold any state that must survive a resume (none for TVTS;
CPD's memory banks, SimVTP's step count). A task is chosen by the config's `loss.type`, the objective it drives.
"""
import functools

import numpy as np
import torch

from model import OBJECTIVES, sim_matrix
from model.memory_bank import draw_slots
from model.simvtp import mask_words
from utils.amp import autocast, autocast_dtype
from utils.distributed import all_reduce_sum, gather_rows, gather_with_grad, rank, world_size
from utils.registry import Registry

from .metrics import retrieval_metrics, sort_accuracy

TASKS = Registry("task (loss.type)")
RETRIEVAL_KEYS = ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR", "v2t_R1", "v2t_R5", "v2t_R10", "v2t_MedR")


def format_retrieval(m):
    return (f"t2v R@1/5/10 {m['t2v_R1']:.1f}/{m['t2v_R5']:.1f}/{m['t2v_R10']:.1f} MedR {m['t2v_MedR']:.0f}, "
            f"v2t R@1/5/10 {m['v2t_R1']:.1f}/{m['v2t_R5']:.1f}/{m['v2t_R10']:.1f} MedR {m['v2t_MedR']:.0f}")


class Task:
    """The interface; see the module docstring. `summary_keys`: the metrics a results table shows (() = all)."""

    summary_keys = ()

    def __init__(self, cfg, device):
        self.cfg, self.device = cfg, device

    def attach(self, model, datasets, tokenizer=None):
        pass

    def set_epoch(self, epoch):
        pass

    def find_unused_parameters(self, datasets):
        return False

    def training_losses(self, net, batch):
        raise NotImplementedError

    def validation_outputs(self, net, batch):
        raise NotImplementedError

    def validation_metrics(self, outputs):
        raise NotImplementedError

    def format_metrics(self, metrics):
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, but the checkpoint holds {sorted(state)}")


@TASKS.register("TVTSLoss")
class TranscriptSortTask(Task):
    """TVTS and TVTSv2: NormSoftmax over the video and text embeddings gathered from every rank (the gradient flows
    back as `trainer.gather` says) plus the weighted transcript-sort cross-entropy; validation reports text-video
    retrieval and sort accuracy.

    The network runs under the configured autocast; the loss is computed in fp32 (`trainer.fp32_loss`, default)
    or in the dtype the network returned (the official H/14 recipe computes it in fp16).
    """

    summary_keys = RETRIEVAL_KEYS + ("sort_acc", "sort_order_acc")

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        t = cfg["trainer"]
        self.loss = OBJECTIVES.build(cfg["loss"]["type"], **(cfg["loss"]["args"] or {}))
        self.gather, self.fp32_loss = t["gather"], t["fp32_loss"]
        self.dtype = autocast_dtype(t["precision"], self.device)

    def find_unused_parameters(self, datasets):
        """The sort head gets no gradient on single-caption batches (WebVid, CC3M) or without its loss; the
        projections and (with the stop-gradient) the text tower none without the contrastive loss."""
        return any(dataset.texts_per_sample == 1 for dataset in datasets) or not (self.loss.nce_weight and
                                                                                  self.loss.sort_weight)

    def _forward(self, net, batch):
        text = {k: v.to(self.device, non_blocking=True) for k, v in batch["text"].items()}
        inputs = {"text": text, "video": batch["video"].to(self.device, non_blocking=True),
                  "keep_ind": batch.get("keep_ind")}
        with autocast(self.device, self.dtype):
            return net(inputs)

    def training_losses(self, net, batch):
        text, video, logits = self._forward(net, batch)
        if self.fp32_loss:
            text, video = text.float(), video.float()
            logits = None if logits is None else logits.float()
        return self.loss(gather_with_grad(video, self.gather), gather_with_grad(text, self.gather), logits,
                         batch["label"].to(self.device, non_blocking=True))

    @torch.no_grad()
    def validation_outputs(self, net, batch):
        text, video, logits = self._forward(net, batch)
        out = {"text": text.float(), "video": video.float()}
        if logits is not None:
            out["sort_logits"], out["sort_labels"] = logits.float(), batch["label"].to(self.device)
        return out

    def validation_metrics(self, outputs):
        """Text-to-video and video-to-text R@1/5/10/50, MedR, MeanR (a clip's text is the mean of its transcript
        embeddings), and the sort accuracy per transcript and per whole order when the clips carry K > 1."""
        metrics = retrieval_both_ways(outputs["text"], outputs["video"])
        if "sort_logits" in outputs:
            positions = self.loss.sort_positions(outputs["sort_logits"].cpu())
            metrics.update(sort_accuracy(positions, outputs["sort_labels"].cpu()))
        return metrics

    def format_metrics(self, m):
        line = format_retrieval(m)
        if "sort_acc" in m:
            line += f", sort acc {m['sort_acc']:.1f}% (whole order {m['sort_order_acc']:.1f}%)"
        return line


def retrieval_both_ways(text, video):
    """Text-to-video (optimistic ties) and video-to-text (averaged ties) ranks of unit-norm embeddings."""
    sims = sim_matrix(text, video).cpu().numpy()
    metrics = {f"t2v_{k}": v for k, v in retrieval_metrics(sims).items()}
    metrics.update({f"v2t_{k}": v for k, v in retrieval_metrics(sims.T, ties="averaged").items()})
    return metrics


@TASKS.register("CPDLoss")
class PairDiscriminationTask(Task):
    """CPD: memory-bank NCE between each clip's video and caption embeddings (`model.memory_bank`), with the
    curriculum that keeps the text tower frozen (no gradient) for the first `text_freeze_epochs` epochs.

    The banks hold one slot per training instance (the dataset index a sample reports, which follows a replaced
    sample), live here rather than in the network (so DDP never broadcasts them), are updated after every batch
    with the features and indices of every rank, and are saved with the normalisers and the step count in the
    checkpoint, so a resumed run continues exactly. The loss is computed in fp32 under any autocast. Negatives are
    drawn from a generator seeded by (seed, rank, step): different on each rank, identical on a resume. Validation
    reports text-video retrieval on the validation clips, as the official."""

    summary_keys = RETRIEVAL_KEYS

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.loss = OBJECTIVES.build(cfg["loss"]["type"], **(cfg["loss"]["args"] or {})).to(self.device)
        self.dtype = autocast_dtype(cfg["trainer"]["precision"], self.device)
        self.seed, self.epoch, self.steps = cfg["seed"], 1, 0

    def attach(self, model, datasets, tokenizer=None):
        if len(datasets) != 1:
            raise ValueError(f"CPD trains on one dataset (its memory banks hold one slot per instance), got "
                             f"{len(datasets)} loaders")
        if datasets[0].texts_per_sample != 1:
            raise ValueError(f"CPD pairs each clip with one caption; the training dataset gives "
                             f"{datasets[0].texts_per_sample} (YT-Temporal: set n_trans 1)")
        instances = getattr(datasets[0], "num_instances", len(datasets[0]))  # a shard stream knows the total
        if instances is None:
            raise ValueError("CPD's memory banks need each sample's row index: pack the corpus with "
                             "`python -m data_loader.prepare shards` (video2dataset's shards carry none)")
        generator = torch.Generator().manual_seed(self.seed)  # the same banks on every rank
        self.loss.reset(instances, model.embed_dim, generator)

    def set_epoch(self, epoch):
        self.epoch = epoch

    @property
    def text_frozen(self):
        return self.epoch <= self.loss.text_freeze_epochs

    def find_unused_parameters(self, datasets):
        return self.loss.text_freeze_epochs > 0

    def _forward(self, net, batch, text_grad=True):
        inputs = {"text": {k: v.to(self.device, non_blocking=True) for k, v in batch["text"].items()},
                  "video": batch["video"].to(self.device, non_blocking=True), "text_grad": text_grad}
        with autocast(self.device, self.dtype):
            text, video = net(inputs)
        return text.float(), video.float()

    def _mean_over_ranks(self, value):
        return all_reduce_sum([value], self.device)[0] / world_size()

    def _generator(self):
        return step_generator(self.seed, self.steps, self.device)

    def training_losses(self, net, batch):
        text, video = self._forward(net, batch, text_grad=not self.text_frozen)
        index = batch["index"].to(self.device)
        slots = draw_slots(index, self.loss.num_negatives, self.loss.num_instances, self._generator(),
                           self.loss.exclude_positive)
        probs_v, probs_t = self.loss.probabilities(video, text, slots, self._mean_over_ranks)
        self.loss.update(gather_rows(video.detach()), gather_rows(text.detach()), gather_rows(index))
        self.steps += 1
        losses = self.loss(probs_v, probs_t)
        losses["acc"] = (probs_v.detach().argmax(1) == 0).float().mean() * 100
        return losses

    @torch.no_grad()
    def validation_outputs(self, net, batch):
        text, video = self._forward(net, batch)
        return {"text": text, "video": video}

    def validation_metrics(self, outputs):
        return retrieval_both_ways(outputs["text"], outputs["video"])

    def format_metrics(self, m):
        return format_retrieval(m)

    def state_dict(self):
        return {"memory": {k: v.cpu() for k, v in self.loss.state_dict().items()}, "steps": self.steps}

    def load_state_dict(self, state):
        if set(state) != {"memory", "steps"}:
            raise ValueError(f"a CPD checkpoint's task state holds 'memory' and 'steps', got {sorted(state)}")
        shapes = {k: tuple(v.shape) for k, v in state["memory"].items()}
        if shapes.get("vis_memory") != tuple(self.loss.vis_memory.shape):
            raise ValueError(f"the checkpoint's memory banks are {shapes.get('vis_memory')}, but this run's training "
                             f"set and embedding give {tuple(self.loss.vis_memory.shape)}")
        self.loss.load_state_dict({k: v.to(self.device) for k, v in state["memory"].items()})
        self.steps = int(state["steps"])


def step_generator(seed, step, device="cpu"):
    """A generator for the random draws of one training step: seeded by (seed, rank, step), so each rank draws
    differently and a resumed run draws what the uninterrupted one did."""
    return torch.Generator(device=device).manual_seed(
        int(np.random.SeedSequence([seed, rank(), step]).generate_state(1)[0]))


@TASKS.register("SimVTPLoss")
class MaskedVideoTextTask(Task):
    """SimVTP: the training batch's captions are word-masked here (the tokenizer's special ids are never chosen;
    each chosen word becomes its [MASK]), each caption's VTM negative clip is drawn, and the network returns the
    MVM, MLM and VTM losses and the features VTC reads; `SimVTPLoss` weights them. The draws come from a generator
    seeded by (seed, rank, step), so a resumed run continues exactly. Validation reports text-video retrieval of
    whole validation clips and their clean captions (the official validated nothing in pretraining)."""

    summary_keys = RETRIEVAL_KEYS

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.loss = OBJECTIVES.build(cfg["loss"]["type"], **(cfg["loss"]["args"] or {}))
        self.dtype = autocast_dtype(cfg["trainer"]["precision"], self.device)
        self.gather, self.seed, self.steps = cfg["trainer"]["gather"], cfg["seed"], 0
        self.special_ids = self.mask_id = None

    def attach(self, model, datasets, tokenizer=None):
        if any(dataset.texts_per_sample != 1 for dataset in datasets):
            raise ValueError("SimVTP pairs each clip with one caption; a training dataset gives more (YT-Temporal: set "
                             "n_trans 1)")
        hf = getattr(tokenizer, "tokenizer", None)
        if hf is None or hf.mask_token_id is None:
            raise ValueError("SimVTP's word masking needs a Hugging Face tokenizer with a [MASK] token")
        self.special_ids, self.mask_id = sorted(hf.all_special_ids), hf.mask_token_id

    def find_unused_parameters(self, datasets):
        return not all(self.loss.weights.values())

    def training_losses(self, net, batch):
        if self.special_ids is None:
            raise RuntimeError("attach() the task to its tokenizer before training")
        generator = step_generator(self.seed, self.steps)
        ids, labels = mask_words(batch["text"]["input_ids"], self.special_ids, self.mask_id,
                                 self.loss.word_mask_ratio, generator)
        draws = torch.rand(len(ids), generator=generator)
        to = functools.partial(torch.Tensor.to, device=self.device, non_blocking=True)
        text = {"input_ids": to(ids), "attention_mask": to(batch["text"]["attention_mask"])}
        inputs = {"video": to(batch["video"]), "keep_ind": batch.get("keep_ind"), "text": text,
                  "mlm_labels": to(labels), "vtm_draws": to(draws), "options": self.loss.model_options(),
                  "contrast_ids": to(batch["text"]["input_ids"]) if self.loss.contrast_text == "clean" else None}
        if inputs["keep_ind"] is not None:
            inputs["keep_ind"] = to(inputs["keep_ind"])
        self.steps += 1
        with autocast(self.device, self.dtype):
            out = net(inputs)
        return self.loss(out, self.gather)

    @torch.no_grad()
    def validation_outputs(self, net, batch):
        inputs = {"mode": "embed", "video": batch["video"].to(self.device),
                  "text": {k: v.to(self.device) for k, v in batch["text"].items()}}
        with autocast(self.device, self.dtype):
            text, video = net(inputs)
        return {"text": text.float(), "video": video.float()}

    def validation_metrics(self, outputs):
        return retrieval_both_ways(outputs["text"], outputs["video"])

    def format_metrics(self, m):
        return format_retrieval(m)

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        if set(state) != {"steps"}:
            raise ValueError(f"a SimVTP checkpoint's task state holds 'steps', got {sorted(state)}")
        self.steps = int(state["steps"])


def build_task(cfg, device):
    """The task that drives the config's objective (`loss.type`)."""
    return TASKS.build(cfg["loss"]["type"], cfg, torch.device(device))
