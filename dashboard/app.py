"""CAM Lens dashboard: ``streamlit run dashboard/app.py``."""

from __future__ import annotations

import streamlit as st

from dashboard import links, review_panel, state

st.set_page_config(page_title="CAM Lens", page_icon=":material/search:", layout="wide")
state.keep_sidebar_choices()
review_panel.new_run()
linked_page = links.apply_once()

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("views/misclassified.py", title="Misclassified", icon=":material/error:"),
    st.Page("views/heatmaps.py", title="Class heatmaps", icon=":material/local_fire_department:"),
    st.Page("views/gallery.py", title="Gallery", icon=":material/photo_library:"),
    st.Page("views/review.py", title="Review errors", icon=":material/rate_review:"),
    st.Page("views/breeds.py", title="Breeds", icon=":material/pets:"),
    st.Page("views/compare.py", title="Compare methods", icon=":material/compare:"),
    st.Page("views/quality.py", title="Explanation quality", icon=":material/verified:"),
    st.Page("views/calibration.py", title="Calibration", icon=":material/speed:"),
    st.Page("views/try_photos.py", title="Try your photos", icon=":material/add_a_photo:"),
]

navigation = st.navigation(PAGES)
if linked_page is not None:  # a shared link's first run (only once per session)
    st.switch_page(linked_page, query_params=dict(st.query_params))
navigation.run()
