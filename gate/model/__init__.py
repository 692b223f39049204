"""The model: an aligned crop in, an L2-normalised embedding out (model cards, backbones, the dlib port and its
file format, the embedder, scoring)."""
