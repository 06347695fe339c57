"""The transcript encoder: a Hugging Face model and the official rule for turning its output into one vector."""
import os

from transformers import AutoConfig, AutoModel

from .registry import TEXT_ENCODERS

TEXT_PARAM_KEYS = ("model", "pretrained", "config", "input")


@TEXT_ENCODERS.register("huggingface")
def build_text_model(model, pretrained=True, config=None, input=None):
    """Build the HF encoder named by `model` (hub name or local directory).

    `pretrained=False` builds the architecture without weights, for loading a full TVTS checkpoint or for tiny
    test models: from the directory's config.json when `model` is a directory, otherwise from the library
    defaults of the model type in `config["model_type"]` or in the name (`distilbert*`, `bert*`), which equal
    distilbert-base-uncased and bert-base-uncased. `config` overrides fields of that configuration. Nothing is
    downloaded unless `pretrained=True` names a hub model. `input` is an unused key of the official configs.
    """
    overrides = dict(config or {})
    if pretrained:
        return AutoModel.from_pretrained(model, **overrides)
    if os.path.isdir(model):
        cfg = AutoConfig.from_pretrained(model, local_files_only=True, **overrides)
    else:
        model_type = overrides.pop("model_type", None) or _model_type_from_name(model)
        cfg = AutoConfig.for_model(model_type, **overrides)
    return AutoModel.from_config(cfg)


def _model_type_from_name(name):
    base = os.path.basename(str(name).rstrip("/"))
    for model_type in ("distilbert", "bert"):
        if base.startswith(model_type):
            return model_type
    raise ValueError(f"text_params.model={name!r} is neither a local directory nor a distilbert*/bert* name: with "
                     "pretrained=false give a directory holding config.json or set text_params.config.model_type")


def encode_text(text_model, text):
    """Tokenizer output for N transcripts -> (N, hidden) features.

    The official rule: DistilBERT's first-token ([CLS]) hidden state; BERT's pooler output computed from
    input_ids and attention_mask; any other model's pooler output.
    """
    model_type = text_model.config.model_type
    if model_type == "distilbert":
        return text_model(input_ids=text["input_ids"], attention_mask=text["attention_mask"]).last_hidden_state[:, 0]
    if model_type == "bert":
        return text_model(text["input_ids"], attention_mask=text["attention_mask"]).pooler_output
    return text_model(**text).pooler_output
