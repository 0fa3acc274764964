"""Inference code for the SageMaker TensorFlow Serving container, shipped as ``code/inference.py``."""
