"""nftables frontend: read `nft -j list ruleset`, model, render, compile to the IR."""
