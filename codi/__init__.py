"""codi package."""
