"""Management commands of the signups app."""
