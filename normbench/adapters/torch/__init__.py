"""PyTorch: torch.nn, eager; SyncBatchNorm under torch.distributed."""

from ..framework import Framework

FRAMEWORK = Framework("torch", {"torch": ".layers:TorchAdapter"}, distributions=("torch",), extra="torch",
                      family=("torch", "torch"))
