"""PyTorch: torch.nn, eager or compiled; SyncBatchNorm under torch.distributed; exported to ONNX and run in
onnxruntime (``torch.onnx``)."""

from ..framework import Framework

FRAMEWORK = Framework("torch", {"torch": ".layers:TorchAdapter", "torch.onnx": ".exported:ExportedAdapter"},
                      distributions=("torch",), extra="torch",
                      family=("torch", "torch"))
