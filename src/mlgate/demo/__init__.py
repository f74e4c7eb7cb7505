"""The demo: a synthetic loan dataset, its training code, and the end-to-end run of the secure pipeline."""
