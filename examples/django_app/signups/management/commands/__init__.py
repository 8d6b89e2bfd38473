"""`python manage.py send_welcome`."""
