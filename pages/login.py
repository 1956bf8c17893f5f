"""Log in: username and password, checked by core.services.auth."""

import streamlit as st

from app import cache, state
from core.errors import AuthenticationFailed
from core.services.auth import LoginPolicy, authenticate

st.title("ModelBoard")
st.caption("Clinical governance of machine-learning models: review, sign-off and monitoring in one audited place.")
notice = state.take_notice()
if notice:
    st.info(notice, icon=":material/info:")

with st.form("login", clear_on_submit=False):
    username = st.text_input("Username", max_chars=64, autocomplete="username")
    password = st.text_input("Password", type="password", max_chars=256, autocomplete="current-password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    if not username or not password:
        st.error("Enter both your username and your password.", icon=":material/error:")
    else:
        try:
            session = authenticate(cache.store(), LoginPolicy.from_settings(cache.settings()), username, password)
        except AuthenticationFailed as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            state.set_session(session)
            st.rerun()

st.caption("Hospital single sign-on can replace this form: see README, 'Hospital login (OIDC)'.")
