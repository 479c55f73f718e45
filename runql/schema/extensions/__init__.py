"""Schema extensions: error masking, operation log and span, viewer check, transport, limits."""
