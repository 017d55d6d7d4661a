"""Reward models: Bradley-Terry training on the project's preference pairs (DESIGN.md section 5).

- `data`: plain preference pairs, the final-label rules and the split by prompt (no torch).
- `trainer`: the training loop, evaluation and the truncation policy (torch and transformers are
  imported inside its functions, so importing this package stays cheap for the web process).
- `checkpoint`: save / load a trained reward model (safetensors + tokenizer + JSON card) and
  score texts with it; `base_model_path` resolves the offline base-model presets.
"""
