"""CAM Lens dashboard: pages, the shared sidebar and the cached access to cam_core."""
