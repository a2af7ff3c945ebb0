"""The account's tree: node store, lookups, listing parser, cache, live updates."""
