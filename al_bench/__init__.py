"""al_bench."""
