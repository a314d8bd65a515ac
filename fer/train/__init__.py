"""Training: the config and its choices (config), the Keras loop (loop), the run directory it writes
(run_dir), background jobs (jobs), runs in words and tables (reports), knowledge distillation
(distill) and CPU facts (hardware)."""
