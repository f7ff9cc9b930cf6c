"""Restoring images: the pipeline (Restorer), the hole's pre-fill and refinement, the colour post-process, batches,
ONNX."""
