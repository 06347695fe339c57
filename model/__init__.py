"""The networks of the TVTS family, their losses and checkpoint I/O (no data, no distributed code).

`build_model(config["arch"])` builds any registered architecture; `load_checkpoint(net, path)` loads a checkpoint of
its method (ours or the official release) strictly, with a report.
"""
from . import (clip_text, cpd, memory_bank, resnet3d, segment_sort, simvtp, sort_transformer,  # noqa: F401
               space_time_vit, text_encoder, video_transformer)
from .checkpoint import CheckpointError, load_checkpoint, load_mae_weights, read_checkpoint, strip_prefix
from .loss import OBJECTIVES, TVTSLoss, norm_softmax_loss, sim_matrix, sort_loss
from .registry import ARCHITECTURES, HEADS, TEXT_ENCODERS, VIDEO_ENCODERS, build_model
from .sort_transformer import SortTransformer
from .space_time_vit import SpaceTimeViT
from .tvts import TVTS
from .tvtsv2 import CLIP_CONFIGS, TVTSv2
from .video_transformer import VideoTransformer

__all__ = ["build_model", "load_checkpoint", "ARCHITECTURES", "VIDEO_ENCODERS", "TEXT_ENCODERS", "HEADS",
           "OBJECTIVES", "TVTS", "TVTSv2", "CLIP_CONFIGS", "VideoTransformer", "SpaceTimeViT", "SortTransformer",
           "TVTSLoss", "sim_matrix", "norm_softmax_loss", "sort_loss", "CheckpointError", "read_checkpoint",
           "load_mae_weights", "strip_prefix"]
