"""Background tasks of a server: event listener, lease sweeper, event pruner, their loop."""
