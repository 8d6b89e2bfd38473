"""Signups: a form that enqueues a welcome email, and a page following its job."""
