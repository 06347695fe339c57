"""Entry point: `python -m downstream.run_class_linear --help` (or `torchrun ... -m downstream.run_class_linear`)."""
from downstream.args import get_args
from downstream.finetune import main

if __name__ == "__main__":
    main(get_args("linear"))
