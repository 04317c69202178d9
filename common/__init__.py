"""Shared code for the six studies: CLI flags, seeding, devices, tracking, metrics,
checkpoints, distributed training, reports and data loaders. Small and boring on purpose."""
