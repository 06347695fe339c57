"""Entry point: `python -m downstream.run_class_zero --help` (or `torchrun ... -m downstream.run_class_zero`)."""
from downstream.args import get_args
from downstream.zero_shot import main

if __name__ == "__main__":
    main(get_args("zero"))
