"""Renderers: turn results into what people read (text tables) and machines read (JSON)."""
