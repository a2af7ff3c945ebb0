"""The account layer: session, live tree, operations on nodes, shares, sources, transfers."""
