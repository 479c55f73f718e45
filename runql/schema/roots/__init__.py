"""The root types: Query, Mutation, Subscription."""
