"""The project's URLs: the signup form and the status of each signup's job."""

from __future__ import annotations

from django.urls import path
from signups import views

urlpatterns = [
    path("signups/", views.signup, name="signup"),
    path("signups/<int:job_id>/", views.signup_status, name="signup-status"),
]
