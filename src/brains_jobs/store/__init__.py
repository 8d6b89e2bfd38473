"""Job stores: where jobs and their events live."""
