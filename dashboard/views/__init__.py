"""Dashboard pages, one script per page (run by the router in ``dashboard/app.py``)."""
