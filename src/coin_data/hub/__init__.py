"""The Hub side of a built folder: atomic layout, dataset card, stats, publishing, re-mining."""
