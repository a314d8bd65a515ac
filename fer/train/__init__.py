"""Training: the config and its choices (config), the Keras loop (loop), the run directory it writes
(run_dir), background jobs (jobs) and the queue they wait in (job_queue), heavy tasks in a child
process (tasks), runs in words and tables (reports), knowledge distillation (distill) and CPU facts
(hardware)."""
