"""coin_data: build contrastive instruction datasets (CoIN) from instruction templates."""

__version__ = "0.1.0"
