"""Using a trained model: load it, embed audio files, store the embeddings."""
