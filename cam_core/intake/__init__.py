"""Intake: every image that enters CAM Lens (files, uploads, URLs) goes through here."""
