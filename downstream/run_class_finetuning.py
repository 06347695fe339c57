"""Entry point: `python -m downstream.run_class_finetuning --help` (or `torchrun ... -m downstream.run_class_finetuning`)."""
from downstream.args import get_args
from downstream.finetune import main

if __name__ == "__main__":
    main(get_args("finetune"))
