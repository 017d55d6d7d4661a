"""Reward models: Bradley-Terry training on the project's preference pairs
(docs/architecture.md, "Reward models").

- `data`: plain preference pairs, the final-label rules and the split by prompt (no torch).
- `trainer`: the training loop as a loop object with named steps (`RewardTraining`: setup,
  step, evaluate, finish), evaluation and the truncation policy (torch and transformers are
  imported inside its functions, so importing this package stays cheap for the web process);
  devices, autocast and padding come from `scoring.local_models`, shared with the judge.
- `checkpoint`: save / load a trained reward model (safetensors + tokenizer + JSON card) and
  score texts with it; `base_model_path` resolves the offline base-model presets.
- `runs`: reward-model runs on Celery workers (start, execute, cancel, reap, retrain as labels
  arrive, score pairs); `tasks`: their Celery tasks.
"""
