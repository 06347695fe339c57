"""The TVTS networks, their losses and checkpoint I/O (no data, no distributed code)."""
from .checkpoint import CheckpointError, load_mae_weights, load_tvts_checkpoint, read_checkpoint, strip_prefix
from .loss import TVTSLoss, norm_softmax_loss, sim_matrix, sort_loss
from .sort_transformer import SortTransformer
from .tvts import TVTS
from .video_transformer import VideoTransformer

__all__ = ["TVTS", "VideoTransformer", "SortTransformer", "TVTSLoss", "sim_matrix", "norm_softmax_loss",
           "sort_loss", "CheckpointError", "read_checkpoint", "load_tvts_checkpoint", "load_mae_weights",
           "strip_prefix"]
