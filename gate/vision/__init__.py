"""Vision: a camera frame or a photo in, graded aligned face crops out (sources, image reading, MTCNN detection,
following a face between frames, alignment onto a model's crop template, the quality gate)."""
