"""CAM Lens dashboard: ``streamlit run dashboard/app.py``."""

from __future__ import annotations

import streamlit as st

from dashboard import access, links, pages, review_panel, state, training_panel

st.set_page_config(page_title="CAM Lens", page_icon=":material/search:", layout="wide")
access.gate()  # a sign-in screen when the operator configured sign-in and nobody signed in
training_panel.autostart()
state.keep_sidebar_choices()
review_panel.new_run()
linked_page = links.apply_once()

navigation = pages.navigation()
if linked_page is not None:  # a shared link's first run (only once per session)
    st.switch_page(linked_page, query_params=dict(st.query_params))
navigation.run()
