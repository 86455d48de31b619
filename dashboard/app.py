"""CAM Lens dashboard: ``streamlit run dashboard/app.py``."""

from __future__ import annotations

import streamlit as st

from dashboard import state

st.set_page_config(page_title="CAM Lens", page_icon=":material/search:", layout="wide")
state.keep_sidebar_choices()

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("views/misclassified.py", title="Misclassified", icon=":material/error:"),
    st.Page("views/heatmaps.py", title="Class heatmaps", icon=":material/local_fire_department:"),
    st.Page("views/gallery.py", title="Gallery", icon=":material/photo_library:"),
    st.Page("views/breeds.py", title="Breeds", icon=":material/pets:"),
    st.Page("views/compare.py", title="Compare methods", icon=":material/compare:"),
    st.Page("views/quality.py", title="Explanation quality", icon=":material/verified:"),
    st.Page("views/try_photos.py", title="Try your photos", icon=":material/add_a_photo:"),
]

navigation = st.navigation(PAGES)
navigation.run()
