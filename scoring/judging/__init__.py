"""The LM judge: prompt building, score combination (pure), and the model backends.

Backends import torch / transformers / httpx lazily, inside their own modules, so that the web
process and most tests never load them.
"""
