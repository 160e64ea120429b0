"""Resource identifier transformers: rewrite identifiers stored on the server."""
