"""Pure tensor kernels. Every score function returns higher = query first."""
