"""ONNX Runtime: sessions built from ONNX operators."""

from ..framework import Framework

FRAMEWORK = Framework("onnxruntime", {"onnxruntime": ".layers:OnnxRuntimeAdapter"},
                      distributions=("onnx", "onnxruntime"), extra="onnx", family=("ONNX Runtime", "onnxruntime"))
