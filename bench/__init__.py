"""Benchmarks of koboldchat: relay overhead, concurrency, memory, database writes and
history views, each measured side by side with a direct connection (`bench/run_all.py`)."""
