"""facerec: detect, embed and recognise faces with OpenCV's dnn module.

The scripts at the repository root are thin front ends over this package:
one module per concept (model files, detection, embedding, the embeddings
store, matching, video sources, drawing).
"""

__version__ = "0.1.0"
