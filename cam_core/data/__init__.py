"""Data: image sources (Pets, folders, the demo), the seeded split, and the demo generator."""
