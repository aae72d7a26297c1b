"""Who is this voice closest to: speaker galleries and nearest-neighbour search."""
